/*
 * similarity.h
 *	  Running the similarity core over a source relation.
 */
#ifndef MEDIA_RECO_SIMILARITY_H
#define MEDIA_RECO_SIMILARITY_H

#include "postgres.h"
#include "fmgr.h"
#include "nodes/execnodes.h"

#include "simcore.h"
#include "source.h"

/*
 * The defaults of the learned models' options, used wherever an option is
 * NULL (the registry stores what the user gave, NULL included).  The README
 * ("Learned item-item models") says where each value comes from.
 */
#define SIM_EASE_LAMBDA_DEFAULT 250.0
#define SIM_RP3_ALPHA_DEFAULT	1.0
#define SIM_RP3_BETA_DEFAULT	0.5

/* EASE's phases, in order, as simcore reports them (SimProgress) */
#define SIM_MAX_PHASES 4

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
	/* ease: the items its dense matrix covers, and each phase's seconds */
	int32		dense_items;
	int			n_phases;
	char		phase_name[SIM_MAX_PHASES][16];
	double		phase_seconds[SIM_MAX_PHASES];
	/* a Citus source: whether the pair sums ran on the workers, or why not */
	bool		citus;			/* the source is a Citus table */
	bool		pushed_down;
	bool		fixed_point;	/* pushed down, the sums merged in fixed point (off the weights' grid) */
	char		citus_why[200];	/* when not pushed down */
	int			states;			/* shard states merged */
	int64		state_bytes;	/* their bytes (the wire carries them as hex: twice) */
	double		shard_seconds_sum;	/* CPU seconds of the shards' reads and sums */
	double		shard_seconds_max;
	int			n_nodes;
	uint16		node_port[8];
	double		node_seconds[8];	/* CPU seconds per worker (by port) */
	double		gather_seconds; /* the aggregate's wall time: shards, transfer, combine */
	double		first_pass_seconds; /* bm25: the first pass (users' lengths), within gather_seconds */
	double		merge_seconds;	/* the merge and top-k on the coordinator */
} SimRunStats;

/*
 * Parameter checks for the similarity core: each fills its part of *out or
 * raises 22023 naming the bad argument.  check_sim_params sets the BM25
 * defaults (k1 100, b 0.8) and the learned models' defaults, which
 * check_bm25_params and check_learned_params then override.  Every option
 * is checked whatever the metric, and used only by its own metric.
 */
extern void check_sim_params(const char *metric, int k, int min_support,
							 double shrinkage, SimParams *out);
extern void check_bm25_params(double k1, double b, SimParams *out);

/*
 * ease_lambda (finite, > 0), rp3_alpha (finite, > 0), rp3_beta (finite,
 * >= 0), ease_max_items (>= 1) into *out; a NULL pointer means the
 * default (ease_max_items: every item).  22023 naming the option otherwise.
 */
extern void check_learned_params(const double *ease_lambda, const double *rp3_alpha,
								 const double *rp3_beta, const int32 *ease_max_items,
								 SimParams *out);

/*
 * The four learned options as SQL arguments first .. first + 3 (NULL: the
 * default), checked into *p; all defaults when the SQL declaration has no
 * such arguments (a 0.2.0 declaration served by this library).
 */
extern void learned_args(FunctionCallInfo fcinfo, int first, SimParams *p);

extern void source_args(FunctionCallInfo fcinfo, int first, SourceSpec *src, SimParams *p);

/*
 * Read the source into a matrix and compute neighbour lists, all allocated
 * in `work`.  With progress_name set, each phase reports a NOTICE (EASE's
 * gram, factor, invert and select too).  54000 before the computation when
 * it would not fit in maintenance_work_mem.
 */
extern NeighborLists *similarity_run(const SourceSpec *src, const SimParams *p,
									 MemoryContext work, bool read_only,
									 const char *progress_name,
									 InteractionMatrix **m_out, SimRunStats *stats);

/* the lists as item_similarity's rows into rsinfo's tuplestore (InitMaterializedSRF done) */
extern void neighbor_rows_put(ReturnSetInfo *rsinfo, const int64 *item_ids, const NeighborLists *nl);

#endif
