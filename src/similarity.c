/*
 * similarity.c
 *	  item_similarity(): top-k item neighbours computed on the fly, and the
 *	  run over a source shared with refresh_neighbors.
 *
 * Options of one metric given to another (bm25_k1 to cosine, ease_lambda to
 * rp3beta, ...) are checked as strictly as for their own metric and then
 * ignored: a typo in an option is an error whatever the metric, and
 * switching a recommender's metric never makes its stored options invalid.
 */
#include "postgres.h"

#include <math.h>

#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "citus.h"
#include "pairsums.h"
#include "similarity.h"
#include "util.h"

PG_FUNCTION_INFO_V1(item_similarity);

/*
 * Parse the metric name and check k, min_support and shrinkage into *out
 * (22023 naming the bad argument); sets the BM25 defaults, which
 * check_bm25_params overrides.
 */
void
check_sim_params(const char *metric, int k, int min_support, double shrinkage, SimParams *out)
{
	if (!sim_metric_parse(metric, &out->metric))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown similarity metric \"%s\"", metric),
				 errhint("Supported metrics are cosine, jaccard, adjusted_cosine, pearson, conditional, bm25, ease and rp3beta.")));
	check_k(k, "k");
	if (min_support < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_support must be at least 1, got %d", min_support)));
	if (isnan(shrinkage) || isinf(shrinkage) || shrinkage < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shrinkage must be a finite number >= 0, got %g", shrinkage)));
	out->k = k;
	out->min_support = min_support;
	out->shrinkage = shrinkage;
	out->bm25_k1 = 100;
	out->bm25_b = 0.8;
	out->ease_lambda = SIM_EASE_LAMBDA_DEFAULT;
	out->rp3_alpha = SIM_RP3_ALPHA_DEFAULT;
	out->rp3_beta = SIM_RP3_BETA_DEFAULT;
	out->max_items = 0;
	out->progress = NULL;
}

/* Check bm25_k1 (finite, >= 0) and bm25_b (in [0, 1]) into *out; 22023 otherwise. */
void
check_bm25_params(double k1, double b, SimParams *out)
{
	if (isnan(k1) || isinf(k1) || k1 < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bm25_k1 must be a finite number >= 0, got %g", k1)));
	if (!(b >= 0 && b <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bm25_b must be between 0 and 1, got %g", b)));
	out->bm25_k1 = k1;
	out->bm25_b = b;
}

void
check_learned_params(const double *ease_lambda, const double *rp3_alpha, const double *rp3_beta,
					 const int32 *ease_max_items, SimParams *out)
{
	if (ease_lambda && !(*ease_lambda > 0 && isfinite(*ease_lambda)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ease_lambda must be a finite number > 0, got %g", *ease_lambda)));
	if (rp3_alpha && !(*rp3_alpha > 0 && isfinite(*rp3_alpha)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rp3_alpha must be a finite number > 0, got %g", *rp3_alpha)));
	if (rp3_beta && !(*rp3_beta >= 0 && isfinite(*rp3_beta)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rp3_beta must be a finite number >= 0, got %g", *rp3_beta)));
	if (ease_max_items && *ease_max_items < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ease_max_items must be at least 1, got %d", *ease_max_items)));
	out->ease_lambda = ease_lambda ? *ease_lambda : SIM_EASE_LAMBDA_DEFAULT;
	out->rp3_alpha = rp3_alpha ? *rp3_alpha : SIM_RP3_ALPHA_DEFAULT;
	out->rp3_beta = rp3_beta ? *rp3_beta : SIM_RP3_BETA_DEFAULT;
	out->max_items = ease_max_items ? *ease_max_items : 0;
}

void
learned_args(FunctionCallInfo fcinfo, int first, SimParams *p)
{
	double		v[3];
	int32		max_items = 0;
	bool		given[4] = {false, false, false, false};

	if (PG_NARGS() >= first + 4)
	{
		for (int i = 0; i < 3; i++)
			if ((given[i] = !PG_ARGISNULL(first + i)))
				v[i] = PG_GETARG_FLOAT8(first + i);
		if ((given[3] = !PG_ARGISNULL(first + 3)))
			max_items = PG_GETARG_INT32(first + 3);
	}
	check_learned_params(given[0] ? &v[0] : NULL, given[1] ? &v[1] : NULL,
						 given[2] ? &v[2] : NULL, given[3] ? &max_items : NULL, p);
}

/* What EASE's progress callback needs: the stats it fills, and whom to report to. */
typedef struct EaseProgress
{
	SimRunStats *stats;
	const char *progress_name;	/* NULL: no NOTICEs */
	Size		base_bytes;		/* held before the computation: the matrix */
} EaseProgress;

/*
 * SimProgress callback: record EASE's phase, and report it in the style of
 * the read / computed / wrote NOTICEs.  Main thread, between phases.
 */
static void
EasePhase(void *arg, const char *phase, double seconds, size_t bytes)
{
	EaseProgress *ep = arg;
	SimRunStats *stats = ep->stats;

	if (stats->n_phases < SIM_MAX_PHASES)
	{
		strlcpy(stats->phase_name[stats->n_phases], phase, sizeof(stats->phase_name[0]));
		stats->phase_seconds[stats->n_phases] = seconds;
		stats->n_phases++;
	}
	stats->peak_bytes = Max(stats->peak_bytes, ep->base_bytes + bytes);
	if (ep->progress_name)
		ereport(NOTICE,
				(errmsg("media_reco: recommender \"%s\": ease %s phase over %d items (%zu MB held) in %.3f s",
						ep->progress_name, phase, stats->dense_items,
						(ep->base_bytes + bytes) / (1024 * 1024), seconds)));
}

/*
 * 54000 for an EASE input whose computation would need `need` bytes: the
 * dense matrix's size in the detail, and in the hint the budget that would
 * do or the largest ease_max_items that fits the current one.
 */
static void
EaseBudgetError(const InteractionMatrix *m, const SimParams *p, Size need, Size limit)
{
	int32		n = sim_dense_items(m, p);
	size_t		dense = sim_dense_bytes(m, p);
	SimParams	q = *p;
	int32		lo = 0,
				hi = n - 1;
	Size		mb = 1024 * 1024;
	Size		suggest = (need + need / 10) / mb + 1;	/* the estimate and a tenth */

	/* the largest max_items that fits (the estimate grows with it) */
	while (lo < hi)
	{
		int32		mid = lo + (hi - lo + 1) / 2;

		q.max_items = mid;
		if (sim_memory_estimate(m, &q, media_reco_threads) <= limit)
			lo = mid;
		else
			hi = mid - 1;
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("ease over %d items does not fit in maintenance_work_mem", n),
			 errdetail("Its dense matrix needs %d x %d x 8 = %zu bytes (%.1f MB), the whole computation about %.1f MB; the limit is %.1f MB.",
					   n, n, dense, (double) dense / mb, (double) need / mb, (double) limit / mb),
			 lo >= 1 ?
			 errhint("Raise maintenance_work_mem (for example SET maintenance_work_mem = '%zuMB'), or set ease_max_items to at most %d to restrict EASE to the most popular items.",
					 suggest, lo) :
			 errhint("Raise maintenance_work_mem (for example SET maintenance_work_mem = '%zuMB').",
					 suggest)));
}

/*
 * Read the source into a matrix and compute neighbour lists, all allocated in
 * `work`.  With progress_name set, each phase reports a NOTICE.
 */
NeighborLists *
similarity_run(const SourceSpec *src, const SimParams *p, MemoryContext work,
			   bool read_only, const char *progress_name,
			   InteractionMatrix **m_out, SimRunStats *stats)
{
	MemoryContext old;
	TripleBuffer *tb;
	InteractionMatrix *m;
	NeighborLists *nl;
	instr_time	start;
	Size		need;
	SimParams	q;
	EaseProgress ep;
	SimProgress progress;

	memset(stats, 0, sizeof(*stats));
	if (relation_is_citus_table(src->relid))
	{
		char	   *why = pairsums_ineligible(src, p);

		stats->citus = true;
		if (why == NULL)
		{
			nl = pairsums_refresh(src, p, work, read_only, m_out, stats, &why);
			if (nl != NULL)
			{
				if (progress_name)
					ereport(NOTICE,
							(errmsg("media_reco: recommender \"%s\": pair sums of " INT64_FORMAT " interactions (" INT64_FORMAT " users, " INT64_FORMAT " items) from %d shards on %d nodes (%.1f MB) in %.3f s, merged into " INT64_FORMAT " neighbour pairs (%s, k = %d) in %.3f s",
									progress_name, stats->interactions, stats->users, stats->items,
									stats->states, stats->n_nodes, (double) stats->state_bytes / (1024 * 1024),
									stats->gather_seconds, stats->pairs, sim_metric_name(p->metric), p->k,
									stats->merge_seconds)));
				return nl;
			}
		}
		strlcpy(stats->citus_why, why, sizeof(stats->citus_why));
		ereport(NOTICE,
				(errmsg("media_reco: the pair sums of %s are computed on the coordinator from its rows", source_relname(src)),
				 errdetail("Not on the workers: %s.", why)));
	}
	INSTR_TIME_SET_CURRENT(start);

	old = MemoryContextSwitchTo(work);
	tb = triples_create(work_memory_limit(), "maintenance_work_mem");
	MemoryContextSwitchTo(old);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	source_read(src, tb, work, read_only);
	SPI_finish();
	stats->peak_bytes = MemoryContextMemAllocated(work, true);

	old = MemoryContextSwitchTo(work);
	stats->interactions = triples_count(tb);
	m = matrix_build(tb);
	MemoryContextSwitchTo(old);
	stats->users = m->n_users;
	stats->items = m->n_items;
	stats->nnz = m->nnz;
	stats->peak_bytes = Max(stats->peak_bytes, MemoryContextMemAllocated(work, true));
	stats->read_seconds = elapsed_seconds(start);
	if (progress_name)
		ereport(NOTICE,
				(errmsg("media_reco: recommender \"%s\": read " INT64_FORMAT " interactions (" INT64_FORMAT " users, " INT64_FORMAT " items, " INT64_FORMAT " distinct pairs) in %.3f s",
						progress_name, stats->interactions, stats->users, stats->items,
						stats->nnz, stats->read_seconds)));

	need = sim_memory_estimate(m, p, media_reco_threads);
	stats->dense_items = sim_dense_items(m, p);
	if (need > work_memory_limit() && p->metric == SIM_EASE)
		EaseBudgetError(m, p, need, work_memory_limit());
	if (need > work_memory_limit())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("similarity computation does not fit in maintenance_work_mem"),
				 errdetail("%d items with k = %d need about %zu MB; the limit is %zu MB.",
						   m->n_items, p->k, need / (1024 * 1024) + 1,
						   work_memory_limit() / (1024 * 1024)),
				 errhint("Raise maintenance_work_mem (for example SET maintenance_work_mem = '%zuMB'), or lower k.",
						 (need / (1024 * 1024) + 1) * 2)));

	/* EASE's phases are reported through the core's progress callback */
	q = *p;
	ep.stats = stats;
	ep.progress_name = progress_name;
	ep.base_bytes = MemoryContextMemAllocated(work, true);
	progress.phase = EasePhase;
	progress.arg = &ep;
	q.progress = p->metric == SIM_EASE ? &progress : NULL;

	INSTR_TIME_SET_CURRENT(start);
	old = MemoryContextSwitchTo(work);
	nl = sim_compute(m, &q, media_reco_threads, &interrupt_hooks);
	MemoryContextSwitchTo(old);
	stats->pairs = nl->pairs;
	stats->compute_seconds = elapsed_seconds(start);
	/*
	 * EASE measures what it held (the dense matrix included) per phase; the
	 * sparse metrics' scratch is gone by now, so their estimate stands in.
	 */
	stats->peak_bytes = Max(stats->peak_bytes, MemoryContextMemAllocated(work, true));
	if (p->metric != SIM_EASE)
		stats->peak_bytes = Max(stats->peak_bytes, need);
	if (progress_name)
		ereport(NOTICE,
				(errmsg("media_reco: recommender \"%s\": computed " INT64_FORMAT " neighbour pairs (%s, k = %d) in %.3f s",
						progress_name, stats->pairs, sim_metric_name(p->metric), p->k,
						stats->compute_seconds)));
	*m_out = m;
	return nl;
}

/*
 * The argument block shared by item_similarity and create_recommender:
 * (source, user_col, item_col, weight_col, metric, k, min_support, shrinkage)
 * starting at argument `first`.  Checks the arguments; the caller validates
 * the source once it has filled in everything else (e.g. a time column).
 */
void
source_args(FunctionCallInfo fcinfo, int first, SourceSpec *src, SimParams *p)
{
	static const char *const names[8] = {"source", "user_col", "item_col", NULL,
	"metric", "k", "min_support", "shrinkage"};

	for (int i = 0; i < 8; i++)
		if (names[i])
			check_not_null(fcinfo, first + i, names[i]);
	src->relid = PG_GETARG_OID(first);
	src->user_col = arg_name_or_null(fcinfo, first + 1);
	src->item_col = arg_name_or_null(fcinfo, first + 2);
	src->weight_col = arg_name_or_null(fcinfo, first + 3);
	src->time_col = NULL;
	src->half_life = 0;
	src->ref_ts = 0;
	check_sim_params(arg_text_or_null(fcinfo, first + 4), PG_GETARG_INT32(first + 5),
					 PG_GETARG_INT32(first + 6), PG_GETARG_FLOAT8(first + 7), p);
}

/*
 * The lists as rows (item_id, neighbor_id, similarity, support, rank) into a
 * materialized SRF's tuplestore; item_ids maps the lists' indexes to ids.
 */
void
neighbor_rows_put(ReturnSetInfo *rsinfo, const int64 *item_ids, const NeighborLists *nl)
{
	for (int32 i = 0; i < nl->n_items; i++)
	{
		int64		base = (int64) i * nl->k_cap;

		for (int32 r = 0; r < nl->n_out[i]; r++)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};

			values[0] = Int64GetDatum(item_ids[i]);
			values[1] = Int64GetDatum(item_ids[nl->nb[base + r]]);
			values[2] = Float8GetDatum(nl->sim[base + r]);
			values[3] = Int32GetDatum(nl->support[base + r]);
			values[4] = Int32GetDatum(r + 1);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		if ((i & 255) == 0)
			CHECK_FOR_INTERRUPTS();
	}
}

/*
 * item_similarity(source, ..., bm25_k1, bm25_b, ease_lambda, rp3_alpha,
 * rp3_beta, ease_max_items): the top-k neighbours of every item computed on
 * the fly (nothing stored), rows (item, neighbour, similarity, support,
 * rank); work memory in a context deleted at the end.
 */
Datum
item_similarity(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SourceSpec	src;
	SimParams	p;
	MemoryContext work;
	InteractionMatrix *m;
	NeighborLists *nl;
	SimRunStats stats;

	source_args(fcinfo, 0, &src, &p);
	check_not_null(fcinfo, 8, "bm25_k1");
	check_not_null(fcinfo, 9, "bm25_b");
	check_bm25_params(PG_GETARG_FLOAT8(8), PG_GETARG_FLOAT8(9), &p);
	learned_args(fcinfo, 10, &p);
	source_validate(&src);

	InitMaterializedSRF(fcinfo, 0);

	work = AllocSetContextCreate(CurrentMemoryContext, "media_reco item_similarity",
								 ALLOCSET_DEFAULT_SIZES);
	nl = similarity_run(&src, &p, work, true, NULL, &m, &stats);

	neighbor_rows_put(rsinfo, m->item_ids, nl);
	MemoryContextDelete(work);
	return (Datum) 0;
}
