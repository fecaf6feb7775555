/*
 * simcore.h
 *	  Item-to-item similarity core on plain C arrays.
 *
 * Nothing here touches fmgr, SPI or memory contexts: the glue (source.c,
 * similarity.c, neighbors.c, batch.c) feeds interactions in and gets
 * neighbour lists out.  The simcore_* functions take a CoreAlloc and return
 * a CoreStatus with a CoreError (core.h); the raising forms at the end of
 * this header (triples_create, triples_add, matrix_build, sim_compute) are
 * their server-side wrappers in simcore_pg.c.
 */
#ifndef MEDIA_RECO_SIMCORE_H
#define MEDIA_RECO_SIMCORE_H

#include "core.h"

#include <math.h>

#include "parallel.h"

typedef enum SimMetric
{
	SIM_COSINE,					/* Σ w·w / (‖i‖‖j‖) */
	SIM_JACCARD,				/* support / |U(i) ∪ U(j)| */
	SIM_ADJUSTED_COSINE,		/* cosine over w(u,i) − mean of u's weights */
	SIM_PEARSON,				/* cosine over w(u,i) − mean of i's weights */
	SIM_CONDITIONAL,			/* support / |U(i)|: P(j | i), asymmetric */
	SIM_BM25,					/* Σ_u w'(u,i)·w'(u,j) over BM25-weighted interactions */
	SIM_EASE,					/* −P[i][j] / P[j][j], P = (XᵀX + λI)⁻¹ (Steck 2019) */
	SIM_RP3BETA					/* Σ_u (w(u,i)/s(i))^α (w(u,j)/t(u))^α / s(j)^β */
} SimMetric;

/* metrics computed as a cosine (over possibly centred weights) */
#define SIM_IS_COSINE(m) ((m) == SIM_COSINE || (m) == SIM_ADJUSTED_COSINE || (m) == SIM_PEARSON)

/*
 * Phase timings of a long computation (EASE: "gram", "factor", "invert",
 * "select").  phase() is called on the main thread after each phase with its
 * wall-clock seconds and the most bytes the computation held at once during
 * it (its own allocations through the CoreAlloc, output lists included, the
 * interaction matrix not); it may ereport.
 */
typedef struct SimProgress
{
	void		(*phase) (void *arg, const char *phase, double seconds, size_t bytes);
	void	   *arg;
} SimProgress;

