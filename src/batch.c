/*
 * batch.c
 *	  recommend_all(): recommend's top-k for every user (or a given set of
 *	  users), computed set-wise for BI tools and campaigns.
 *
 * One scan reads the source into a user-by-item matrix (as a refresh
 * does, with the same NULL rules and time decay as of now()), one pass
 * reads the recommender's neighbour lists, and helper threads score users
 * in blocks on plain arrays: a dense accumulator per thread, the user's
 * history items visited in ascending id order and each neighbour list in
 * stored order, exactly as recommend does, so the sums, the ranking and the
 * ties are the same.  The main thread writes the rows in user order.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "compare.h"
#include "neighbors.h"
#include "parallel.h"
#include "topk.h"
#include "util.h"

PG_FUNCTION_INFO_V1(recommend_all);

#define BATCH_BLOCK 64

typedef struct BatchShared
{
	const InteractionMatrix *m;
	int32		n_all;			/* source items + neighbour ids outside the source */
	const int64 *all_ids;		/* [n_all] real id of each dense index */
	const int64 *nb_ptr;		/* [m->n_items + 1] neighbour list of each source item */
	const int32 *nb_idx;		/* dense neighbour index */
	const double *nb_sim;
	const int32 *users;			/* dense user indexes to score, ascending */
	int32		n_users;
	int			k;
	Scored	   *res;			/* [n_users * k] */
	int32	   *res_n;			/* [n_users] */
	/* per worker */
	double	  **acc;
	uint32	  **mark;
	uint32	  **seen;
	int32	  **touched;
	uint32	   *stamp;
	/* first non-finite score: reported by the main thread */
	int			bad;
	int64		bad_user;
	int64		bad_item;
	ParallelRun run;
} BatchShared;

/* Scores one block of users.  Runs on helper threads: plain C on sh, no palloc, ereport or SPI. */
static void
ScoreBlock(void *arg, int w, int64 block)
{
	BatchShared *sh = (BatchShared *) arg;
	const InteractionMatrix *m = sh->m;
	double	   *acc = sh->acc[w];
	uint32	   *mark = sh->mark[w];
	uint32	   *seen = sh->seen[w];
	int32	   *touched = sh->touched[w];

	for (int64 q = block * BATCH_BLOCK; q < Min((int64) sh->n_users, (block + 1) * BATCH_BLOCK); q++)
	{
		int32		u = sh->users[q];
		uint32		stamp = ++sh->stamp[w];
		int32		nt = 0;
		Scored	   *heap = sh->res + q * sh->k;
		int			n = 0;

		if (stamp == 0)
		{
			/* wrapped: clear the marks once every 2^32 users */
			memset(mark, 0, sizeof(uint32) * sh->n_all);
			memset(seen, 0, sizeof(uint32) * sh->n_all);
			stamp = sh->stamp[w] = 1;
		}
		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
			seen[m->u_item[a]] = stamp;
		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
		{
			int32		item = m->u_item[a];
			double		wt = m->u_w[a];

			/*
			 * Branch-free: whether j is new to this user is a coin flip for
			 * the predictor.  touched has n_all + 1 slots for the write that
			 * is not kept.  0 + x is exactly x, as recommend's first add.
			 */
			for (int64 b = sh->nb_ptr[item]; b < sh->nb_ptr[item + 1]; b++)
			{
				int32		j = sh->nb_idx[b];
				uint32		fresh = mark[j] != stamp;
				double		prev = acc[j];

				touched[nt] = j;
				nt += fresh;
				mark[j] = stamp;
				acc[j] = (fresh ? 0.0 : prev) + wt * sh->nb_sim[b];
			}
		}
		for (int32 t = 0; t < nt; t++)
		{
			int32		j = touched[t];
			Scored		c;

			if (seen[j] == stamp)
				continue;
			if (!isfinite(acc[j]))
			{
				if (__atomic_exchange_n(&sh->bad, 1, __ATOMIC_RELAXED) == 0)
				{
					sh->bad_user = m->user_ids[u];
					sh->bad_item = sh->all_ids[j];
				}
				parallel_stop(&sh->run);
				return;
			}
			c.item = sh->all_ids[j];
			c.score = acc[j];
			ScoredOffer(heap, &n, sh->k, c);
		}
		qsort(heap, n, sizeof(Scored), CmpScored);
		sh->res_n[q] = n;
	}
}

