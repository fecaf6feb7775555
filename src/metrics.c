/*
 * metrics.c
 *	  Evaluation in SQL: ranking metrics over (recommended, relevant) arrays,
 *	  and roc_auc / log_loss aggregates for classifiers.
 *
 * Ranking metrics take `recommended` in rank order and `relevant` as a set.
 * Duplicates in `recommended` count once, at their first (best) position, so
 * no metric can exceed 1; NULL elements never match.  An empty `relevant`
 * gives NULL, so avg() over users skips users with nothing to find.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "util.h"

PG_FUNCTION_INFO_V1(precision_at_k);
PG_FUNCTION_INFO_V1(recall_at_k);
PG_FUNCTION_INFO_V1(hit_at_k);
PG_FUNCTION_INFO_V1(ndcg_at_k);
PG_FUNCTION_INFO_V1(average_precision_at_k);
PG_FUNCTION_INFO_V1(reciprocal_rank);
PG_FUNCTION_INFO_V1(roc_auc_accum);
PG_FUNCTION_INFO_V1(roc_auc_combine);
PG_FUNCTION_INFO_V1(roc_auc_serialize);
PG_FUNCTION_INFO_V1(roc_auc_deserialize);
PG_FUNCTION_INFO_V1(roc_auc_final);
PG_FUNCTION_INFO_V1(log_loss_accum);
PG_FUNCTION_INFO_V1(log_loss_combine);
PG_FUNCTION_INFO_V1(log_loss_final);

/* ---------- ranking metrics: core on plain arrays ---------- */

/* (id, rank) of a non-NULL recommendation, to find first occurrences by sorting */
typedef struct IdPos
{
	int64		id;
	int			pos;
} IdPos;

static int
CmpIdPos(const void *a, const void *b)
{
	const IdPos *x = a;
	const IdPos *y = b;

	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	return x->pos - y->pos;
}

/*
 * hit[r] (0-based) is true when recommended[r] is relevant and is its first
 * occurrence; ranks are positions in `recommended`.
 */
typedef struct RankInput
{
	int			nrec;
	int64	   *rel;			/* sorted, distinct */
	int			nrel;
	bool	   *hit;			/* [nrec] */
} RankInput;

static bool
ReadRankArgs(FunctionCallInfo fcinfo, bool has_k, RankInput *in, int *k)
{
	Datum	   *elems;
	bool	   *nulls;
	IdPos	   *byid;
	int			n = 0;

	if (has_k)
	{
		*k = PG_GETARG_INT32(2);
		if (*k < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k must be at least 1, got %d", *k)));
	}
	in->rel = sorted_unique_ids(PG_GETARG_ARRAYTYPE_P(1), &in->nrel);
	if (in->nrel == 0)
		return false;

	/* a NULL in `recommended` keeps its rank but never matches */
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &in->nrec);
	in->hit = palloc0(sizeof(bool) * Max(in->nrec, 1));
	/* sort (id, rank) pairs: the first of each run of equal ids is its first occurrence */
	byid = palloc(sizeof(IdPos) * Max(in->nrec, 1));
	for (int r = 0; r < in->nrec; r++)
		if (!nulls[r])
		{
			byid[n].id = DatumGetInt64(elems[r]);
			byid[n].pos = r;
			n++;
		}
	qsort(byid, n, sizeof(IdPos), CmpIdPos);
	for (int i = 0; i < n; i++)
		if (i == 0 || byid[i].id != byid[i - 1].id)
			in->hit[byid[i].pos] = sorted_ids_contain(in->rel, in->nrel, byid[i].id);
	return true;
}

static int
HitsAt(const RankInput *in, int k)
{
	int			h = 0;

	for (int r = 0; r < Min(k, in->nrec); r++)
		h += in->hit[r];
	return h;
}

Datum
precision_at_k(PG_FUNCTION_ARGS)
{
	RankInput	in;
	int			k;

	if (!ReadRankArgs(fcinfo, true, &in, &k))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) HitsAt(&in, k) / k);
}

Datum
recall_at_k(PG_FUNCTION_ARGS)
{
	RankInput	in;
	int			k;

	if (!ReadRankArgs(fcinfo, true, &in, &k))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) HitsAt(&in, k) / in.nrel);
}

