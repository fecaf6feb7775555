/*
 * simcore.h
 *	  Item-to-item similarity core on plain C arrays.
 *
 * Nothing here touches fmgr or SPI: the glue (source.c, similarity.c,
 * neighbors.c) feeds interactions in, gets neighbour lists out.  Memory comes
 * from the current memory context and is charged against a byte budget.
 */
#ifndef MEDIA_RECO_SIMCORE_H
#define MEDIA_RECO_SIMCORE_H

#include "postgres.h"

#include "parallel.h"

typedef enum SimMetric
{
	SIM_COSINE,					/* Σ w·w / (‖i‖‖j‖) */
	SIM_JACCARD,				/* support / |U(i) ∪ U(j)| */
	SIM_ADJUSTED_COSINE,		/* cosine over w(u,i) − mean of u's weights */
	SIM_PEARSON,				/* cosine over w(u,i) − mean of i's weights */
	SIM_CONDITIONAL,			/* support / |U(i)|: P(j | i), asymmetric */
	SIM_BM25					/* Σ_u w'(u,i)·w'(u,j) over BM25-weighted interactions */
} SimMetric;

/* metrics computed as a cosine (over possibly centred weights) */
#define SIM_IS_COSINE(m) ((m) == SIM_COSINE || (m) == SIM_ADJUSTED_COSINE || (m) == SIM_PEARSON)

typedef struct SimParams
{
	SimMetric	metric;
	int			k;				/* neighbours kept per item, 1..10000 */
	int			min_support;	/* >= 1 */
	double		shrinkage;		/* >= 0, finite */
	double		bm25_k1;		/* bm25: >= 0, finite */
	double		bm25_b;			/* bm25: in [0, 1] */
} SimParams;

/* Collector for raw (user, item, weight) rows, ids mapped to dense indexes. */
typedef struct TripleBuffer TripleBuffer;

/* A deduplicated user x item matrix held twice: by user and by item. */
typedef struct InteractionMatrix
{
	int32		n_users;
	int32		n_items;
	int64		nnz;			/* distinct (user, item) pairs */
	int64		raw_rows;		/* rows read, duplicates included */
	int64	   *user_ids;		/* [n_users], ascending: index order = id order */
	int64	   *item_ids;		/* [n_items], ascending */
	int64	   *u_ptr;			/* [n_users + 1] */
	int32	   *u_item;			/* [nnz] item index, ascending within a user */
	double	   *u_w;			/* [nnz] */
	int64	   *i_ptr;			/* [n_items + 1] */
	int32	   *i_user;			/* [nnz] user index, ascending within an item */
	double	   *i_w;			/* [nnz] */
} InteractionMatrix;

/* Top-k neighbour lists, best first; item i owns slots [i*k_cap, i*k_cap+n_out[i]). */
typedef struct NeighborLists
{
	int32		n_items;
	int32		k_cap;
	int64		pairs;			/* sum of n_out */
	int32	   *n_out;
	int32	   *nb;				/* neighbour item index */
	double	   *sim;
	int32	   *support;
} NeighborLists;

extern TripleBuffer *triples_create(Size mem_limit, const char *limit_name);
extern void triples_add(TripleBuffer *tb, int64 user, int64 item, double w);
extern int64 triples_count(TripleBuffer *tb);
extern InteractionMatrix *matrix_build(TripleBuffer *tb);
extern InteractionMatrix *matrix_build_ex(TripleBuffer *tb, bool with_items);
extern Size sim_memory_estimate(const InteractionMatrix *m, const SimParams *p, int nthreads);
extern NeighborLists *sim_compute(InteractionMatrix *m, const SimParams *p,
								  int nthreads, const SimInterruptHooks *hooks);
extern const char *sim_metric_name(SimMetric m);
extern bool sim_metric_parse(const char *name, SimMetric *out);

#endif
