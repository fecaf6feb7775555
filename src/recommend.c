/*
 * recommend.c
 *	  recommend() and similar_items(): the read path over the neighbour table.
 *
 * recommend() is called once per page view, so its cost is a few index
 * probes: the user's history is read live from the source (one query, its
 * plan kept in plan_cache.c, keyed by its text), the history items'
 * neighbour rows are fetched in one index scan (`item_id = ANY($2)`), and
 * scores are summed in a hash table in C.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "citus.h"
#include "neighbors.h"
#include "plan_cache.h"
#include "serving.h"
#include "util.h"

PG_FUNCTION_INFO_V1(recommend);
PG_FUNCTION_INFO_V1(recommend_for_items);
PG_FUNCTION_INFO_V1(explain_recommendation);
PG_FUNCTION_INFO_V1(similar_items);
PG_FUNCTION_INFO_V1(popular_items);


/* Validate a stored neighbour array: one dimension, no NULLs, expected length. */
static void *
ArrayData(ArrayType *a, Oid elemtype, int *len)
{
	if (ARR_NDIM(a) > 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != elemtype)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed neighbour list in media_reco.neighbor_store")));
	*len = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	return ARR_DATA_PTR(a);
}

/* Set up the SRF, connect SPI and look up a refreshed recommender. */
static void
BeginRead(FunctionCallInfo fcinfo, const char *name, MemoryContext callcxt, Recommender *r)
{
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	recommender_fetch(name, false, callcxt, r);
	recommender_require_refreshed(r);
}

/* ---------- direct probes of the neighbour table ---------- */

/*
 * The read path probes media_reco.neighbor_store's primary key directly, one
 * history item at a time and in history order: no executor start-up, no
 * tuple copies, and a summation order that does not depend on the plan.
 * The caller's privileges are checked as SELECT on the table would; row-level
 * security on this internal table is refused rather than bypassed.
 */
typedef struct NeighborProbe
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	int32		rec_id;
	/*
	 * When Citus manages the table (media_reco.citus_setup() made it a
	 * reference table), its heap here is an empty shell: each list is read
	 * with a query instead, in its own SPI connection, and copied into cxt.
	 */
	bool		via_query;
	MemoryContext cxt;
} NeighborProbe;

#define PROBE_SQL "SELECT neighbor_ids, similarities FROM media_reco.neighbor_store" \
	" WHERE recommender_id OPERATOR(pg_catalog.=) $1 AND item_id OPERATOR(pg_catalog.=) $2"

static void
ProbeBegin(NeighborProbe *np, int32 rec_id)
{
	Oid			relid = store_relid();
	AttrNumber	cols[4] = {1, 2, 3, 4};
	Oid			pk;

	check_relation_privilege(relid, ACL_SELECT, cols, 4);
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("row-level security on media_reco.neighbor_store is not supported")));
	np->rec_id = rec_id;
	np->via_query = relation_is_citus_table(relid);
	if (np->via_query)
	{
		np->cxt = CurrentMemoryContext;
		np->slot = NULL;
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		return;
	}
	np->rel = table_open(relid, AccessShareLock);
	RelationGetIndexList(np->rel);	/* fills rd_pkindex */
	pk = np->rel->rd_pkindex;
	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("media_reco.neighbor_store has no primary key"),
				 errhint("Reinstall the extension.")));
	np->idx = index_open(pk, AccessShareLock);
	np->scan = index_beginscan(np->rel, np->idx, GetActiveSnapshot(), 2, 0);
	np->slot = table_slot_create(np->rel, NULL);
}