Datum
hit_at_k(PG_FUNCTION_ARGS)
{
	RankInput	in;
	int			k;

	if (!ReadRankArgs(fcinfo, true, &in, &k))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(HitsAt(&in, k) > 0 ? 1.0 : 0.0);
}

Datum
ndcg_at_k(PG_FUNCTION_ARGS)
{
	RankInput	in;
	int			k;
	double		dcg = 0,
				ideal = 0;

	if (!ReadRankArgs(fcinfo, true, &in, &k))
		PG_RETURN_NULL();
	for (int r = 0; r < Min(k, in.nrec); r++)
		if (in.hit[r])
			dcg += 1.0 / log2(r + 2.0);
	for (int r = 0; r < Min(k, in.nrel); r++)
		ideal += 1.0 / log2(r + 2.0);
	PG_RETURN_FLOAT8(dcg / ideal);
}

Datum
average_precision_at_k(PG_FUNCTION_ARGS)
{
	RankInput	in;
	int			k;
	double		sum = 0;
	int			hits = 0;

	if (!ReadRankArgs(fcinfo, true, &in, &k))
		PG_RETURN_NULL();
	for (int r = 0; r < Min(k, in.nrec); r++)
		if (in.hit[r])
		{
			hits++;
			sum += (double) hits / (r + 1);
		}
	PG_RETURN_FLOAT8(sum / Min(k, in.nrel));
}

Datum
reciprocal_rank(PG_FUNCTION_ARGS)
{
	RankInput	in;

	if (!ReadRankArgs(fcinfo, false, &in, NULL))
		PG_RETURN_NULL();
	for (int r = 0; r < in.nrec; r++)
		if (in.hit[r])
			PG_RETURN_FLOAT8(1.0 / (r + 1));
	PG_RETURN_FLOAT8(0.0);
}

/* ---------- roc_auc: internal state, parallel-safe ---------- */

typedef struct AucPoint
{
	double		score;
	bool		label;
} AucPoint;

typedef struct AucState
{
	int64		n;
	int64		cap;
	AucPoint   *pts;
} AucState;

static AucState *
AucStateNew(MemoryContext cxt, int64 cap)
{
	AucState   *st = MemoryContextAllocZero(cxt, sizeof(AucState));

	st->cap = Max(cap, 64);
	st->pts = MemoryContextAllocHuge(cxt, sizeof(AucPoint) * st->cap);
	return st;
}

static void
AucReserve(AucState *st, int64 extra)
{
	if (st->n + extra > st->cap)
	{
		int64		newcap = Max(st->cap * 2, st->n + extra);

		if ((Size) newcap > MaxAllocHugeSize / sizeof(AucPoint))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("roc_auc cannot hold more than %zu rows", MaxAllocHugeSize / sizeof(AucPoint))));
		st->pts = repalloc_huge(st->pts, sizeof(AucPoint) * newcap);
		st->cap = newcap;
	}
}

static MemoryContext
AggContext(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", fn);
	return cxt;
}

Datum
roc_auc_accum(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "roc_auc_accum");
	AucState   *st = PG_ARGISNULL(0) ? NULL : (AucState *) PG_GETARG_POINTER(0);
	double		score;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		/*
		 * Rows with a NULL score or label are skipped.  Without a state yet,
		 * the result must be SQL NULL, not a NULL pointer: a parallel worker
		 * that saw only such rows would hand the pointer to the strict serial
		 * function.
		 */
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}
	score = PG_GETARG_FLOAT8(1);
	if (isnan(score))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("roc_auc score must not be NaN")));
	if (st == NULL)
		st = AucStateNew(cxt, 1024);
	AucReserve(st, 1);
	st->pts[st->n].score = score;
	st->pts[st->n].label = PG_GETARG_BOOL(2);
	st->n++;
	PG_RETURN_POINTER(st);
}

Datum
roc_auc_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "roc_auc_combine");
	AucState   *a = PG_ARGISNULL(0) ? NULL : (AucState *) PG_GETARG_POINTER(0);
	AucState   *b = PG_ARGISNULL(1) ? NULL : (AucState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		/* copy into the aggregate context: b may live in a shorter one */
		a = AucStateNew(cxt, b->n);
	}
	AucReserve(a, b->n);
	memcpy(a->pts + a->n, b->pts, sizeof(AucPoint) * b->n);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