/*
 * Item id -> dense index of the source's items: a direct table when the ids
 * are compact (the usual case), else a binary search.
 */
typedef struct ItemIndex
{
	const int64 *ids;			/* ascending */
	int32		n;
	int64		base;
	int64		span;
	int32	   *direct;			/* [span] or NULL */
} ItemIndex;

static void
ItemIndexInit(ItemIndex *ix, const int64 *ids, int32 n)
{
	ix->ids = ids;
	ix->n = n;
	ix->direct = NULL;
	if (n == 0)
		return;
	ix->base = ids[0];
	/* unsigned difference: ids span at most 2^64 - 1, no signed overflow */
	if ((uint64) ids[n - 1] - (uint64) ids[0] < (uint64) n * 4 + 1024)
	{
		ix->span = (int64) ((uint64) ids[n - 1] - (uint64) ids[0]) + 1;
		ix->direct = palloc_extended(sizeof(int32) * ix->span, MCXT_ALLOC_HUGE);
		memset(ix->direct, 0xFF, sizeof(int32) * ix->span);	/* -1 */
		for (int32 i = 0; i < n; i++)
			ix->direct[(uint64) ids[i] - (uint64) ix->base] = i;
	}
}

static inline int32
ItemIndexFind(const ItemIndex *ix, int64 id)
{
	const int64 *hit;

	if (ix->direct)
	{
		uint64		off = (uint64) id - (uint64) ix->base;	/* wraps for id < base */

		if (off >= (uint64) ix->span)
			return -1;
		return ix->direct[off];
	}
	hit = bsearch(&id, ix->ids, ix->n, sizeof(int64), cmp_int64);
	return hit ? (int32) (hit - ix->ids) : -1;
}

/* the recommender's stored neighbour lists, detoasted into the work context */
typedef struct StoredLists
{
	int32		n;
	int64	   *item;			/* [n] the list's item */
	ArrayType **ids;			/* [n] int8[] neighbour ids, best first */
	ArrayType **sims;			/* [n] float8[] their similarities */
	int64		total;			/* neighbours over all lists */
} StoredLists;

static inline int
ListLength(ArrayType *a)
{
	return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
}

/* Phase 1: the histories, as recommend reads them (usable rows, decay as of now()). */
static InteractionMatrix *
ReadHistories(const Recommender *r, MemoryContext work)
{
	MemoryContext old = MemoryContextSwitchTo(work);
	TripleBuffer *tb = triples_create(work_memory_limit(), "maintenance_work_mem");
	InteractionMatrix *m;

	MemoryContextSwitchTo(old);
	source_read(&r->src, tb, work, true);
	old = MemoryContextSwitchTo(work);
	m = matrix_build_ex(tb, false);
	MemoryContextSwitchTo(old);
	return m;
}