/* ProbeItem through the planner: the arrays are copies in np->cxt. */
static bool
ProbeItemByQuery(NeighborProbe *np, int64 item, ArrayType **ids, ArrayType **sims)
{
	Oid			types[2] = {INT4OID, INT8OID};
	Datum		args[2] = {Int32GetDatum(np->rec_id), Int64GetDatum(item)};
	bool		null_ids,
				null_sims;
	Datum		d_ids,
				d_sims;
	MemoryContext old;

	if (plan_cache_execute(PROBE_SQL, 2, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading media_reco.neighbor_store failed");
	if (SPI_processed == 0)
		return false;
	d_ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &null_ids);
	d_sims = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &null_sims);
	if (null_ids || null_sims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed neighbour list for item " INT64_FORMAT " in media_reco.neighbor_store", item)));
	old = MemoryContextSwitchTo(np->cxt);
	*ids = DatumGetArrayTypePCopy(d_ids);
	*sims = DatumGetArrayTypePCopy(d_sims);
	MemoryContextSwitchTo(old);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/* whether a list ProbeItem returned is the caller's to free (a copy, not the slot's) */
static inline bool
ProbeCopied(const NeighborProbe *np, const ArrayType *a, int att)
{
	return np->via_query || (Pointer) a != DatumGetPointer(np->slot->tts_values[att]);
}

/* The stored lists of one item, or false; arrays may be detoasted copies. */
static bool
ProbeItem(NeighborProbe *np, int64 item, ArrayType **ids, ArrayType **sims)
{
	if (np->via_query)
		return ProbeItemByQuery(np, item, ids, sims);
	ScanKeyInit(&np->keys[0], 1, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(np->rec_id));
	ScanKeyInit(&np->keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(item));
	index_rescan(np->scan, np->keys, 2, NULL, 0);
	if (!index_getnext_slot(np->scan, ForwardScanDirection, np->slot))
		return false;
	slot_getsomeattrs(np->slot, 4);
	if (np->slot->tts_isnull[2] || np->slot->tts_isnull[3])
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed neighbour list for item " INT64_FORMAT " in media_reco.neighbor_store", item)));
	*ids = DatumGetArrayTypeP(np->slot->tts_values[2]);
	*sims = DatumGetArrayTypeP(np->slot->tts_values[3]);
	return true;
}

static void
ProbeEnd(NeighborProbe *np)
{
	if (np->via_query)
	{
		SPI_finish();
		return;
	}
	index_endscan(np->scan);
	ExecDropSingleTupleTableSlot(np->slot);
	index_close(np->idx, NoLock);
	table_close(np->rel, NoLock);
}

/* ---------- score accumulation ---------- */

typedef struct ScoreEntry
{
	int64		item;
	double		score;
	char		status;
} ScoreEntry;

static inline uint32
HashItem(int64 key)
{
	uint64		h = (uint64) key * UINT64CONST(0x9E3779B97F4A7C15);

	return (uint32) (h >> 32);
}

#define SH_PREFIX scoremap
#define SH_ELEMENT_TYPE ScoreEntry
#define SH_KEY_TYPE int64
#define SH_KEY item
#define SH_HASH_KEY(tb, k) HashItem(k)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

#include "topk.h"

/*
 * Visit the stored list of every history item that has one, in history
 * order: visit(ctx, history index, ids, similarities, length).  The arrays
 * are valid only during the call.
 */
typedef void (*ListVisit) (void *ctx, int h, const int64 *ids, const double *sims, int n);

static void
ForEachList(const Recommender *r, const HistItem *hist, int nhist, ListVisit visit, void *ctx)
{
	NeighborProbe np;

	ProbeBegin(&np, r->id);
	for (int i = 0; i < nhist; i++)
	{
		ArrayType  *ids_a,
				   *sims_a;
		int			nids,
					nsims;
		int64	   *ids;
		double	   *sims;

		if (!ProbeItem(&np, hist[i].item, &ids_a, &sims_a))
			continue;
		ids = ArrayData(ids_a, INT8OID, &nids);
		sims = ArrayData(sims_a, FLOAT8OID, &nsims);
		if (nids != nsims)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed neighbour list for item " INT64_FORMAT " in media_reco.neighbor_store",
							hist[i].item)));
		visit(ctx, i, ids, sims, nids);
		/* detoasted copies (lists stored compressed or out of line) are freed as we go */
		if (ProbeCopied(&np, ids_a, 2))
			pfree(ids_a);
		if (ProbeCopied(&np, sims_a, 3))
			pfree(sims_a);
		if ((i & 255) == 255)
			CHECK_FOR_INTERRUPTS();
	}
	ProbeEnd(&np);
}

