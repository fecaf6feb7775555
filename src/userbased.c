/*
 * userbased.c
 *	  User-based collaborative filtering, computed live for one user:
 *	  similar_users() and recommend_user_based().
 *
 * No user-by-user matrix is stored.  For a user u, one query reads u's rows,
 * a second the rows of every other user who shares an item with u (the only
 * users with a non-zero similarity), and similarities are computed on
 * plain arrays with the recommender's metric, shrinkage and min_support:
 *
 *	 cosine			  Σ_common w(u,i)·w(v,i) / (‖w(u,·)‖ ‖w(v,·)‖), norms over all items
 *	 pearson		  the same over w − the user's mean weight
 *	 adjusted_cosine  the same over w − the item's mean weight (over all users)
 *	 jaccard		  |common| / |I(u) ∪ I(v)|
 *	 conditional	  |common| / |I(u)|
 *
 * then sim · support / (support + shrinkage); only positive similarities
 * with support >= min_support count.  Weights are the source's (summed over
 * duplicate rows, time-decayed as of now() when the recommender has a half
 * life).
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "compare.h"
#include "neighbors.h"
#include "plan_cache.h"
#include "topk.h"
#include "util.h"

PG_FUNCTION_INFO_V1(similar_users);
PG_FUNCTION_INFO_V1(recommend_user_based);

typedef struct Row3
{
	int64		user;
	int64		item;
	double		w;
} Row3;

static int
CmpRow(const void *a, const void *b)
{
	const Row3 *x = a,
			   *y = b;

	if (x->user != y->user)
		return (x->user > y->user) - (x->user < y->user);
	if (x->item != y->item)
		return (x->item > y->item) - (x->item < y->item);
	/* duplicates summed in ascending order of weight, as in simcore.c */
	return (x->w > y->w) - (x->w < y->w);
}

/*
 * Rows of the given users (or items), decayed, sorted by (user, item),
 * duplicates summed, allocated in `cxt` (SPI calls switch the current
 * context back to SPI's own, which SPI_finish frees).
 */
static Row3 *
ReadRows(const Recommender *r, bool by_user, int64 *ids, int nids, int64 *n_out, MemoryContext cxt)
{
	Oid			types[1] = {INT8ARRAYOID};
	Datum		args[1];
	Datum	   *d = palloc_extended(sizeof(Datum) * Max(nids, 1), MCXT_ALLOC_HUGE);
	Row3	   *rows;
	int64		n = 0,
				m = 0;
	int			wcol = 3,
				tcol = r->src.weight_col ? 4 : 3;

	for (int i = 0; i < nids; i++)
		d[i] = Int64GetDatum(ids[i]);
	args[0] = PointerGetDatum(construct_array(d, nids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	/* at most one row more than the budget allows is ever fetched */
	if (plan_cache_execute(source_rows_sql(&r->src, by_user), 1, types, args, NULL, true,
						   (long) Min(work_memory_limit() / 64 + 1, (Size) LONG_MAX)) != SPI_OK_SELECT)
		elog(ERROR, "reading interactions failed");
	if (SPI_processed > (uint64) (work_memory_limit() / 64))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the users sharing items with this user have too many interactions for maintenance_work_mem"),
				 errhint("Raise maintenance_work_mem.")));
	rows = MemoryContextAllocExtended(cxt, sizeof(Row3) * Max(SPI_processed, 1), MCXT_ALLOC_HUGE);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;

		rows[n].user = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		rows[n].item = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
		rows[n].w = 1.0;
		if (r->src.weight_col)
		{
			rows[n].w = DatumGetFloat8(SPI_getbinval(tup, td, wcol, &isnull));
			check_weight_finite(&r->src, rows[n].w);
		}
		if (r->src.time_col)
			rows[n].w = decayed_weight(&r->src, rows[n].w, SPI_getbinval(tup, td, tcol, &isnull),
									   SPI_gettypeid(td, tcol));
		n++;
	}
	SPI_freetuptable(SPI_tuptable);
	if (n > 1)
		qsort(rows, n, sizeof(Row3), CmpRow);
	for (int64 i = 0; i < n; i++)
	{
		if (m > 0 && rows[m - 1].user == rows[i].user && rows[m - 1].item == rows[i].item)
			rows[m - 1].w += rows[i].w;
		else
			rows[m++] = rows[i];
	}
	for (int64 i = 0; i < m; i++)
		if (!isfinite(rows[i].w))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("sum of weights for user " INT64_FORMAT " and item " INT64_FORMAT " is out of range",
							rows[i].user, rows[i].item)));
	*n_out = m;
	return rows;
}

