/*
 * als_core.c
 *	  Implicit ALS: training over an InteractionMatrix, and the one-row
 *	  solvers that serving (recalculate) shares with training.
 *
 * Design
 * ------
 * Both sides' factors are row-major double arrays (a row's f numbers
 * contiguous), so a row solve reads the other side's rows of its
 * interactions as contiguous vectors.  One half-iteration is:
 *   1. G = Z'Z of the fixed side Z, on the main thread with dsyrk over
 *      blocks of ALS_GRAM_ROWS rows added in order (the serial OpenBLAS the
 *      Makefile links is not safe to call from two threads at once: see
 *      ease_core.c), polling for interrupts between blocks;
 *   2. one task per block of ALS_BLOCK rows of the side being solved, run on
 *      up to nthreads threads (parallel.c, the main thread polling between
 *      its tasks); each row is solved by als_solve_exact or als_solve_cg in
 *      plain C from G and its own interactions only, so no task reads what
 *      another writes in the same run.
 * The loss of the iteration: sum_u x_u' (Y'Y) x_u counts every pair with
 * c = 1, p = 0; it equals sum over (r, c) of (Y'Y)_rc (X'X)_rc, and X'X is
 * computed after the user half anyway (the next item half needs it).  Each
 * user block adds, for each stored pair, c (1 - s)^2 - s^2 (s = x_u . y_i,
 * replacing that pair's term) and lambda |x_u|^2 into its own slot; the
 * slots are added in block order and lambda |Y|^2 last, so L is the same
 * bits whatever the thread count.
 *
 * Memory: the two factor arrays, Y'Y and X'X, per-thread scratch (f^2 + 3 f doubles)
 * and one double per user block, all allocated before the first run
 * (als_memory_estimate counts exactly these).
 */
#include "core.h"

#include <math.h>
#include <time.h>
#include <cblas.h>

#include "als_core.h"
#include "parallel.h"

/* rows of one dsyrk call of the Gram matrix (a few ms at f = 64) */
#define ALS_GRAM_ROWS 8192
/* CG stops early when the residual's squared norm is below this (as `implicit`) */
#define ALS_CG_EPS 1e-20

CoreStatus
als_check_params(const AlsParams *p, CoreError *err)
{
	if (p->factors < 1 || p->factors > ALS_MAX_FACTORS)
		return core_error(err, CORE_INVALID, "factors must be between 1 and %d, got %d",
						  ALS_MAX_FACTORS, p->factors);
	if (!(p->regularization > 0) || !isfinite(p->regularization))
		return core_error(err, CORE_INVALID, "regularization must be a finite number > 0, got %g",
						  p->regularization);
	if (!(p->alpha >= 0) || !isfinite(p->alpha))
		return core_error(err, CORE_INVALID, "alpha must be a finite number >= 0, got %g", p->alpha);
	if (p->iterations < 1 || p->iterations > ALS_MAX_ITERATIONS)
		return core_error(err, CORE_INVALID, "iterations must be between 1 and %d, got %d",
						  ALS_MAX_ITERATIONS, p->iterations);
	if (p->cg_steps < 0 || p->cg_steps > ALS_MAX_CG_STEPS)
		return core_error(err, CORE_INVALID, "cg_steps must be between 0 and %d, got %d",
						  ALS_MAX_CG_STEPS, p->cg_steps);
	return CORE_OK;
}

static int
Workers(int nthreads)
{
	return Max(1, Min(nthreads, 64));
}

/* a * b + c, false on overflow of size_t */
static bool
MulAdd(size_t a, size_t b, size_t *acc)
{
	if (b != 0 && a > (SIZE_MAX - *acc) / b)
		return false;
	*acc += a * b;
	return true;
}