/* Phase 2: the neighbour lists, kept as detoasted arrays in `work`; their size is checked first. */
static void
ReadStoredLists(const Recommender *r, MemoryContext work, StoredLists *out)
{
	Oid			types[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(r->id)};
	bool		isnull;
	Datum		d;
	MemoryContext old;

	if (SPI_execute_with_args("SELECT pg_catalog.sum(pg_catalog.cardinality(neighbor_ids))::pg_catalog.int8"
							  " FROM media_reco.neighbor_store WHERE recommender_id OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "sizing the neighbour lists failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull && (Size) DatumGetInt64(d) * 40 + MemoryContextMemAllocated(work, true) > work_memory_limit())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("recommend_all does not fit in maintenance_work_mem"),
				 errdetail("The recommender stores " INT64_FORMAT " neighbours.", DatumGetInt64(d)),
				 errhint("Raise maintenance_work_mem, or pass users in batches.")));

	if (SPI_execute_with_args("SELECT item_id, neighbor_ids, similarities FROM media_reco.neighbor_store"
							  " WHERE recommender_id OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the neighbour lists failed");
	out->n = (int32) SPI_processed;
	out->total = 0;
	old = MemoryContextSwitchTo(work);
	out->item = palloc(sizeof(int64) * Max(out->n, 1));
	out->ids = palloc(sizeof(ArrayType *) * Max(out->n, 1));
	out->sims = palloc(sizeof(ArrayType *) * Max(out->n, 1));
	for (int32 l = 0; l < out->n; l++)
	{
		HeapTuple	tup = SPI_tuptable->vals[l];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		n1,
					n2,
					n3;
		Datum		d1 = SPI_getbinval(tup, td, 1, &n1);
		Datum		d2 = SPI_getbinval(tup, td, 2, &n2);
		Datum		d3 = SPI_getbinval(tup, td, 3, &n3);

		if (n1 || n2 || n3)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed neighbour list in media_reco.neighbor_store")));
		out->item[l] = DatumGetInt64(d1);
		out->ids[l] = DatumGetArrayTypePCopy(d2);
		out->sims[l] = DatumGetArrayTypePCopy(d3);
		if (ARR_NDIM(out->ids[l]) > 1 || ARR_HASNULL(out->ids[l]) || ARR_NDIM(out->sims[l]) > 1 ||
			ARR_HASNULL(out->sims[l]) || ListLength(out->ids[l]) != ListLength(out->sims[l]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed neighbour list for item " INT64_FORMAT " in media_reco.neighbor_store",
							out->item[l])));
		out->total += ListLength(out->ids[l]);
	}
	MemoryContextSwitchTo(old);
}

/* Phase 3: memory for the accumulators per thread, the neighbour arrays and the results. */
static void
CheckBatchMemory(const InteractionMatrix *m, const StoredLists *lists, int nthreads,
				 int32 n_users, int k, MemoryContext work)
{
	Size		need = (Size) nthreads * (m->n_items + (Size) lists->total) * 20 +
		(Size) lists->total * 12 + (Size) n_users * (Size) k * sizeof(Scored) +
		MemoryContextMemAllocated(work, true);

	if (need > work_memory_limit())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("recommend_all does not fit in maintenance_work_mem"),
				 errdetail("%d users, %d items and %lld stored neighbours need about %zu MB; the limit is %zu MB.",
						   m->n_users, m->n_items, (long long) lists->total, need / (1024 * 1024) + 1,
						   work_memory_limit() / (1024 * 1024)),
				 errhint("Raise maintenance_work_mem, or pass users in batches.")));
}

/*
 * Phase 4: dense ids, the source's items then the neighbour ids outside the
 * source (ascending, distinct; returned in *extra), into sh->all_ids.
 */
static void
DenseIds(BatchShared *sh, const ItemIndex *ix, const StoredLists *lists,
		 int64 **extra_out, int32 *n_extra_out)
{
	const InteractionMatrix *m = sh->m;
	int64	   *extra = palloc_extended(sizeof(int64) * Max(lists->total, 1), MCXT_ALLOC_HUGE);
	int32		n_extra = 0;
	int64	   *ids;

	for (int32 l = 0; l < lists->n; l++)
	{
		int			n = ListLength(lists->ids[l]);
		const int64 *nb = (const int64 *) ARR_DATA_PTR(lists->ids[l]);

		for (int j = 0; j < n; j++)
			if (ItemIndexFind(ix, nb[j]) < 0)
				extra[n_extra++] = nb[j];
	}
	if (n_extra > 1)
	{
		int32		u = 0;

		qsort(extra, n_extra, sizeof(int64), cmp_int64);
		for (int32 j = 0; j < n_extra; j++)
			if (u == 0 || extra[u - 1] != extra[j])
				extra[u++] = extra[j];
		n_extra = u;
	}
	sh->n_all = m->n_items + n_extra;
	ids = palloc_extended(sizeof(int64) * Max(sh->n_all, 1), MCXT_ALLOC_HUGE);
	memcpy(ids, m->item_ids, sizeof(int64) * m->n_items);
	memcpy(ids + m->n_items, extra, sizeof(int64) * n_extra);
	sh->all_ids = ids;
	*extra_out = extra;
	*n_extra_out = n_extra;
}