/*
 * Gathering costs 16 bytes an entry (and the dense array up to 36 more):
 * histories whose lists may hold more entries than this (5,000 items at
 * k = 200; 16 MB) stream into the hash table instead, in the same order.
 */
#define GATHER_MAX_ENTRIES ((int64) 1 << 20)

/*
 * The history's neighbour lists, copied end to end: list of history item h
 * at [start[h], start[h + 1]).  Scoring from the copy lets the accumulator
 * be chosen from the ids' range before the first addition.
 */
typedef struct Gathered
{
	int64	   *ids;
	double	   *sims;
	int64	   *start;			/* [nhist + 1] */
	int64		len;
	int64		cap;
	int64		lo;				/* smallest and largest id (len > 0) */
	int64		hi;
} Gathered;

static void
GatherList(void *arg, int h, const int64 *ids, const double *sims, int n)
{
	Gathered   *g = arg;

	if (g->len + n > g->cap)
	{
		int64		cap = Max(g->cap * 2, g->len + n);

		if ((Size) cap > MaxAllocHugeSize / sizeof(int64))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the history's neighbour lists are too long (" INT64_FORMAT " entries)", cap)));
		g->ids = repalloc_huge(g->ids, sizeof(int64) * cap);
		g->sims = repalloc_huge(g->sims, sizeof(double) * cap);
		g->cap = cap;
	}
	memcpy(g->ids + g->len, ids, sizeof(int64) * n);
	memcpy(g->sims + g->len, sims, sizeof(double) * n);
	for (int j = 0; j < n; j++)
	{
		if (g->len + j == 0 || ids[j] < g->lo)
			g->lo = ids[j];
		if (g->len + j == 0 || ids[j] > g->hi)
			g->hi = ids[j];
	}
	g->len += n;
	g->start[h + 1] = g->len;
}

static void
GatherLists(const Recommender *r, const HistItem *hist, int nhist, Gathered *g)
{
	g->cap = Max((int64) nhist * Max(r->params.k, 1), 16);
	g->cap = Min(g->cap, GATHER_MAX_ENTRIES);
	g->ids = palloc_extended(sizeof(int64) * g->cap, MCXT_ALLOC_HUGE);
	g->sims = palloc_extended(sizeof(double) * g->cap, MCXT_ALLOC_HUGE);
	g->start = palloc0(sizeof(int64) * (nhist + 1));
	g->len = 0;
	g->lo = g->hi = 0;
	ForEachList(r, hist, nhist, GatherList, g);
	/* an item without a stored list ends where the one before it ended */
	for (int h = 1; h <= nhist; h++)
		if (g->start[h] < g->start[h - 1])
			g->start[h] = g->start[h - 1];
}


/*
 * The two accumulators of score(j) = sum over history items i of
 * w(i) * sim(i, j).  Both add in the same order (history order, then list
 * order), so they give the same bits.  The dense one is an array indexed by
 * id - lo, used when the ids span at most DENSE_SPAN_PER_ENTRY times the
 * entries gathered, or DENSE_SPAN_MIN (catalogues numbered from 1 or so, the
 * usual case): an addition is then one load and store instead of a hash
 * probe, which was most of recommend()'s time at k = 200.  Otherwise a hash
 * table.  Each offers its candidates that pass the filters to the top-k heap.
 */
#define DENSE_SPAN_PER_ENTRY 4
#define DENSE_SPAN_MIN 65536

/* the smallest item whose score is not finite, reported after every candidate was seen */
typedef struct Overflow
{
	bool		any;
	int64		item;
} Overflow;

static void
OfferCandidate(Scored *cand, int *ncand, int k, int64 item, double score, Overflow *ov)
{
	Scored		c;

	if (!isfinite(score))
	{
		if (!ov->any || item < ov->item)
			ov->item = item;
		ov->any = true;
		return;
	}
	c.item = item;
	c.score = score;
	ScoredOffer(cand, ncand, k, c);
}

