/*
 * metrics.c
 *	  Evaluation in SQL: ranking metrics over (recommended, relevant) arrays,
 *	  and roc_auc / log_loss / confusion_matrix aggregates for classifiers.
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
#include "common/shortest_dec.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "compare.h"
#include "core_pg.h"
#include "state_codec.h"
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
PG_FUNCTION_INFO_V1(confusion_matrix_accum);
PG_FUNCTION_INFO_V1(confusion_matrix_combine);
PG_FUNCTION_INFO_V1(confusion_matrix_serialize);
PG_FUNCTION_INFO_V1(confusion_matrix_deserialize);
PG_FUNCTION_INFO_V1(confusion_matrix_final);

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
	RocAucStateData d;
	CoreAlloc	a;
	CoreError	err;
	AucState   *st;

	core_pg_alloc(&a, CurrentMemoryContext);
	core_pg_check(roc_auc_state_decode(&a, VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), &d, &err), &err);
	st = AucStateNew(cxt, d.n);
	for (int64 i = 0; i < d.n; i++)
	{
		st->pts[i].score = d.scores[i];
		st->pts[i].label = d.labels[i];
	}
	st->n = d.n;
	pfree(d.scores);
	pfree(d.labels);
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

/* ---------- confusion_matrix: counts per (actual, predicted), parallel-safe ---------- */

typedef struct CmKey
{
	double		actual;
	double		predicted;
} CmKey;

typedef struct CmEntry
{
	CmKey		key;
	int64		count;
} CmEntry;

#define CM_MAX_CLASSES 1000

static HTAB *
CmNew(MemoryContext cxt)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(CmKey);
	ctl.entrysize = sizeof(CmEntry);
	ctl.hcxt = cxt;
	return hash_create("media_reco confusion_matrix", 64, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
CmAdd(HTAB *h, double actual, double predicted, int64 count)
{
	CmKey		key;
	CmEntry    *e;
	bool		found;

	/* -0 and +0 are one class */
	memset(&key, 0, sizeof(key));
	key.actual = actual == 0 ? 0.0 : actual;
	key.predicted = predicted == 0 ? 0.0 : predicted;
	e = hash_search(h, &key, HASH_ENTER, &found);
	if (!found)
	{
		e->count = 0;
		if (hash_get_num_entries(h) > (long) CM_MAX_CLASSES * CM_MAX_CLASSES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("confusion_matrix holds more than %d (actual, predicted) pairs, so more than %d classes",
							CM_MAX_CLASSES * CM_MAX_CLASSES, CM_MAX_CLASSES),
					 errhint("Class labels are compared exactly; round continuous predictions first.")));
	}
	e->count += count;
}

Datum
confusion_matrix_accum(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "confusion_matrix_accum");
	HTAB	   *h = PG_ARGISNULL(0) ? NULL : (HTAB *) PG_GETARG_POINTER(0);
	double		p,
				a;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		/* rows with a NULL prediction or label are skipped; no state yet stays SQL NULL */
		if (h == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(h);
	}
	p = PG_GETARG_FLOAT8(1);
	a = PG_GETARG_FLOAT8(2);
	if (!isfinite(p) || !isfinite(a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("confusion_matrix classes must be finite, got %g", isfinite(p) ? a : p)));
	if (h == NULL)
		h = CmNew(cxt);
	CmAdd(h, a, p, 1);
	PG_RETURN_POINTER(h);
}

Datum
confusion_matrix_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "confusion_matrix_combine");
	HTAB	   *a = PG_ARGISNULL(0) ? NULL : (HTAB *) PG_GETARG_POINTER(0);
	HTAB	   *b = PG_ARGISNULL(1) ? NULL : (HTAB *) PG_GETARG_POINTER(1);
	HASH_SEQ_STATUS st;
	CmEntry    *e;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = CmNew(cxt);			/* b may live in a shorter-lived context */
	hash_seq_init(&st, b);
	while ((e = hash_seq_search(&st)) != NULL)
		CmAdd(a, e->key.actual, e->key.predicted, e->count);
	PG_RETURN_POINTER(a);
}

Datum
confusion_matrix_serialize(PG_FUNCTION_ARGS)
{
	HTAB	   *h = (HTAB *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	HASH_SEQ_STATUS st;
	CmEntry    *e;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, hash_get_num_entries(h));
	hash_seq_init(&st, h);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		pq_sendfloat8(&buf, e->key.actual);
		pq_sendfloat8(&buf, e->key.predicted);
		pq_sendint64(&buf, e->count);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
confusion_matrix_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = AggContext(fcinfo, "confusion_matrix_deserialize");
	bytea	   *raw = PG_GETARG_BYTEA_PP(0);
	ConfusionStateData d;
	CoreAlloc	a;
	CoreError	err;
	HTAB	   *h;

	core_pg_alloc(&a, CurrentMemoryContext);
	core_pg_check(confusion_state_decode(&a, VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), &d, &err), &err);
	h = CmNew(cxt);
	for (int64 i = 0; i < d.n; i++)
		CmAdd(h, d.actual[i], d.predicted[i], d.count[i]);
	pfree(d.actual);
	pfree(d.predicted);
	pfree(d.count);
	PG_RETURN_POINTER(h);
}

