/*
 * similarity.h
 *	  Running the similarity core over a source relation.
 */
#ifndef MEDIA_RECO_SIMILARITY_H
#define MEDIA_RECO_SIMILARITY_H

#include "postgres.h"
#include "fmgr.h"

#include "simcore.h"
#include "source.h"

typedef struct SimRunStats
{
	int64		interactions;	/* usable rows read, duplicates included */
	int64		users;
	int64		items;
	int64		nnz;			/* distinct (user, item) pairs */
	int64		pairs;			/* neighbour rows produced */
	double		read_seconds;
	double		compute_seconds;
	Size		peak_bytes;
} SimRunStats;

/*
 * Parameter checks for the similarity core: each fills its part of *out or
 * raises 22023 naming the bad argument.  check_sim_params sets the BM25
 * defaults (k1 100, b 0.8), which check_bm25_params then overrides.
 */
extern void check_sim_params(const char *metric, int k, int min_support,
							 double shrinkage, SimParams *out);
extern void check_bm25_params(double k1, double b, SimParams *out);

extern void source_args(FunctionCallInfo fcinfo, int first, SourceSpec *src, SimParams *p);
extern NeighborLists *similarity_run(const SourceSpec *src, const SimParams *p,
									 MemoryContext work, bool read_only,
									 const char *progress_name,
									 InteractionMatrix **m_out, SimRunStats *stats);

#endif