size_t
als_memory_estimate(const InteractionMatrix *m, const AlsParams *p, int nthreads)
{
	size_t		f = (size_t) Max(p->factors, 1);
	size_t		doubles = 0;
	size_t		user_blocks = ((size_t) m->n_users + ALS_BLOCK - 1) / ALS_BLOCK;

	if (!MulAdd((size_t) m->n_users, f, &doubles) ||
		!MulAdd((size_t) m->n_items, f, &doubles) ||
		!MulAdd(2 * f, f, &doubles) ||
		!MulAdd((size_t) Workers(nthreads), f * f + 3 * f, &doubles) ||
		!MulAdd(user_blocks + (size_t) Max(p->iterations, 1), 1, &doubles) ||
		doubles > SIZE_MAX / sizeof(double))
		return SIZE_MAX;
	return doubles * sizeof(double);
}

/* splitmix64's finaliser */
static inline uint64
Mix(uint64 z)
{
	z += UINT64CONST(0x9E3779B97F4A7C15);
	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

double
als_initial_factor(int64 seed, bool item, int64 id, int32 k)
{
	uint64		h = Mix((uint64) seed);

	h = Mix(h ^ (item ? UINT64CONST(0x5851F42D4C957F2D) : UINT64CONST(0x14057B7EF767814F)));
	h = Mix(h ^ (uint64) id);
	h = Mix(h ^ (uint64) (uint32) k);
	return (double) (h >> 11) * (1.0 / 9007199254740992.0) * 0.01;
}

void
als_gram(const double *z, int64 n, int32 f, double *gram, const CoreInterrupts *hooks)
{
	memset(gram, 0, sizeof(double) * f * f);
	for (int64 start = 0; start < n; start += ALS_GRAM_ROWS)
	{
		blasint		rows = (blasint) Min((int64) ALS_GRAM_ROWS, n - start);

		/* upper triangle of gram += Z_block' Z_block */
		cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, f, rows, 1.0,
					z + (size_t) start * f, f, 1.0, gram, f);
		core_check_interrupts(hooks);
	}
	for (int32 r = 0; r < f; r++)
		for (int32 c = 0; c < r; c++)
			gram[(size_t) r * f + c] = gram[(size_t) c * f + r];
}

/*
 * a . b with four partial sums (vectorisable without reassociating a single
 * sum; the order is fixed, so the result is too)
 */
static inline double
Dot(const double *restrict a, const double *restrict b, int32 f)
{
	double		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	int32		k = 0;

	for (; k + 4 <= f; k += 4)
	{
		s0 += a[k] * b[k];
		s1 += a[k + 1] * b[k + 1];
		s2 += a[k + 2] * b[k + 2];
		s3 += a[k + 3] * b[k + 3];
	}
	for (; k < f; k++)
		s0 += a[k] * b[k];
	return (s0 + s1) + (s2 + s3);
}

/* y += s x */
static inline void
Axpy(double *restrict y, double s, const double *restrict x, int32 f)
{
	for (int32 k = 0; k < f; k++)
		y[k] += s * x[k];
}

static inline const double *
Row(const double *z, const int32 *idx, int64 e, int32 f)
{
	return z + (size_t) (idx ? idx[e] : e) * f;
}