static void
ScoreDense(const Gathered *g, const HistItem *hist, int nhist, const ResultFilter *f,
		   Scored *cand, int *ncand, int k, Overflow *ov)
{
	uint64		span = (uint64) g->hi - (uint64) g->lo + 1;
	double	   *acc = palloc_extended(sizeof(double) * span, MCXT_ALLOC_HUGE);
	uint8	   *state = palloc_extended(span, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);	/* 0 new, 1 scored, 2 seen */
	uint32	   *touched = palloc_extended(sizeof(uint32) * Min((uint64) g->len, span), MCXT_ALLOC_HUGE);
	uint32		ntouched = 0;

	/* the user's own items never score (exclude_seen) */
	if (f->exclude_seen)
		for (int i = 0; i < nhist; i++)
			if (hist[i].item >= g->lo && hist[i].item <= g->hi)
				state[(uint64) hist[i].item - (uint64) g->lo] = 2;
	for (int h = 0; h < nhist; h++)
	{
		double		w = hist[h].w;

		for (int64 e = g->start[h]; e < g->start[h + 1]; e++)
		{
			uint64		x = (uint64) g->ids[e] - (uint64) g->lo;

			if (state[x] == 0)
			{
				state[x] = 1;
				acc[x] = 0;
				touched[ntouched++] = (uint32) x;
			}
			if (state[x] == 1)
				acc[x] += w * g->sims[e];
		}
	}
	for (uint32 t = 0; t < ntouched; t++)
	{
		uint32		x = touched[t];
		int64		item = (int64) ((uint64) g->lo + x);

		/* the seen items were never touched */
		if (serving_passes_lists(f, item))
			OfferCandidate(cand, ncand, k, item, acc[x], ov);
	}
}

typedef struct HashScores
{
	scoremap_hash *scores;
	const HistItem *hist;
} HashScores;

static void
AddListToHash(void *arg, int h, const int64 *ids, const double *sims, int n)
{
	HashScores *hs = arg;
	double		w = hs->hist[h].w;

	for (int j = 0; j < n; j++)
	{
		bool		found;
		ScoreEntry *e = scoremap_insert(hs->scores, ids[j], &found);

		if (!found)
			e->score = 0;
		e->score += w * sims[j];
	}
}

/*
 * The hash accumulator, over the gathered lists (g) or, when g is NULL,
 * straight from the probes (histories too long to gather).
 */
static void
ScoreHashed(const Recommender *r, const Gathered *g, const HistItem *hist, int nhist,
			const ResultFilter *f, Scored *cand, int *ncand, int k, Overflow *ov)
{
	HashScores	hs;
	scoremap_iterator it;
	ScoreEntry *e;

	/* sized for the usual case; bounded, it grows only for very long lists */
	hs.scores = scoremap_create(CurrentMemoryContext,
								(uint32) Min(g ? g->len : (int64) nhist * Min(r->params.k, 64), 1 << 20), NULL);
	hs.hist = hist;
	if (g)
		for (int h = 0; h < nhist; h++)
			AddListToHash(&hs, h, g->ids + g->start[h], g->sims + g->start[h],
						  (int) (g->start[h + 1] - g->start[h]));
	else
		ForEachList(r, hist, nhist, AddListToHash, &hs);
	scoremap_start_iterate(hs.scores, &it);
	while ((e = scoremap_iterate(hs.scores, &it)) != NULL)
	{
		/* filtered items first: a seen or excluded item's score never matters */
		if (serving_passes(f, hist, nhist, e->item))
			OfferCandidate(cand, ncand, k, e->item, e->score, ov);
	}
}

/*
 * Score the history against the stored neighbour lists; emit the k best
 * (ties: smaller id) among the items that pass the filters (applied while
 * scoring, so a filter never shortens the list while other candidates
 * exist), then, with fallback, popular items.
 */