/* a weight as the metric compares it: centred by the user's or the item's mean */
static inline double
Centered(SimMetric metric, const Row3 *row, double user_mean, const int64 *mitems,
		 const double *imean, int nmitems)
{
	if (metric == SIM_PEARSON)
		return row->w - user_mean;
	if (metric == SIM_ADJUSTED_COSINE)
	{
		const int64 *hit = bsearch(&row->item, mitems, nmitems, sizeof(int64), cmp_int64);

		return row->w - imean[hit - mitems];
	}
	return row->w;
}

typedef struct Neighbor
{
	int64		user;
	double		sim;
	int64		start;			/* the user's rows in `rows` */
	int64		end;
} Neighbor;

static int
CmpNeighbor(const void *a, const void *b)
{
	const Neighbor *x = a,
			   *y = b;

	if (x->sim != y->sim)
		return x->sim > y->sim ? -1 : 1;
	return (x->user > y->user) - (x->user < y->user);
}

typedef struct UserBased
{
	Recommender r;
	Row3	   *mine;			/* u's rows, items ascending */
	int64		nmine;
	Row3	   *rows;			/* other users' rows, by (user, item) */
	int64		nrows;
	Neighbor   *nb;				/* positive similarities, best first */
	int			nnb;
} UserBased;

/* item means over all users, for adjusted_cosine: mean[i] for each item of items[] */
static double *
ItemMeans(const Recommender *r, int64 *items, int nitems, MemoryContext cxt)
{
	int64		n;
	Row3	   *rows = ReadRows(r, false, items, nitems, &n, CurrentMemoryContext);
	double	   *sum = MemoryContextAllocZero(cxt, sizeof(double) * Max(nitems, 1));
	int64	   *cnt = palloc0(sizeof(int64) * Max(nitems, 1));
	double	   *first = palloc(sizeof(double) * Max(nitems, 1));
	bool	   *constant = palloc(sizeof(bool) * Max(nitems, 1));

	for (int64 i = 0; i < n; i++)
	{
		int64	   *hit = bsearch(&rows[i].item, items, nitems, sizeof(int64), cmp_int64);

		if (hit)
		{
			int64		x = hit - items;

			if (cnt[x] == 0)
			{
				first[x] = rows[i].w;
				constant[x] = true;
			}
			else
				constant[x] &= rows[i].w == first[x];
			sum[x] += rows[i].w;
			cnt[x]++;
		}
	}
	/* an item whose weights are all equal centres to exact zeros, not to a rounding residue */
	for (int i = 0; i < nitems; i++)
		sum[i] = cnt[i] == 0 ? 0 : constant[i] ? first[i] : sum[i] / cnt[i];
	pfree(cnt);
	pfree(first);
	pfree(constant);
	return sum;
}

/* the mean weight of n > 0 rows; exactly their value when all are equal (centring gives exact zeros) */
static double
RowsMean(const Row3 *rows, int64 n)
{
	double		sum = 0;
	bool		constant = true;

	if (n <= 0)
		return 0;
	for (int64 i = 0; i < n; i++)
	{
		sum += rows[i].w;
		constant &= rows[i].w == rows[0].w;
	}
	return constant ? rows[0].w : sum / (double) n;
}