/* Phase 5: the neighbour lists by source item, in stored order, as dense indexes. */
static void
IndexNeighborLists(BatchShared *sh, const ItemIndex *ix, const StoredLists *lists,
				   const int64 *extra, int32 n_extra)
{
	const InteractionMatrix *m = sh->m;
	int64	   *ptr = palloc0(sizeof(int64) * ((Size) m->n_items + 1));
	int32	   *idx = palloc_extended(sizeof(int32) * Max(lists->total, 1), MCXT_ALLOC_HUGE);
	double	   *sim = palloc_extended(sizeof(double) * Max(lists->total, 1), MCXT_ALLOC_HUGE);
	int32	   *owner = palloc_extended(sizeof(int32) * Max(lists->n, 1), MCXT_ALLOC_HUGE);
	int64		pos = 0;

	for (int32 l = 0; l < lists->n; l++)
	{
		owner[l] = ItemIndexFind(ix, lists->item[l]);
		if (owner[l] >= 0)
			ptr[owner[l] + 1] = ListLength(lists->ids[l]);
	}
	for (int32 i = 0; i < m->n_items; i++)
		ptr[i + 1] += ptr[i];
	for (int32 l = 0; l < lists->n; l++)
	{
		int			n;
		const int64 *ids;
		const double *sims;

		if (owner[l] < 0)
			continue;			/* an item no longer in the source is in no history */
		n = ListLength(lists->ids[l]);
		ids = (const int64 *) ARR_DATA_PTR(lists->ids[l]);
		sims = (const double *) ARR_DATA_PTR(lists->sims[l]);
		pos = ptr[owner[l]];
		for (int j = 0; j < n; j++)
		{
			int32		d = ItemIndexFind(ix, ids[j]);

			if (d < 0)
			{
				const int64 *hit = bsearch(&ids[j], extra, n_extra, sizeof(int64), cmp_int64);

				d = m->n_items + (int32) (hit - extra);
			}
			idx[pos + j] = d;
			sim[pos + j] = sims[j];
		}
		if ((l & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	sh->nb_ptr = ptr;
	sh->nb_idx = idx;
	sh->nb_sim = sim;
}

/* Phase 6: the users to score (dense indexes in id order) and each worker's scratch arrays. */
static void
PrepareScoring(BatchShared *sh, const int64 *want, int nwant, int nthreads)
{
	const InteractionMatrix *m = sh->m;
	int32	   *users = palloc_extended(sizeof(int32) * Max(m->n_users, 1), MCXT_ALLOC_HUGE);

	for (int32 u = 0; u < m->n_users; u++)
		if (want == NULL || sorted_ids_contain(want, nwant, m->user_ids[u]))
			users[sh->n_users++] = u;
	sh->users = users;
	sh->res = palloc_extended(sizeof(Scored) * Max((Size) sh->n_users * sh->k, 1), MCXT_ALLOC_HUGE);
	sh->res_n = palloc0(sizeof(int32) * Max(sh->n_users, 1));
	sh->acc = palloc(sizeof(double *) * nthreads);
	sh->mark = palloc(sizeof(uint32 *) * nthreads);
	sh->seen = palloc(sizeof(uint32 *) * nthreads);
	sh->touched = palloc(sizeof(int32 *) * nthreads);
	sh->stamp = palloc0(sizeof(uint32) * nthreads);
	for (int t = 0; t < nthreads; t++)
	{
		sh->acc[t] = palloc_extended(sizeof(double) * Max(sh->n_all, 1), MCXT_ALLOC_HUGE);
		sh->mark[t] = palloc_extended(sizeof(uint32) * Max(sh->n_all, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		sh->seen[t] = palloc_extended(sizeof(uint32) * Max(sh->n_all, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		sh->touched[t] = palloc_extended(sizeof(int32) * ((Size) sh->n_all + 1), MCXT_ALLOC_HUGE);
	}
}

/* Phase 7: score on the helper threads (ScoreBlock), then report the first non-finite score. */
static void
ScoreUsers(BatchShared *sh, int nthreads)
{
	sh->run.n_tasks = ((int64) sh->n_users + BATCH_BLOCK - 1) / BATCH_BLOCK;
	sh->run.n_workers = nthreads;
	sh->run.fn = ScoreBlock;
	sh->run.arg = sh;
	parallel_run(&sh->run, &interrupt_hooks);
	if (sh->bad)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("score of item " INT64_FORMAT " for user " INT64_FORMAT " is out of range",
						sh->bad_item, sh->bad_user)));
}

/* Phase 8: the rows, in user order, ranks 1..n. */
static void
EmitRows(ReturnSetInfo *rsinfo, const BatchShared *sh)
{
	for (int32 q = 0; q < sh->n_users; q++)
	{
		int64		user = sh->m->user_ids[sh->users[q]];

		for (int i = 0; i < sh->res_n[q]; i++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};
			const Scored *c = &sh->res[(int64) q * sh->k + i];

			values[0] = Int64GetDatum(user);
			values[1] = Int64GetDatum(c->item);
			values[2] = Float8GetDatum(c->score);
			values[3] = Int32GetDatum(i + 1);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		if ((q & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
}

/*
 * recommend_all(name, k, users): recommend()'s top k for every user of the
 * source (or the given ones), in the phases below; everything lives in a
 * work context deleted at the end.
 */
Datum
recommend_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext work;
	MemoryContext old;
	Recommender r;
	int			k;
	int64	   *want = NULL;
	int			nwant = 0;
	InteractionMatrix *m;
	StoredLists lists;
	BatchShared sh;
	int64	   *extra;
	int32		n_extra;
	int			nthreads = Max(1, Min(media_reco_threads, 64));
	ItemIndex	ix;

	check_not_null(fcinfo, 0, "name");
	check_not_null(fcinfo, 1, "k");
	k = PG_GETARG_INT32(1);
	check_k(k, "k");
	if (!PG_ARGISNULL(2))
		want = sorted_unique_ids(PG_GETARG_ARRAYTYPE_P(2), &nwant);

	InitMaterializedSRF(fcinfo, 0);
	work = AllocSetContextCreate(callcxt, "media_reco recommend_all", ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	recommender_fetch(arg_text_or_null(fcinfo, 0), false, work, &r);
	recommender_require_refreshed(&r);
	recommender_require_source(&r);
	source_validate(&r.src);
	m = ReadHistories(&r, work);
	ReadStoredLists(&r, work, &lists);
	SPI_finish();
	CheckBatchMemory(m, &lists, nthreads, want ? nwant : m->n_users, k, work);

	old = MemoryContextSwitchTo(work);
	memset(&sh, 0, sizeof(sh));
	sh.m = m;
	sh.k = k;
	ItemIndexInit(&ix, m->item_ids, m->n_items);
	DenseIds(&sh, &ix, &lists, &extra, &n_extra);
	IndexNeighborLists(&sh, &ix, &lists, extra, n_extra);
	PrepareScoring(&sh, want, nwant, nthreads);
	MemoryContextSwitchTo(old);

	ScoreUsers(&sh, nthreads);
	EmitRows(rsinfo, &sh);
	MemoryContextDelete(work);
	return (Datum) 0;
}