static void
ScoreAndEmit(FunctionCallInfo fcinfo, const Recommender *r, const HistItem *hist, int nhist,
			 int k, const ResultFilter *f, const char *who)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Scored	   *cand;
	int			ncand = 0;
	int64	   *taken;

	cand = palloc(sizeof(Scored) * k);
	if (nhist > 0)
	{
		Gathered	g;
		Overflow	ov = {false, 0};

		if ((int64) nhist * r->params.k > GATHER_MAX_ENTRIES)
			ScoreHashed(r, NULL, hist, nhist, f, cand, &ncand, k, &ov);
		else
		{
			GatherLists(r, hist, nhist, &g);
			if (g.len > 0)
			{
				uint64		span = (uint64) g.hi - (uint64) g.lo + 1;

				/* span 0 is a wrap-around: the ids cover all of int64 */
				if (span != 0 && span <= PG_UINT32_MAX &&
					span <= Max((uint64) g.len * DENSE_SPAN_PER_ENTRY, DENSE_SPAN_MIN))
					ScoreDense(&g, hist, nhist, f, cand, &ncand, k, &ov);
				else
					ScoreHashed(r, &g, hist, nhist, f, cand, &ncand, k, &ov);
			}
		}
		if (ov.any)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("score of item " INT64_FORMAT " for %s is out of range", ov.item, who)));
		qsort(cand, ncand, sizeof(Scored), CmpScored);
	}
	taken = palloc(sizeof(int64) * Max(ncand, 1));
	for (int i = 0; i < ncand; i++)
	{
		serving_emit_row(rsinfo, f, cand[i].item, cand[i].score, false, i + 1, "neighbors");
		taken[i] = cand[i].item;
	}
	if (f->fallback_popular && ncand < k)
		serving_fill_popular(rsinfo, &r->src, hist, nhist, f, taken, ncand, k, ncand + 1);
}

/* Look up the recommender and read a user's live history; SPI is finished on return. */
static HistItem *
UserHistory(FunctionCallInfo fcinfo, const char *name, int64 user_id, MemoryContext callcxt,
			Recommender *r, int *nhist)
{
	HistItem   *hist;

	BeginRead(fcinfo, name, callcxt, r);
	recommender_require_source(r);	/* a dropped source, by its name */
	source_validate(&r->src);	/* clear errors if a column went away or changed */
	hist = serving_read_history(&r->src, user_id, callcxt, nhist);
	SPI_finish();
	return hist;
}

/*
 * recommend(name, user_id, k, exclude_seen, exclude, only, fallback): the
 * user's live history scored against the stored neighbour lists, rows
 * (item_id, score, rank, reason), best first, ties to the smaller id.
 */
Datum
recommend(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	Recommender r;
	int64		user_id;
	int			k;
	HistItem   *hist;
	int			nhist;
	char		who[64];
	ResultFilter f;
	char	   *fallback;

	check_not_null(fcinfo, 0, "name");
	check_not_null(fcinfo, 1, "user_id");
	check_not_null(fcinfo, 2, "k");
	check_not_null(fcinfo, 3, "exclude_seen");
	check_not_null(fcinfo, 6, "fallback");
	user_id = PG_GETARG_INT64(1);
	k = PG_GETARG_INT32(2);
	check_k(k, "k");
	memset(&f, 0, sizeof(f));
	f.exclude_seen = PG_GETARG_BOOL(3);
	f.with_reason = true;
	if (!PG_ARGISNULL(4))
		f.exclude = sorted_unique_ids(PG_GETARG_ARRAYTYPE_P(4), &f.nexclude);
	if (!PG_ARGISNULL(5))
		f.only = sorted_unique_ids(PG_GETARG_ARRAYTYPE_P(5), &f.nonly);	/* empty: nothing passes */
	fallback = text_to_cstring(PG_GETARG_TEXT_PP(6));
	if (strcmp(fallback, "popular") == 0)
		f.fallback_popular = true;
	else if (strcmp(fallback, "none") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown fallback \"%s\"", fallback),
				 errhint("Use 'none' or 'popular'.")));

	hist = UserHistory(fcinfo, arg_text_or_null(fcinfo, 0), user_id, callcxt, &r, &nhist);
	if (nhist == 0 && !f.fallback_popular)
		return (Datum) 0;		/* no history, no recommendations (not an error) */
	snprintf(who, sizeof(who), "user " INT64_FORMAT, user_id);
	ScoreAndEmit(fcinfo, &r, hist, nhist, k, &f, who);
	return (Datum) 0;
}

