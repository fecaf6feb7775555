/*
 * similarity.c
 *	  item_similarity(): top-k item neighbours computed on the fly.
 */
#include "postgres.h"

#include <math.h>

#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

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
				 errhint("Supported metrics are cosine, jaccard, adjusted_cosine, pearson, conditional and bm25.")));
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

	memset(stats, 0, sizeof(*stats));
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
	if (need > work_memory_limit())
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("similarity computation does not fit in maintenance_work_mem"),
				 errdetail("%d items with k = %d need about %zu MB; the limit is %zu MB.",
						   m->n_items, p->k, need / (1024 * 1024) + 1,
						   work_memory_limit() / (1024 * 1024)),
				 errhint("Raise maintenance_work_mem (for example SET maintenance_work_mem = '%zuMB'), or lower k.",
						 (need / (1024 * 1024) + 1) * 2)));

	INSTR_TIME_SET_CURRENT(start);
	old = MemoryContextSwitchTo(work);
	nl = sim_compute(m, p, media_reco_threads, &interrupt_hooks);
	MemoryContextSwitchTo(old);
	stats->pairs = nl->pairs;
	stats->compute_seconds = elapsed_seconds(start);
	stats->peak_bytes = Max(stats->peak_bytes,
							Max(need, MemoryContextMemAllocated(work, true)));
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
 * item_similarity(source, ..., bm25_k1, bm25_b): the top-k neighbours of
 * every item computed on the fly (nothing stored), rows (item, neighbour,
 * similarity, support, rank); work memory in a context deleted at the end.
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
	source_validate(&src);

	InitMaterializedSRF(fcinfo, 0);

	work = AllocSetContextCreate(CurrentMemoryContext, "media_reco item_similarity",
								 ALLOCSET_DEFAULT_SIZES);
	nl = similarity_run(&src, &p, work, true, NULL, &m, &stats);

	for (int32 i = 0; i < nl->n_items; i++)
	{
		int64		base = (int64) i * nl->k_cap;

		for (int32 r = 0; r < nl->n_out[i]; r++)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};

			values[0] = Int64GetDatum(m->item_ids[i]);
			values[1] = Int64GetDatum(m->item_ids[nl->nb[base + r]]);
			values[2] = Float8GetDatum(nl->sim[base + r]);
			values[3] = Int32GetDatum(nl->support[base + r]);
			values[4] = Int32GetDatum(r + 1);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		if ((i & 255) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(work);
	return (Datum) 0;
}