typedef struct SimParams
{
	SimMetric	metric;
	int			k;				/* neighbours kept per item, 1..10000 */
	int			min_support;	/* >= 1 */
	double		shrinkage;		/* >= 0, finite */
	double		bm25_k1;		/* bm25: >= 0, finite */
	double		bm25_b;			/* bm25: in [0, 1] */
	double		ease_lambda;	/* ease: > 0, finite */
	double		rp3_alpha;		/* rp3beta: > 0, finite */
	double		rp3_beta;		/* rp3beta: >= 0, finite */
	int32		max_items;		/* ease: only the max_items most popular items; <= 0 = all */
	const SimProgress *progress;	/* NULL = none */
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

/*
 * A new, empty buffer.  Its memory (chunks of rows, id maps) comes from a
 * copy of *a, charged against mem_limit bytes: going beyond is CORE_LIMIT
 * "interaction data does not fit in <limit_name>" (limit_name, e.g.
 * "maintenance_work_mem", must outlive the buffer).  Main thread only.
 */
extern TripleBuffer *simcore_triples_create(const CoreAlloc *a, size_t mem_limit,
											const char *limit_name, CoreError *err);

/*
 * Add one row.  Rows are staged and mapped a chunk at a time, so a budget
 * or id-count error (CORE_LIMIT) or CORE_NOMEM can come on any call; after
 * an error the buffer must not be used again.  Main thread only.
 */
extern CoreStatus simcore_triples_add(TripleBuffer *tb, int64 user, int64 item, double w,
									  CoreError *err);

/* rows added so far, duplicates included */
extern int64 triples_count(TripleBuffer *tb);

/*
 * Consume the buffer (its chunks and maps are released) into a matrix
 * allocated from a: users and items renumbered in id order, duplicate
 * (user, item) rows summed.  with_items false builds the user-major copy
 * only (i_ptr, i_user, i_w stay NULL).  CORE_RANGE when a sum of duplicate
 * weights overflows.  Main thread only; polls hooks.
 */
extern CoreStatus simcore_matrix_build(const CoreAlloc *a, TripleBuffer *tb, bool with_items,
									   const CoreInterrupts *hooks, InteractionMatrix **out,
									   CoreError *err);

/*
 * Bytes sim_compute will need beyond the matrix, roughly (for EASE the dense
 * matrix, sim_dense_bytes, included); SIZE_MAX / 2 when it does not fit in a
 * size_t.  Pure.
 */
extern size_t sim_memory_estimate(const InteractionMatrix *m, const SimParams *p, int nthreads);

/*
 * Bytes of EASE's one dense n x n matrix (n = the items it covers, see
 * max_items): 0 for the other metrics, SIZE_MAX when it overflows.  Pure.
 */
extern size_t sim_dense_bytes(const InteractionMatrix *m, const SimParams *p);

/* the number of items EASE's dense matrix covers (max_items applied); pure */
extern int32 sim_dense_items(const InteractionMatrix *m, const SimParams *p);

/*
 * Top-k neighbour lists of every item into *out (from a).  Reweights m in
 * place (centring, BM25, cosine scaling, RP3beta's transition
 * probabilities; EASE leaves it as it is).  Runs the per-item work on up to
 * nthreads threads (helper threads run the task functions only, on memory
 * allocated beforehand); the result does not depend on nthreads.
 * CORE_RANGE for weights a metric cannot use, CORE_INVALID for a metric
 * option out of range, CORE_LIMIT when EASE's dense matrix cannot be sized.
 * Call from the main thread; it polls hooks between chunks of work.
 */
extern CoreStatus simcore_compute(const CoreAlloc *a, InteractionMatrix *m, const SimParams *p,
								  int nthreads, const CoreInterrupts *hooks,
								  NeighborLists **out, CoreError *err);

/*
 * Fixed-point pair sums: how a plain cosine adds its products when its
 * weights are off every usable power-of-two grid (ln(1 + plays), say).
 * Double sums of such products depend on the order of addition, so a refresh
 * split over shards could not reproduce them.  Instead, with the weights
 * scaled as cosine scales them (each item's largest |w| in [0.5, 1), so every
 * product p has |p| < 1), each product is cut to a whole number of units of
 * 2^-SIM_FIXED_BITS (truncated toward zero) and added as a 128-bit integer:
 * integer addition is exact in any order, and an item's users (below 2^31)
 * times |p| < 1 stay below 2^127.  A product with |p| >= 2^-44 is a multiple
 * of 2^-96 already, so it is cut by nothing: when every nonzero scaled
 * weight of every item is at least 2^-22 (an item's weights span less than
 * 2^22 : 1), the fixed sums are the exact sums of the double products, and a
 * merge of exact per-shard sums gives the same bits.  The sums turn into
 * doubles once, by sim_fixed_value (a correctly rounded conversion).
 *
 * sim_cosine_fixed says whether sim_compute takes this path for m: metric
 * cosine (adjusted cosine: the same over its centred weights), and the double sums would not be exact, i.e. not every weight is
 * a multiple of one power of two 2^q (SIM_GRID_MIN <= q <= SIM_GRID_MAX,
 * |w| <= 2^SIM_GRID_MAX) with every item's Σ w² below 2^53 units of 2^2q
 * (by Cauchy-Schwarz every partial sum of every pair is then exact).  On
 * the grid the double sums are exact, as fast as before and equal to the
 * fixed ones whenever both are exact.
 */
/* 8-byte aligned, as palloc and the core allocators align: never an aligned 16-byte access */
typedef __int128 SimFixed __attribute__((aligned(8)));

#define SIM_FIXED_BITS	96
#define SIM_FIXED_SPAN	22		/* scaled weights >= 2^-22: products cut by nothing */
#define SIM_GRID_MIN	(-400)
#define SIM_GRID_MAX	400

/* p (|p| < 1) in units of 2^-96, truncated toward zero.  Any thread. */
static inline SimFixed
sim_fixed_of(double p)
{
	double		t = p * 0x1p96;	/* exact: a power of two */
	double		h = (double) (int64) (t * 0x1p-48); /* |h| < 2^48, t's bits above 2^48 */
	int64		lo = (int64) (t - h * 0x1p48);	/* the difference is exact; its fraction cut */

	return (SimFixed) (int64) h * ((SimFixed) 1 << 48) + lo;
}

/* v units of 2^-96 as the nearest double.  Any thread. */
static inline double
sim_fixed_value(SimFixed v)
{
	return ldexp((double) v, -SIM_FIXED_BITS);
}

/* the exponent of the lowest set bit of w's binary expansion (w finite, != 0) */
extern int32 sim_weight_grid(double w);

/*
 * The grid's rule, for one server and the shards alike: the grid 2^q and
 * the largest |w| keep products normal doubles, and an item's Σ w² (ss, in
 * the weights' own units) is below 2^53 units of 2^2q.
 */
static inline bool
sim_grid_usable(int32 q, double maxabs)
{
	return q >= SIM_GRID_MIN && q <= SIM_GRID_MAX && maxabs <= ldexp(1.0, SIM_GRID_MAX);
}

static inline bool
sim_norm_on_grid(double ss, int32 q)
{
	return ldexp(ss, -2 * q) < 0x1p53;
}

/*
 * Whether m's weights as they are now are off the grid (the rule above),
 * so a cosine over them adds in fixed point.  sim_cosine_fixed is that for
 * a plain cosine over the weights given.  Adjusted cosine applies the same
 * rule to the weights after centring by user (simcore_center_users), so a
 * centred shard and one server choose alike; Pearson to the weights after
 * centring by item (simcore_center_items), with means a shard is given.
 */
extern bool sim_weights_off_grid(const InteractionMatrix *m);

/* m's grid as it is now: the finest 2^q of its nonzero weights (INT32_MAX: none) and the largest |w| */
extern void sim_weights_grid(const InteractionMatrix *m, int32 *q, double *maxabs);
extern bool sim_cosine_fixed(const InteractionMatrix *m, const SimParams *p);

/*
 * Adjusted cosine's centring, in place in both copies: each user's weights
 * minus the user's mean weight (a user whose weights are all equal gets
 * exact zeros).  A user's mean reads only that user's rows, in ascending
 * item order, so a shard holding all of a user's rows centres them bit for
 * bit as one server does.  CORE_RANGE when a centred weight overflows.
 * Main thread; polls hooks.
 */
extern CoreStatus simcore_center_users(const CoreAlloc *a, const CoreInterrupts *hooks, InteractionMatrix *m,
									   CoreError *err);

/*
 * Cosine's scaling of m in place (both copies): each item's weights times
 * the power of two 2^shift[i] that brings its largest |w| into [0.5, 1)
 * (shift_out, when not NULL, gets shift[0..n_items)).  Main thread; polls
 * hooks.
 */
extern CoreStatus simcore_cosine_scale(const CoreAlloc *a, const CoreInterrupts *hooks, InteractionMatrix *m,
									   int32 *shift_out, CoreError *err);

/*
 * An exact sum of doubles, whatever their order: a two's-complement
 * integer of units of 2^-1074 (the smallest subnormal) in SIM_EXACT_LIMBS
 * limbs of 32 bits (each held in an int64 that absorbs carries between
 * normalisations), enough for 2^62 finite doubles of any magnitude.
 * sim_exact_value is a deterministic function of the exact sum (rounded
 * to nearest), so shards' partial sums merged by sim_exact_merge give the
 * bits one server's sum gives.  BM25's mean history length is one
 * (ApplyBm25).  Plain C, any thread.
 */
#define SIM_EXACT_LIMBS 68

typedef struct SimExactSum
{
	int64		limb[SIM_EXACT_LIMBS];	/* limb l counts units of 2^(32 l - 1074) */
	int64		adds;			/* additions since the last normalisation */
} SimExactSum;

extern void sim_exact_init(SimExactSum *s);
extern void sim_exact_add(SimExactSum *s, double x);	/* x finite */
extern void sim_exact_merge(SimExactSum *s, const SimExactSum *other);
/* carries propagated: every limb but the last in [0, 2^32), the last signed */
extern void sim_exact_normalize(SimExactSum *s);
/* normalised to its magnitude (every limb in [0, 2^32) but the last, >= 0); true when it was negative */
extern bool sim_exact_magnitude(SimExactSum *s);
extern double sim_exact_value(const SimExactSum *s);
/* the sum times 2^e, rounded (once but for subnormal results): finite for e <= -128 */
extern double sim_exact_value_scaled(const SimExactSum *s, int e);

/*
 * Pearson's item means, as one server computes them and as a merge of
 * shards can: item i's mean is sim_pearson_mean of the exact sum of its
 * weights over its users, their number and its smallest and largest weight
 * (all equal: that weight, so its centred weights are exact zeros; an exact
 * sum beyond double precision: divided at a scale where it is finite).
 * simcore_item_means computes mean[0..n_items) of m's weights; simcore_center_items
 * subtracts mean[i] from item i's weights in both copies (CORE_RANGE when a
 * centred weight overflows).  Main thread; polls hooks.
 */
extern double sim_pearson_mean(const SimExactSum *sum, int64 users, double minw, double maxw);

/*
 * 0.5^x, time decay's factor, from IEEE additions and multiplications only
 * (a table of 2^(-k/64) and seven terms of e^-z, z < 0.011), so that every
 * node of a cluster computes the same bits whatever its C library's pow():
 * within about 2 ulps of the exact value, and exactly 2^-n for integer n.
 */
extern double sim_pow_half(double x);

/*
 * A loop over items polls hooks every 1,024 items and every 2^20 entries
 * (done: the entries of items 0..i, *next: when to poll next, 0 at first),
 * so a few items with millions of users cannot hold off an interrupt.
 */
static inline void
sim_poll_items(const CoreInterrupts *hooks, int32 i, int64 done, int64 *next)
{
	if ((i & 1023) == 0 || done >= *next)
	{
		core_check_interrupts(hooks);
		*next = done + ((int64) 1 << 20);
	}
}
extern void simcore_item_means(const InteractionMatrix *m, const CoreInterrupts *hooks, double *mean);
extern double simcore_item_mean(const InteractionMatrix *m, int32 i);	/* item i's alone */
/* item i's exact Σ w, smallest and largest w over weights w (m's i_w, or a copy in its order) */
extern void simcore_item_figures(const InteractionMatrix *m, const double *w, int32 i, SimExactSum *sum,
								 double *minw, double *maxw);
extern CoreStatus simcore_center_items(const InteractionMatrix *m, const CoreInterrupts *hooks,
									   const double *mean, CoreError *err);


/*
 * BM25's statistics, as one server computes them (ApplyBm25) and as a
 * merge of shards can: the mean history length is the exact sum of every
 * user's length len(u) = Σ_i w(u,i) (a double, added in the user's item
 * order) divided by the users N; idf(i) = ln N − ln(1 + |U(i)|).
 */
extern double sim_bm25_mean_length(const SimExactSum *lengths, int64 n_users);
extern double sim_bm25_idf(int64 n_users, int64 item_users);

/*
 * BM25's per-user term weights in place in both copies of m, without the
 * idf: t(u,i) = w · (K1 + 1) / (K1 · norm(u) + w) with norm(u) = (1 − B) +
 * B · len(u) / mean_len (a zero weight stays 0).  The similarity
 * Σ_u w'(u,i)·w'(u,j), w' = t · idf, is then idf(i) · idf(j) · Σ_u t(u,i)·t(u,j):
 * the sums need no item statistics, so shards given mean_len compute them.
 * CORE_RANGE when a t is not finite.  Main thread; polls hooks.
 */
extern CoreStatus simcore_bm25_terms(const CoreAlloc *a, const CoreInterrupts *hooks, InteractionMatrix *m,
									 double k1, double b, double mean_len, CoreError *err);

/*
 * the exact sum of m's users' lengths (each over its items ascending);
 * CORE_RANGE when a user's length is not finite (BM25 cannot weigh it)
 */
extern CoreStatus simcore_user_lengths(const InteractionMatrix *m, SimExactSum *out, CoreError *err);

/*
 * Pair sums row by row, for the per-shard partial sums of a distributed
 * refresh (pairsums_core.c).  simcore_rows_accumulate fills item i's row of
 * Σ_u w(u,i)·w(u,j) (in users' ascending order; with weighted false only
 * the counts) and the number of users behind each, over m's own weights as
 * they are, and returns the number of items touched (touched[0..n), i itself
 * included, in first-touch order); simcore_rows_take reads one and resets
 * it, and every touched item must be taken before the next row.  Any one
 * thread per SimRows.
 */
typedef struct SimRows SimRows;
extern SimRows *simcore_rows_create(const CoreAlloc *a, int32 n_items, bool fixed, CoreError *err);
extern int32 simcore_rows_accumulate(SimRows *r, const InteractionMatrix *m, int32 i, bool weighted,
									 const int32 **touched);
extern void simcore_rows_take(SimRows *r, int32 j, double *acc, int32 *cnt);
/* with fixed true at creation: the sums in units of 2^-96 (m scaled by simcore_cosine_scale) */
extern void simcore_rows_take_fixed(SimRows *r, int32 j, SimFixed *acc, int32 *cnt);
extern void simcore_rows_free(const CoreAlloc *a, SimRows *r);

/*
 * Top-k lists from pair sums computed elsewhere (merged from the shards),
 * by the same selection sim_compute runs on its own rows, so equal sums give
 * the same lists bit for bit.  For the metrics that read only sums, counts
 * and degrees: the cosine family (sumsq[i]: item i's sum of squares in the
 * same scaling as the sums, as PrepareCosine leaves them), jaccard,
 * conditional and bm25 (deg[i] = |U(i)|); rp3beta and ease are CORE_INVALID.
 * For each item i in turn: simcore_scorer_put every candidate j (its sum and
 * count, once each; j == i is ignored), then simcore_scorer_item(i).  The
 * lists (allocated from a) stay the caller's after simcore_scorer_finish.
 * Main thread.
 */
typedef struct SimScorer SimScorer;
extern CoreStatus simcore_scorer_create(const CoreAlloc *a, int32 n_items, const SimParams *p,
										const int32 *deg, const double *sumsq, SimScorer **scorer,
										NeighborLists **lists, CoreError *err);
/* bm25 (required before the first item): idf[i] and the scaling 2^shift[i] of the sums put, kept by pointer */
extern void simcore_scorer_bm25(SimScorer *s, const double *idf, const int32 *shift);
extern void simcore_scorer_put(SimScorer *s, int32 j, double acc, int32 cnt);
extern void simcore_scorer_item(SimScorer *s, int32 i);
extern void simcore_scorer_finish(const CoreAlloc *a, SimScorer *s);

extern const char *sim_metric_name(SimMetric m);
extern bool sim_metric_parse(const char *name, SimMetric *out);

/*
 * The raising forms for the SQL glue (simcore_pg.c, server only): memory
 * in CurrentMemoryContext (the buffer's: the context current when it was
 * created), errors ereported with their SQLSTATE.
 */
extern TripleBuffer *triples_create(size_t mem_limit, const char *limit_name);
extern void triples_add(TripleBuffer *tb, int64 user, int64 item, double w);
extern InteractionMatrix *matrix_build(TripleBuffer *tb);
extern InteractionMatrix *matrix_build_ex(TripleBuffer *tb, bool with_items);
extern NeighborLists *sim_compute(InteractionMatrix *m, const SimParams *p,
								  int nthreads, const SimInterruptHooks *hooks);

#endif