static void
ComputeNeighbors(FunctionCallInfo fcinfo, int64 user, UserBased *ub)
{
	MemoryContext callcxt = CurrentMemoryContext;
	SimMetric	metric;
	int64	   *items;
	int64	   *cands;
	int			ncand = 0;
	double	   *imean = NULL;
	int64	   *mitems = NULL;
	int			nmitems = 0;
	double		mu_mean = 0,
				mu_norm2 = 0;

	memset(ub, 0, sizeof(*ub));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* what outlives SPI_finish is allocated in callcxt explicitly */
	recommender_fetch(arg_text_or_null(fcinfo, 0), false, callcxt, &ub->r);
	recommender_require_source(&ub->r);
	source_validate(&ub->r.src);
	metric = ub->r.params.metric;
	/* bm25, ease and rp3beta are item-side models with no user-user counterpart here */
	if (metric == SIM_BM25 || metric == SIM_EASE || metric == SIM_RP3BETA)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("user-based CF does not support the %s metric of recommender \"%s\"",
						sim_metric_name(metric), ub->r.name),
				 errhint("Use a cosine, jaccard, pearson, adjusted_cosine or conditional recommender.")));

	ub->mine = ReadRows(&ub->r, true, &user, 1, &ub->nmine, callcxt);
	if (ub->nmine == 0)
	{
		SPI_finish();
		return;
	}
	items = palloc_extended(sizeof(int64) * ub->nmine, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < ub->nmine; i++)
		items[i] = ub->mine[i].item;

	/* every other user who shares an item */
	{
		int64		n;
		Row3	   *shared = ReadRows(&ub->r, false, items, (int) ub->nmine, &n, CurrentMemoryContext);

		cands = palloc_extended(sizeof(int64) * Max(n, 1), MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < n; i++)
			if (shared[i].user != user && (ncand == 0 || cands[ncand - 1] != shared[i].user))
				cands[ncand++] = shared[i].user;	/* rows are sorted by user */
		pfree(shared);
	}
	ub->rows = ReadRows(&ub->r, true, cands, ncand, &ub->nrows, callcxt);

	if (metric == SIM_ADJUSTED_COSINE)
	{
		mitems = MemoryContextAllocExtended(callcxt, sizeof(int64) * (ub->nrows + ub->nmine), MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < ub->nrows; i++)
			mitems[nmitems++] = ub->rows[i].item;
		for (int64 i = 0; i < ub->nmine; i++)
			mitems[nmitems++] = ub->mine[i].item;
		qsort(mitems, nmitems, sizeof(int64), cmp_int64);
		{
			int			u = 0;

			for (int i = 0; i < nmitems; i++)
				if (u == 0 || mitems[u - 1] != mitems[i])
					mitems[u++] = mitems[i];
			nmitems = u;
		}
		imean = ItemMeans(&ub->r, mitems, nmitems, callcxt);
	}
	SPI_finish();

	/* u's mean and norm over all of u's items */
	mu_mean = RowsMean(ub->mine, ub->nmine);
	for (int64 i = 0; i < ub->nmine; i++)
	{
		double		c = Centered(metric, &ub->mine[i], mu_mean, mitems, imean, nmitems);

		mu_norm2 += c * c;
	}

	ub->nb = palloc_extended(sizeof(Neighbor) * Max(ncand, 1), MCXT_ALLOC_HUGE);
	for (int64 s = 0, n_seen = 0; s < ub->nrows; n_seen++)
	{
		int64		e = s;
		int64		v = ub->rows[s].user;
		double		v_mean = 0,
					vnorm2 = 0,
					dot = 0,
					sim;
		int64		support = 0;

		while (e < ub->nrows && ub->rows[e].user == v)
			e++;
		v_mean = RowsMean(ub->rows + s, e - s);
		for (int64 i = s; i < e; i++)
		{
			double		c = Centered(metric, &ub->rows[i], v_mean, mitems, imean, nmitems);

			vnorm2 += c * c;
		}
		/* common items: both lists ascending by item */
		for (int64 a = 0, b = s; a < ub->nmine && b < e;)
		{
			if (ub->mine[a].item < ub->rows[b].item)
				a++;
			else if (ub->mine[a].item > ub->rows[b].item)
				b++;
			else
			{
				dot += Centered(metric, &ub->mine[a], mu_mean, mitems, imean, nmitems) *
					Centered(metric, &ub->rows[b], v_mean, mitems, imean, nmitems);
				support++;
				a++;
				b++;
			}
		}
		switch (metric)
		{
			case SIM_JACCARD:
				sim = (double) support / (double) (ub->nmine + (e - s) - support);
				break;
			case SIM_CONDITIONAL:
				sim = (double) support / (double) ub->nmine;
				break;
			default:
				sim = (mu_norm2 > 0 && vnorm2 > 0) ? dot / (sqrt(mu_norm2) * sqrt(vnorm2)) : 0;
				break;
		}
		if (ub->r.params.shrinkage > 0)
			sim *= (double) support / ((double) support + ub->r.params.shrinkage);
		if (support >= ub->r.params.min_support && sim > 0 && isfinite(sim))
		{
			ub->nb[ub->nnb].user = v;
			ub->nb[ub->nnb].sim = sim;
			ub->nb[ub->nnb].start = s;
			ub->nb[ub->nnb].end = e;
			ub->nnb++;
		}
		s = e;
		if ((n_seen & 255) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	qsort(ub->nb, ub->nnb, sizeof(Neighbor), CmpNeighbor);
}

/* does u's history hold item? (u's rows are sorted by item) */
static bool
MineHas(const UserBased *ub, int64 item)
{
	int64		lo = 0,
				hi = ub->nmine;

	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (ub->mine[mid].item == item)
			return true;
		if (ub->mine[mid].item < item)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* similar_users(name, user_id, k): the k most similar users, ties to the smaller id */
Datum
similar_users(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	UserBased	ub;
	int			k;

	check_not_null(fcinfo, 0, "name");
	check_not_null(fcinfo, 1, "user_id");
	check_not_null(fcinfo, 2, "k");
	k = PG_GETARG_INT32(2);
	check_k(k, "k");
	InitMaterializedSRF(fcinfo, 0);
	ComputeNeighbors(fcinfo, PG_GETARG_INT64(1), &ub);
	for (int i = 0; i < Min(k, ub.nnb); i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int64GetDatum(ub.nb[i].user);
		values[1] = Float8GetDatum(ub.nb[i].sim);
		values[2] = Int32GetDatum(i + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * recommend_user_based(name, user_id, k, neighbors, exclude_seen):
 * score(u, j) = Σ over the `neighbors` most similar users v of sim(u,v)·w(v,j).
 */
Datum
recommend_user_based(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	UserBased	ub;
	int			k,
				nneighbors;
	bool		exclude_seen;
	Row3	   *acc;
	int64		nacc = 0;
	Scored	   *heap;
	int			n = 0;

	check_not_null(fcinfo, 0, "name");
	check_not_null(fcinfo, 1, "user_id");
	check_not_null(fcinfo, 2, "k");
	check_not_null(fcinfo, 3, "neighbors");
	check_not_null(fcinfo, 4, "exclude_seen");
	k = PG_GETARG_INT32(2);
	check_k(k, "k");
	nneighbors = PG_GETARG_INT32(3);
	check_k(nneighbors, "neighbors");
	exclude_seen = PG_GETARG_BOOL(4);
	InitMaterializedSRF(fcinfo, 0);
	ComputeNeighbors(fcinfo, PG_GETARG_INT64(1), &ub);
	if (ub.nnb == 0)
		return (Datum) 0;

	/* (item, contribution) pairs of the chosen neighbours, summed per item in neighbour order */
	{
		int64		total = 0;

		for (int i = 0; i < Min(nneighbors, ub.nnb); i++)
			total += ub.nb[i].end - ub.nb[i].start;
		acc = palloc_extended(sizeof(Row3) * Max(total, 1), MCXT_ALLOC_HUGE);
		for (int i = 0; i < Min(nneighbors, ub.nnb); i++)
			for (int64 j = ub.nb[i].start; j < ub.nb[i].end; j++)
			{
				acc[nacc].user = i;		/* neighbour rank: keeps the summation order */
				acc[nacc].item = ub.rows[j].item;
				acc[nacc].w = ub.nb[i].sim * ub.rows[j].w;
				nacc++;
			}
	}
	/* group by item; within an item, neighbours in rank order */
	{
		Row3	   *a = acc;

		for (int64 i = 0; i < nacc; i++)
		{
			int64		t = a[i].user;

			a[i].user = a[i].item;
			a[i].item = t;
		}
		qsort(a, nacc, sizeof(Row3), CmpRow);	/* by (item, neighbour rank) */
	}
	heap = palloc(sizeof(Scored) * k);
	for (int64 s = 0; s < nacc;)
	{
		int64		item = acc[s].user;
		double		score = 0;
		Scored		c;

		while (s < nacc && acc[s].user == item)
			score += acc[s++].w;
		if (exclude_seen && MineHas(&ub, item))
			continue;
		if (!isfinite(score))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("score of item " INT64_FORMAT " is out of range", item)));
		c.item = item;
		c.score = score;
		ScoredOffer(heap, &n, k, c);
	}
	qsort(heap, n, sizeof(Scored), CmpScored);
	for (int i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int64GetDatum(heap[i].item);
		values[1] = Float8GetDatum(heap[i].score);
		values[2] = Int32GetDatum(i + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