bool
als_solve_exact(int32 f, const double *gram, double lambda, double alpha,
				const double *z, const int32 *idx, const double *w, int64 n,
				double *x, double *scratch)
{
	double	   *a = scratch;	/* lower triangle, row-major */
	double	   *b = scratch + (size_t) f * f;

	/* A = G + lambda I + sum alpha w z z',  b = sum (1 + alpha w) z */
	for (int32 r = 0; r < f; r++)
		for (int32 c = 0; c <= r; c++)
			a[(size_t) r * f + c] = gram[(size_t) r * f + c] + (r == c ? lambda : 0);
	memset(b, 0, sizeof(double) * f);
	for (int64 e = 0; e < n; e++)
	{
		const double *zr = Row(z, idx, e, f);
		double		cm1 = alpha * w[e];

		for (int32 r = 0; r < f; r++)
			Axpy(a + (size_t) r * f, cm1 * zr[r], zr, r + 1);
		Axpy(b, 1 + cm1, zr, f);
	}
	/* Cholesky A = L L' in place (lower triangle) */
	for (int32 j = 0; j < f; j++)
	{
		double	   *lj = a + (size_t) j * f;
		double		d = lj[j] - Dot(lj, lj, j);

		if (!(d > 0) || !isfinite(d))
			return false;
		d = sqrt(d);
		lj[j] = d;
		for (int32 i = j + 1; i < f; i++)
		{
			double	   *li = a + (size_t) i * f;

			li[j] = (li[j] - Dot(li, lj, j)) / d;
		}
	}
	/* L t = b, then L' x = t */
	for (int32 i = 0; i < f; i++)
		x[i] = (b[i] - Dot(a + (size_t) i * f, x, i)) / a[(size_t) i * f + i];
	for (int32 i = f - 1; i >= 0; i--)
	{
		double		s = x[i];

		for (int32 k = i + 1; k < f; k++)
			s -= a[(size_t) k * f + i] * x[k];
		x[i] = s / a[(size_t) i * f + i];
	}
	for (int32 i = 0; i < f; i++)
		if (!isfinite(x[i]))
			return false;
	return true;
}

/* out = (G + lambda I) v + sum alpha w (z . v) z */
static void
ApplyA(int32 f, const double *gram, double lambda, double alpha, const double *z,
	   const int32 *idx, const double *w, int64 n, const double *v, double *out)
{
	/* G is symmetric: G v as a sum of its rows scaled by v */
	for (int32 r = 0; r < f; r++)
		out[r] = lambda * v[r];
	for (int32 k = 0; k < f; k++)
		Axpy(out, v[k], gram + (size_t) k * f, f);
	for (int64 e = 0; e < n; e++)
	{
		const double *zr = Row(z, idx, e, f);

		Axpy(out, alpha * w[e] * Dot(zr, v, f), zr, f);
	}
}

void
als_solve_cg(int32 f, const double *gram, double lambda, double alpha,
			 const double *z, const int32 *idx, const double *w, int64 n,
			 int32 steps, double *x, double *scratch)
{
	double	   *r = scratch;
	double	   *p = scratch + f;
	double	   *ap = scratch + 2 * (size_t) f;
	double		rsold,
				rsnew;

	/* r = b - A x, b = sum (1 + alpha w) z */
	ApplyA(f, gram, lambda, alpha, z, idx, w, n, x, ap);
	for (int32 k = 0; k < f; k++)
		r[k] = -ap[k];
	for (int64 e = 0; e < n; e++)
		Axpy(r, 1 + alpha * w[e], Row(z, idx, e, f), f);
	memcpy(p, r, sizeof(double) * f);
	rsold = Dot(r, r, f);
	if (rsold < ALS_CG_EPS)
		return;
	for (int32 it = 0; it < steps; it++)
	{
		double		pap,
					step;

		ApplyA(f, gram, lambda, alpha, z, idx, w, n, p, ap);
		pap = Dot(p, ap, f);
		if (!(pap > 0))
			return;
		step = rsold / pap;
		for (int32 k = 0; k < f; k++)
		{
			x[k] += step * p[k];
			r[k] -= step * ap[k];
		}
		rsnew = Dot(r, r, f);
		if (rsnew < ALS_CG_EPS)
			return;
		for (int32 k = 0; k < f; k++)
			p[k] = r[k] + (rsnew / rsold) * p[k];
		rsold = rsnew;
	}
}

/* ---------- training ---------- */