/*
 * recommend_for_items(name, items, weights, k, exclude): an anonymous
 * session scored exactly as recommend scores a history: NULL items (or
 * items whose weight is NULL) are ignored, duplicates are summed, weights
 * default to 1, the given items and `exclude` are not recommended.
 */
Datum
recommend_for_items(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	Recommender r;
	ArrayType  *items_a;
	Datum	   *items,
			   *weights = NULL;
	bool	   *inull,
			   *wnull = NULL;
	int			nitems,
				nweights = 0,
				nhist = 0,
				nexclude = 0,
				k;
	HistItem   *hist;
	int64	   *exclude = NULL;

	check_not_null(fcinfo, 0, "name");
	check_not_null(fcinfo, 1, "items");
	check_not_null(fcinfo, 3, "k");
	k = PG_GETARG_INT32(3);
	check_k(k, "k");
	items_a = PG_GETARG_ARRAYTYPE_P(1);
	deconstruct_array(items_a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &items, &inull, &nitems);
	if (!PG_ARGISNULL(2))
	{
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &weights, &wnull, &nweights);
		if (nweights != nitems)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("weights has %d elements but items has %d", nweights, nitems)));
	}
	if (!PG_ARGISNULL(4))
		exclude = sorted_unique_ids(PG_GETARG_ARRAYTYPE_P(4), &nexclude);

	hist = palloc(sizeof(HistItem) * Max(nitems, 1));
	for (int i = 0; i < nitems; i++)
	{
		if (inull[i] || (weights && wnull[i]))
			continue;
		hist[nhist].item = DatumGetInt64(items[i]);
		hist[nhist].w = weights ? DatumGetFloat8(weights[i]) : 1.0;
		if (isnan(hist[nhist].w) || isinf(hist[nhist].w))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weights must be finite, got %g at position %d", hist[nhist].w, i + 1)));
		nhist++;
	}
	nhist = serving_merge_history(hist, nhist, "the session");

	BeginRead(fcinfo, arg_text_or_null(fcinfo, 0), callcxt, &r);
	SPI_finish();
	if (nhist == 0)
		return (Datum) 0;
	{
		ResultFilter f;

		memset(&f, 0, sizeof(f));
		f.exclude_seen = true;
		f.exclude = exclude;
		f.nexclude = nexclude;
		ScoreAndEmit(fcinfo, &r, hist, nhist, k, &f, "the session");
	}
	return (Datum) 0;
}

typedef struct ExplainCtx
{
	int64		target;
	double	   *sim;			/* [nhist], NaN = target not among that item's neighbours */
} ExplainCtx;

static void
FindTarget(void *arg, int h, const int64 *ids, const double *sims, int n)
{
	ExplainCtx *c = arg;

	for (int j = 0; j < n; j++)
		if (ids[j] == c->target)
		{
			c->sim[h] = sims[j];
			break;
		}
}

typedef struct Because
{
	int64		item;
	double		w;
	double		sim;
	double		contribution;
} Because;

static int
CmpBecause(const void *a, const void *b)
{
	const Because *x = a;
	const Because *y = b;

	if (x->contribution != y->contribution)
		return x->contribution > y->contribution ? -1 : 1;
	return (x->item > y->item) - (x->item < y->item);
}

/*
 * explain_recommendation(name, user_id, item_id): the history items whose
 * stored neighbour lists contain item_id, with weight, similarity and
 * contribution = weight * similarity; the contributions sum to the item's
 * recommend() score.  Ranked by contribution, ties by smaller item id.
 */
