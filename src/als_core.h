/*
 * als_core.h
 *	  Implicit-feedback ALS (Hu, Koren, Volinsky 2008) on plain C arrays.
 *
 * The model: user factors x_u and item factors y_i (f numbers each) that
 * minimise
 *
 *   L = sum over every user u and item i of c_ui (p_ui - x_u . y_i)^2
 *       + lambda (sum_u |x_u|^2 + sum_i |y_i|^2)
 *
 * with p_ui = 1 and c_ui = 1 + alpha w_ui for a stored pair (w_ui its summed
 * weight), p_ui = 0 and c_ui = 1 for every other pair; lambda is not scaled
 * by the number of interactions.  train reports exactly this L (the whole
 * sum, not an average) after each iteration.
 *
 * One iteration solves every item given the users, then every user given
 * the items, so the stored user factors are the solution against the
 * stored item factors (what recalculate computes for an unchanged history).
 * Row r's system, Z the other side's factors:
 *
 *   (Z'Z + sum_{j in r} (c_rj - 1) z_j z_j' + lambda I) x_r = sum_{j in r} c_rj z_j
 *
 * cg_steps = 0 solves it exactly (Cholesky, in plain C); cg_steps > 0 takes
 * that many conjugate-gradient steps from the current x_r (Takacs et al.
 * 2011, as the `implicit` library does).  Z'Z is computed once per
 * half-iteration with BLAS (dsyrk) on the main thread; the rows are solved
 * in blocks on helper threads (parallel.h) in plain C.
 *
 * Deterministic for a seed whatever the thread count and the source's row
 * order: the initial factors are a hash of (seed, side, id, factor index),
 * rows are in id order (simcore's matrix), each row's arithmetic is
 * sequential, and sums over blocks are added in block order.
 *
 * Plain C (core.h): no PostgreSQL calls; memory from the caller's CoreAlloc.
 */
#ifndef MEDIA_RECO_ALS_CORE_H
#define MEDIA_RECO_ALS_CORE_H

#include "core.h"

#include "simcore.h"

#define ALS_MAX_FACTORS		1024
#define ALS_MAX_ITERATIONS	10000
#define ALS_MAX_CG_STEPS	1000
/* rows per task at most (tasks are cut by work, see als_core.c): a task takes milliseconds */
#define ALS_BLOCK			64

/* After each iteration (main thread; may ereport): its number from 1, L, and its seconds. */
typedef struct AlsProgress
{
	void		(*iteration) (void *arg, int iteration, double loss, double seconds);
	void	   *arg;
} AlsProgress;

typedef struct AlsParams
{
	int32		factors;		/* 1 .. ALS_MAX_FACTORS */
	double		regularization; /* lambda: finite, > 0 */
	double		alpha;			/* finite, >= 0 */
	int32		iterations;		/* 1 .. ALS_MAX_ITERATIONS */
	int32		cg_steps;		/* 0 (exact) .. ALS_MAX_CG_STEPS */
	int64		seed;
	const AlsProgress *progress;	/* NULL = none */
} AlsParams;

typedef struct AlsModel
{
	int32		n_users;
	int32		n_items;
	int32		factors;
	int32		iterations;
	/* factors hold float values (rounded after each solve, as the tables store them) */
	double	   *x;				/* [n_users * factors], user u at x[u * factors] */
	double	   *y;				/* [n_items * factors] */
	double	   *loss;			/* [iterations]: L after each iteration */
} AlsModel;

/* CORE_INVALID naming the option when a parameter is out of range. */
extern CoreStatus als_check_params(const AlsParams *p, CoreError *err);

/*
 * Bytes als_train allocates (factors, loss, per-thread scratch), the matrix
 * not included; SIZE_MAX when it does not fit a size_t.  Pure.
 */
extern size_t als_memory_estimate(const InteractionMatrix *m, const AlsParams *p, int nthreads);

/*
 * The initial value of factor k of a user (item false) or an item (true)
 * with id `id`: uniform in [0, 0.01) from a hash of (seed, side, id, k),
 * as `implicit` draws them (rand * 0.01).  Pure.
 */
extern double als_initial_factor(int64 seed, bool item, int64 id, int32 k);

/*
 * Train on m (both copies needed: i_ptr set).  Weights must be > 0
 * (CORE_INVALID otherwise; the glue checks first to name the column).
 * Polls hooks between blocks of rows.  *out from a.  CORE_RANGE when a
 * factor or the loss is not finite.
 */
extern CoreStatus als_train(const CoreAlloc *a, const InteractionMatrix *m, const AlsParams *p,
							int nthreads, const CoreInterrupts *hooks, AlsModel **out,
							CoreError *err);

/*
 * gram[f * f] (full, symmetric) := Z'Z over n rows of z (row-major, f
 * columns), in blocks of rows added in order (deterministic); hooks polled
 * between blocks.  Main thread only (BLAS).
 */
extern void als_gram(const double *z, int64 n, int32 f, double *gram, const CoreInterrupts *hooks);

/*
 * One row's system (see the top): n entries, entry e being row idx[e] of z
 * (or row e when idx is NULL) with weight w[e] > 0; gram = Z'Z without
 * lambda.  The exact solve writes x and needs scratch of f * f + f doubles;
 * false when the system is not positive definite (not finite).  The CG form
 * starts from x, reads z as floats (training's copy), runs training's solver
 * (the lockstep group of one row) and
 * needs als_cg_scratch_doubles(f) doubles.  Any thread.
 */
extern bool als_solve_exact(int32 f, const double *gram, double lambda, double alpha,
							const double *z, const int32 *idx, const double *w, int64 n,
							double *x, double *scratch);
extern size_t als_cg_scratch_doubles(int32 f);
extern void als_solve_cg(int32 f, const double *gram, double lambda, double alpha,
						 const float *z, const int32 *idx, const double *w, int64 n,
						 int32 steps, double *x, double *scratch);

#endif