typedef struct HalfRun
{
	const AlsParams *p;
	int32		f;
	int32		n_rows;
	const int64 *ptr;			/* the solved side's interactions */
	const int32 *idx;
	const double *w;
	double	   *s;				/* the solved side's factors */
	const double *z;			/* the fixed side's factors */
	const double *gram;
	double	   *scratch;		/* per worker: f * f + 3 f */
	double	   *partial;		/* users: the loss of each block; NULL for items */
	ParallelRun *run;
	int			failed;			/* atomic: a row's system was not positive definite */
} HalfRun;

static void
HalfTask(void *arg, int worker, int64 task)
{
	HalfRun    *h = arg;
	int32		f = h->f;
	double	   *scratch = h->scratch + (size_t) worker * ((size_t) f * f + 3 * (size_t) f);
	int64		lo = task * ALS_BLOCK,
				hi = Min(lo + ALS_BLOCK, (int64) h->n_rows);
	double		loss = 0;

	for (int64 row = lo; row < hi; row++)
	{
		int64		b = h->ptr[row],
					n = h->ptr[row + 1] - b;
		double	   *x = h->s + (size_t) row * f;
		bool		ok = true;

		if (h->p->cg_steps == 0)
			ok = als_solve_exact(f, h->gram, h->p->regularization, h->p->alpha, h->z,
								 h->idx + b, h->w + b, n, x, scratch);
		else
			als_solve_cg(f, h->gram, h->p->regularization, h->p->alpha, h->z,
						 h->idx + b, h->w + b, n, h->p->cg_steps, x, scratch);
		for (int32 k = 0; ok && k < f; k++)
			ok = isfinite(x[k]);
		if (!ok)
		{
			__atomic_store_n(&h->failed, 1, __ATOMIC_RELAXED);
			parallel_stop(h->run);
			return;
		}
		if (h->partial)
		{
			/* the stored pairs' terms replace their share of x' G x (summed by the caller) */
			for (int64 e = 0; e < n; e++)
			{
				double		sc = Dot(x, h->z + (size_t) h->idx[b + e] * f, f);
				double		c = 1 + h->p->alpha * h->w[b + e];

				loss += c * (1 - sc) * (1 - sc) - sc * sc;
			}
			loss += h->p->regularization * Dot(x, x, f);
		}
	}
	if (h->partial)
		h->partial[task] = loss;
}

static CoreStatus
SolveHalf(HalfRun *h, int nthreads, const CoreInterrupts *hooks, CoreError *err)
{
	ParallelRun run;
	int64		n_tasks = ((int64) h->n_rows + ALS_BLOCK - 1) / ALS_BLOCK;

	if (n_tasks == 0)
		return CORE_OK;
	memset(&run, 0, sizeof(run));
	run.n_tasks = n_tasks;
	run.n_workers = (int) Min((int64) Workers(nthreads), n_tasks);
	run.fn = HalfTask;
	run.arg = h;
	h->run = &run;
	h->failed = 0;
	parallel_run(&run, hooks);
	if (h->failed)
		return core_error(err, CORE_RANGE, "als factors are not finite");
	return CORE_OK;
}