Datum
explain_recommendation(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	Recommender r;
	HistItem   *hist;
	int			nhist,
				nb = 0;
	ExplainCtx	ctx;
	Because    *rows;

	check_not_null(fcinfo, 0, "name");
	check_not_null(fcinfo, 1, "user_id");
	check_not_null(fcinfo, 2, "item_id");
	hist = UserHistory(fcinfo, arg_text_or_null(fcinfo, 0), PG_GETARG_INT64(1), callcxt, &r, &nhist);
	if (nhist == 0)
		return (Datum) 0;

	ctx.target = PG_GETARG_INT64(2);
	ctx.sim = palloc(sizeof(double) * nhist);
	for (int i = 0; i < nhist; i++)
		ctx.sim[i] = NAN;
	ForEachList(&r, hist, nhist, FindTarget, &ctx);

	rows = palloc(sizeof(Because) * nhist);
	for (int i = 0; i < nhist; i++)
	{
		if (isnan(ctx.sim[i]))
			continue;
		rows[nb].item = hist[i].item;
		rows[nb].w = hist[i].w;
		rows[nb].sim = ctx.sim[i];
		rows[nb].contribution = hist[i].w * ctx.sim[i];
		nb++;
	}
	qsort(rows, nb, sizeof(Because), CmpBecause);
	for (int i = 0; i < nb; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = Int64GetDatum(rows[i].item);
		values[1] = Float8GetDatum(rows[i].w);
		values[2] = Float8GetDatum(rows[i].sim);
		values[3] = Float8GetDatum(rows[i].contribution);
		values[4] = Int32GetDatum(i + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * similar_items(name, item_id, k): the item's stored neighbour list as rows
 * (neighbor_id, similarity, rank), as of the last refresh; no source read.
 */
Datum
similar_items(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	Recommender r;
	int			k;
	NeighborProbe np;
	ArrayType  *ids_a,
			   *sims_a;

	check_not_null(fcinfo, 0, "name");
	check_not_null(fcinfo, 1, "item_id");
	check_not_null(fcinfo, 2, "k");
	k = PG_GETARG_INT32(2);
	check_k(k, "k");

	BeginRead(fcinfo, arg_text_or_null(fcinfo, 0), callcxt, &r);
	SPI_finish();

	ProbeBegin(&np, r.id);
	if (ProbeItem(&np, PG_GETARG_INT64(1), &ids_a, &sims_a))
	{
		int			nids,
					nsims;
		int64	   *ids = ArrayData(ids_a, INT8OID, &nids);
		double	   *sims = ArrayData(sims_a, FLOAT8OID, &nsims);

		if (nids != nsims)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed neighbour list in media_reco.neighbor_store")));
		for (int i = 0; i < Min(nids, k); i++)
		{
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			values[0] = Int64GetDatum(ids[i]);
			values[1] = Float8GetDatum(sims[i]);
			values[2] = Int32GetDatum(i + 1);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	ProbeEnd(&np);
	return (Datum) 0;
}

/*
 * popular_items(name, k, since): the items with the most distinct users in
 * the recommender's source (its NULL rules apply), optionally counting only
 * rows at or after `since` (which needs the recommender's time column).
 * Ties go to the smaller item id.  Read live; no refresh needed.
 */
Datum
popular_items(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	Recommender r;
	bool		since = !PG_ARGISNULL(2);
	Oid			types[2] = {INT4OID, TIMESTAMPTZOID};
	Datum		args[2];
	int			k;
	int			rc;

	check_not_null(fcinfo, 0, "name");
	check_not_null(fcinfo, 1, "k");
	k = PG_GETARG_INT32(1);
	check_k(k, "k");

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	recommender_fetch(arg_text_or_null(fcinfo, 0), false, callcxt, &r);
	recommender_require_source(&r);
	source_validate(&r.src);
	if (since && r.src.time_col == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recommender \"%s\" has no time column, so since cannot be used", r.name),
				 errhint("Create the recommender with time_col and half_life.")));
	args[0] = Int32GetDatum(k);
	args[1] = since ? PG_GETARG_DATUM(2) : (Datum) 0;
	rc = plan_cache_execute(source_popular_sql(&r.src, since), since ? 2 : 1, types, args,
							NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "counting popular items failed: %s", SPI_result_code_string(rc));
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		bool		isnull;
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull);
		values[1] = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);
		values[2] = Int32GetDatum((int32) row + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