static int
ClassIndex(const double *classes, int n, double v)
{
	const double *hit = bsearch(&v, classes, n, sizeof(double), cmp_double);

	return (int) (hit - classes);
}

static void
AppendJsonNumber(StringInfo s, double v)
{
	if (isnan(v))
		appendStringInfoString(s, "null");
	else
	{
		char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

		/* shortest digits that read back exactly, whatever extra_float_digits says */
		double_to_shortest_decimal_buf(v, buf);
		appendStringInfoString(s, buf);
	}
}

/*
 * The matrix as jsonb: classes ascending (the union of actual and predicted
 * values), matrix[i][j] = rows whose actual class is classes[i] and
 * predicted class classes[j] (as scikit-learn's confusion_matrix), and per
 * class precision, recall, F1 and support; NULL (JSON null) where a ratio
 * has no denominator.
 */
Datum
confusion_matrix_final(PG_FUNCTION_ARGS)
{
	HTAB	   *h = PG_ARGISNULL(0) ? NULL : (HTAB *) PG_GETARG_POINTER(0);
	HASH_SEQ_STATUS st;
	CmEntry    *e;
	double	   *classes;
	int			nc = 0;
	int64	   *m;
	int64		total = 0,
				correct = 0;
	StringInfoData s;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "confusion_matrix_final called in non-aggregate context");
	if (h == NULL)
		PG_RETURN_NULL();
	classes = palloc(sizeof(double) * 2 * Max(hash_get_num_entries(h), 1));
	hash_seq_init(&st, h);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		classes[nc++] = e->key.actual;
		classes[nc++] = e->key.predicted;
	}
	qsort(classes, nc, sizeof(double), cmp_double);
	{
		int			u = 0;

		for (int i = 0; i < nc; i++)
			if (u == 0 || classes[i] != classes[u - 1])
				classes[u++] = classes[i];
		nc = u;
	}
	if (nc > CM_MAX_CLASSES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("confusion_matrix found %d classes; the limit is %d", nc, CM_MAX_CLASSES),
				 errhint("Class labels are compared exactly; round continuous predictions first.")));
	m = palloc0(sizeof(int64) * nc * nc);
	hash_seq_init(&st, h);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		int			i = ClassIndex(classes, nc, e->key.actual);
		int			j = ClassIndex(classes, nc, e->key.predicted);

		m[(int64) i * nc + j] += e->count;
		total += e->count;
		if (i == j)
			correct += e->count;
	}

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"classes\": [");
	for (int i = 0; i < nc; i++)
	{
		if (i > 0)
			appendStringInfoString(&s, ", ");
		AppendJsonNumber(&s, classes[i]);
	}
	appendStringInfoString(&s, "], \"matrix\": [");
	for (int i = 0; i < nc; i++)
	{
		appendStringInfoString(&s, i > 0 ? ", [" : "[");
		for (int j = 0; j < nc; j++)
			appendStringInfo(&s, j > 0 ? ", " INT64_FORMAT : INT64_FORMAT, m[(int64) i * nc + j]);
		appendStringInfoChar(&s, ']');
	}
	appendStringInfo(&s, "], \"total\": " INT64_FORMAT ", \"accuracy\": ", total);
	AppendJsonNumber(&s, total > 0 ? (double) correct / total : NAN);
	appendStringInfoString(&s, ", \"per_class\": [");
	for (int i = 0; i < nc; i++)
	{
		int64		tp = m[(int64) i * nc + i],
					col = 0,
					row = 0;
		double		prec,
					rec;

		for (int k = 0; k < nc; k++)
		{
			col += m[(int64) k * nc + i];
			row += m[(int64) i * nc + k];
		}
		prec = col > 0 ? (double) tp / col : NAN;
		rec = row > 0 ? (double) tp / row : NAN;
		appendStringInfoString(&s, i > 0 ? ", {\"class\": " : "{\"class\": ");
		AppendJsonNumber(&s, classes[i]);
		appendStringInfoString(&s, ", \"precision\": ");
		AppendJsonNumber(&s, prec);
		appendStringInfoString(&s, ", \"recall\": ");
		AppendJsonNumber(&s, rec);
		appendStringInfoString(&s, ", \"f1\": ");
		AppendJsonNumber(&s, (isnan(prec) || isnan(rec)) ? NAN :
						 (prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0));
		appendStringInfo(&s, ", \"support\": " INT64_FORMAT "}", row);
	}
	appendStringInfoString(&s, "]}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}