Datum
roc_auc_serialize(PG_FUNCTION_ARGS)
{
	AucState   *st = (AucState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->n);
	for (int64 i = 0; i < st->n; i++)
	{
		pq_sendfloat8(&buf, st->pts[i].score);
		pq_sendbyte(&buf, st->pts[i].label ? 1 : 0);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
roc_auc_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "roc_auc_deserialize");
	bytea	   *raw = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	AucState   *st;
	int64		n;

	buf.data = VARDATA_ANY(raw);
	buf.len = VARSIZE_ANY_EXHDR(raw);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	n = pq_getmsgint64(&buf);
	if (n < 0 || n > (int64) (buf.len / 9))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid roc_auc state")));
	st = AucStateNew(cxt, n);
	for (int64 i = 0; i < n; i++)
	{
		st->pts[i].score = pq_getmsgfloat8(&buf);
		st->pts[i].label = pq_getmsgbyte(&buf) != 0;
	}
	st->n = n;
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

static int
CmpAuc(const void *a, const void *b)
{
	double		x = ((const AucPoint *) a)->score;
	double		y = ((const AucPoint *) b)->score;

	return (x > y) - (x < y);
}

/*
 * Area under the ROC curve = P(score of a random positive > score of a random
 * negative), ties counted half: the Mann-Whitney statistic from average
 * ranks over the sorted scores.
 */
Datum
roc_auc_final(PG_FUNCTION_ARGS)
{
	AucState   *st = PG_ARGISNULL(0) ? NULL : (AucState *) PG_GETARG_POINTER(0);
	double		rank_sum = 0;
	int64		pos = 0,
				neg;

	if (st == NULL || st->n == 0)
		PG_RETURN_NULL();
	qsort(st->pts, st->n, sizeof(AucPoint), CmpAuc);
	for (int64 i = 0; i < st->n;)
	{
		int64		j = i;
		int64		tie_pos = 0;
		double		avg_rank;

		while (j < st->n && st->pts[j].score == st->pts[i].score)
		{
			tie_pos += st->pts[j].label;
			j++;
		}
		avg_rank = ((double) (i + 1) + (double) j) / 2.0;
		rank_sum += avg_rank * tie_pos;
		pos += tie_pos;
		i = j;
	}
	neg = st->n - pos;
	if (pos == 0 || neg == 0)
		PG_RETURN_NULL();		/* undefined with a single class */
	PG_RETURN_FLOAT8((rank_sum - (double) pos * (pos + 1) / 2.0) / ((double) pos * neg));
}

/* ---------- log_loss: float8[2] state (sum, count), combinable ---------- */

/*
 * The (sum, count) state in argument `argno`.  Inside the aggregate it is
 * updated in place, as float8_accum does; called directly from SQL the
 * functions work on a copy, so they are usable (and testable) on their own.
 */
static double *
LossState(FunctionCallInfo fcinfo, int argno, ArrayType **arr)
{
	ArrayType  *a;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("log_loss state must not be NULL")));
	a = AggCheckCallContext(fcinfo, NULL) ? PG_GETARG_ARRAYTYPE_P(argno)
		: PG_GETARG_ARRAYTYPE_P_COPY(argno);
	if (ARR_NDIM(a) != 1 || ARR_DIMS(a)[0] != 2 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid log_loss state")));
	*arr = a;
	return (double *) ARR_DATA_PTR(a);
}

Datum
log_loss_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *arr;
	double	   *s = LossState(fcinfo, 0, &arr);
	double		p;
	const double eps = 1e-15;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_ARRAYTYPE_P(arr);
	p = PG_GETARG_FLOAT8(1);
	if (isnan(p) || p < 0 || p > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("log_loss probability must be between 0 and 1, got %g", p)));
	p = Min(Max(p, eps), 1 - eps);	/* clipped as scikit-learn does */
	s[0] += PG_GETARG_BOOL(2) ? -log(p) : -log(1 - p);
	s[1] += 1;
	PG_RETURN_ARRAYTYPE_P(arr);
}

Datum
log_loss_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *a,
			   *b;
	double	   *x = LossState(fcinfo, 0, &a);
	double	   *y = LossState(fcinfo, 1, &b);

	x[0] += y[0];
	x[1] += y[1];
	PG_RETURN_ARRAYTYPE_P(a);
}

Datum
log_loss_final(PG_FUNCTION_ARGS)
{
	ArrayType  *a;
	double	   *s = LossState(fcinfo, 0, &a);

	if (s[1] == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(s[0] / s[1]);
}