static double
Seconds(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double) (t1.tv_sec - t0->tv_sec) + (double) (t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

CoreStatus
als_train(const CoreAlloc *a, const InteractionMatrix *m, const AlsParams *p, int nthreads,
		  const CoreInterrupts *hooks, AlsModel **out, CoreError *err)
{
	CoreStatus	st;
	AlsModel   *model;
	int32		f = p->factors;
	int			nw = Workers(nthreads);
	int64		user_blocks = ((int64) m->n_users + ALS_BLOCK - 1) / ALS_BLOCK;
	double	   *gram,
			   *gram_x,
			   *scratch,
			   *partial;
	HalfRun		h;

	if ((st = als_check_params(p, err)) != CORE_OK)
		return st;
	if (m->i_ptr == NULL)
		return core_error(err, CORE_INVALID, "als needs the item-major copy of the matrix");
	for (int64 e = 0; e < m->nnz; e++)
		if (!(m->u_w[e] > 0) || !isfinite(m->u_w[e]))
			return core_error(err, CORE_INVALID, "interaction weights must be finite and > 0");

	model = core_array(a, 1, sizeof(AlsModel), true, err);
	if (model == NULL)
		return err->status;
	model->n_users = m->n_users;
	model->n_items = m->n_items;
	model->factors = f;
	model->iterations = p->iterations;
	if ((model->x = core_array(a, (size_t) m->n_users * f, sizeof(double), false, err)) == NULL ||
		(model->y = core_array(a, (size_t) m->n_items * f, sizeof(double), false, err)) == NULL ||
		(model->loss = core_array(a, p->iterations, sizeof(double), true, err)) == NULL ||
		(gram = core_array(a, (size_t) f * f, sizeof(double), false, err)) == NULL ||
		(gram_x = core_array(a, (size_t) f * f, sizeof(double), false, err)) == NULL ||
		(scratch = core_array(a, (size_t) nw * ((size_t) f * f + 3 * (size_t) f),
							  sizeof(double), false, err)) == NULL ||
		(partial = core_array(a, Max(user_blocks, 1), sizeof(double), true, err)) == NULL)
		return err->status;

	for (int32 u = 0; u < m->n_users; u++)
		for (int32 k = 0; k < f; k++)
			model->x[(size_t) u * f + k] = als_initial_factor(p->seed, false, m->user_ids[u], k);
	for (int32 i = 0; i < m->n_items; i++)
		for (int32 k = 0; k < f; k++)
			model->y[(size_t) i * f + k] = als_initial_factor(p->seed, true, m->item_ids[i], k);
	core_check_interrupts(hooks);

	memset(&h, 0, sizeof(h));
	h.p = p;
	h.f = f;
	h.scratch = scratch;
	for (int32 it = 0; it < p->iterations; it++)
	{
		struct timespec t0;
		double		loss = 0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		/* items given the users (X'X from the end of the last iteration) */
		if (it == 0)
			als_gram(model->x, m->n_users, f, gram_x, hooks);
		h.gram = gram_x;
		h.n_rows = m->n_items;
		h.ptr = m->i_ptr;
		h.idx = m->i_user;
		h.w = m->i_w;
		h.s = model->y;
		h.z = model->x;
		h.partial = NULL;
		if ((st = SolveHalf(&h, nthreads, hooks, err)) != CORE_OK)
			return st;
		/* users given the items, with the loss */
		als_gram(model->y, m->n_items, f, gram, hooks);
		h.gram = gram;
		h.n_rows = m->n_users;
		h.ptr = m->u_ptr;
		h.idx = m->u_item;
		h.w = m->u_w;
		h.s = model->x;
		h.z = model->y;
		h.partial = partial;
		if ((st = SolveHalf(&h, nthreads, hooks, err)) != CORE_OK)
			return st;
		/*
		 * sum_u x_u' (Y'Y) x_u = sum over (r, c) of (Y'Y)_rc (X'X)_rc, every
		 * pair counted as unobserved; X'X also serves the next iteration
		 */
		als_gram(model->x, m->n_users, f, gram_x, hooks);
		for (int32 k = 0; k < f * f; k++)
			loss += gram[k] * gram_x[k];
		for (int64 b = 0; b < user_blocks; b++)
			loss += partial[b];
		for (int32 i = 0; i < m->n_items; i++)
		{
			const double *y = model->y + (size_t) i * f;

			loss += p->regularization * Dot(y, y, f);
		}
		if (!isfinite(loss))
			return core_error(err, CORE_RANGE, "als loss is not finite");
		model->loss[it] = loss;
		if (p->progress && p->progress->iteration)
			p->progress->iteration(p->progress->arg, it + 1, loss, Seconds(&t0));
	}
	core_release(a, gram);
	core_release(a, gram_x);
	core_release(a, scratch);
	core_release(a, partial);
	*out = model;
	return CORE_OK;
}
