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
 *   2. one task per run of consecutive rows of the side being solved, run
 *      on up to nthreads threads (parallel.c, the main thread polling
 *      between its tasks); each row is solved by als_solve_exact or
 *      als_solve_cg in plain C from G and its own interactions only, so no
 *      task reads what another writes in the same run.  Tasks are cut by
 *      work, not by row count (PlanTasks: at most ALS_BLOCK rows and about
 *      1/ALS_TASK_SHARE of the side's pairs and Gram products each), and
 *      handed out largest first: popular items hold most pairs, so a fixed
 *      64-item block of them was most of the item half on one thread while
 *      the others waited (and delayed the main thread's next poll).  The
 *      cut depends on the matrix only, never on the thread count.
 *      The CG solver runs up to ALS_LOCK rows of a task in lockstep (a group:
 *      GroupRows keeps a group's gathered rows within L2), so that
 *      (G + lambda I) p for all of them is one register-blocked matrix
 *      product (BlockGram).  The fixed side's rows of the group's pairs are
 *      first copied into a per-worker buffer (PackGroup, prefetching across
 *      rows: the gathers are random and latency-bound; the previous group
 *      prefetched them while it computed, NextGroup), so the initial
 *      residual and every step stream them contiguously, four pairs at a
 *      time (two dot products sharing their loads, one update of the
 *      residual for four rows); the hot loops have an AVX2/FMA clone
 *      (ALS_HOT).  Blocking changes no bits: each dot product keeps its 16
 *      partial sums and their order, each update its order of pairs.
 * The loss of an iteration: sum_u x_u' (Y'Y) x_u counts every pair with
 * c = 1, p = 0; it equals sum over (r, c) of (Y'Y)_rc (X'X)_rc, both Gram
 * matrices being computed anyway (Y'Y for the user half, X'X for the next
 * item half).  The stored pairs' terms c (1 - s)^2 - s^2 (s = x_u . y_i,
 * replacing that pair's share) need every s at the iteration's end: the
 * next item half's initial CG residual computes exactly these, so each item
 * task adds them into its own slot there (the exact solver and the last
 * iteration take a pass of dot products instead).  Slots are added in task
 * order, then lambda (tr X'X + tr Y'Y), so L is the same bits whatever the
 * thread count; it is reported after the next item half.
 *
 * Factors are floats, as the tables store them: each solved row is rounded
 * to float (its arithmetic is in double), and a float copy of both sides is
 * kept beside the doubles, so the gathers of the pair loops move half the
 * bytes and the reported loss is the stored model's.
 *
 * Memory: the two factor arrays and their float copies, Y'Y, X'X and the
 * padded copy the CG solver reads, per-thread scratch (ScratchPerWorker: the solvers' vectors and a
 * 2 MB buffer the CG solver packs a group's gathered rows into), one double per item task and
 * per iteration, both sides' task plans, all allocated before the first run (als_memory_estimate
 * counts exactly these).
 */
#include "core.h"

#include <math.h>
#include <time.h>
#include <cblas.h>

#include "als_core.h"
#include "parallel.h"

/* a task's target share of its half's work (PlanTasks) */
#define ALS_TASK_SHARE 256
/* rows of one dsyrk call of the Gram matrix (a few ms at f = 64) */
#define ALS_GRAM_ROWS 8192
/* CG stops early when the residual's squared norm is below this (as `implicit`) */
#define ALS_CG_EPS 1e-20
/* rows solved in lockstep by the CG solver, and the padding of their vectors */
#define ALS_LOCK 8
#define ALS_PAD 8
/* pairs ahead whose rows are prefetched in the gathers (rows are random) */
#define ALS_PREFETCH 4
/* pairs ahead prefetched while packing a CG group (across its rows) */
#define ALS_PACK_AHEAD 12
/* floats of a worker's pack buffer (2 MB): a CG group's gathered rows, contiguous */
#define ALS_PACK_FLOATS ((size_t) 512 * 1024)
/* floats of gathered rows a CG group of several rows holds at most (256 kB, in L2 with the rest) */
#define ALS_GROUP_FLOATS ((size_t) 64 * 1024)

/* four doubles, loaded and stored unaligned (GNU vector extensions) */
typedef double V4 __attribute__((vector_size(32), aligned(8)));

static inline int32
PadF(int32 f)
{
	return (f + ALS_PAD - 1) / ALS_PAD * ALS_PAD;
}

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

static size_t ScratchPerWorker(int32 f);
static int64 PlanTasks(const int64 *ptr, int32 n_rows, int32 f, int32 *lo, int32 *order,
					   int64 *sort);

/* bytes of a side's task plan: row bounds, run order and the order's sort keys */
static size_t
PlanBytes(int64 n_tasks)
{
	return (size_t) (n_tasks + 1) * sizeof(int32) + (size_t) Max(n_tasks, 1) * (sizeof(int32) + sizeof(int64));
}

size_t
als_memory_estimate(const InteractionMatrix *m, const AlsParams *p, int nthreads)
{
	int32		fi = Max(Min(p->factors, ALS_MAX_FACTORS), 1);
	size_t		f = (size_t) fi;
	size_t		fp = (size_t) PadF(fi);
	size_t		doubles = 0,
				floats = 0;
	/* without the item-major copy (als_train refuses it), a bound: one task per row */
	int64		item_tasks = m->i_ptr ? PlanTasks(m->i_ptr, m->n_items, fi, NULL, NULL, NULL) : m->n_items,
				user_tasks = PlanTasks(m->u_ptr, m->n_users, fi, NULL, NULL, NULL);
	size_t		plans = PlanBytes(item_tasks) + PlanBytes(user_tasks);

	if (!MulAdd((size_t) m->n_users, f, &doubles) ||
		!MulAdd((size_t) m->n_items, f, &doubles) ||
		!MulAdd(2 * f, f, &doubles) ||
		!MulAdd(fp, fp, &doubles) ||
		!MulAdd((size_t) Workers(nthreads), ScratchPerWorker(fi), &doubles) ||
		!MulAdd((size_t) Max(item_tasks, 1) + (size_t) Max(p->iterations, 1), 1, &doubles) ||
		!MulAdd((size_t) m->n_users + (size_t) m->n_items, f, &floats) ||
		doubles > SIZE_MAX / sizeof(double) ||
		floats > (SIZE_MAX - doubles * sizeof(double) - plans) / sizeof(float))
		return SIZE_MAX;
	return doubles * sizeof(double) + floats * sizeof(float) + plans;
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
 * The hot loops are compiled twice: for x86-64-v3 (AVX2 and FMA) and for the
 * baseline, the loader picking one per process (ifunc).  All threads of a
 * run use the same clone, so results stay bit-identical whatever the thread
 * count; across CPUs they differ in the last bits (fused multiply-adds), as
 * the OpenBLAS Gram matrix already does.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(MEDIA_RECO_NO_CLONES)
#define ALS_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define ALS_HOT
#endif

/*
 * a . b with sixteen partial sums (vectorisable without reassociating a
 * single sum, and four independent chains of vector adds; the order is
 * fixed, so the result is too)
 */
static inline double
Dot(const double *restrict a, const double *restrict b, int32 f)
{
	double		s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0,
				s8 = 0, s9 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0, s14 = 0, s15 = 0;
	int32		k = 0;

	for (; k + 16 <= f; k += 16)
	{
		s0 += a[k] * b[k];
		s1 += a[k + 1] * b[k + 1];
		s2 += a[k + 2] * b[k + 2];
		s3 += a[k + 3] * b[k + 3];
		s4 += a[k + 4] * b[k + 4];
		s5 += a[k + 5] * b[k + 5];
		s6 += a[k + 6] * b[k + 6];
		s7 += a[k + 7] * b[k + 7];
		s8 += a[k + 8] * b[k + 8];
		s9 += a[k + 9] * b[k + 9];
		s10 += a[k + 10] * b[k + 10];
		s11 += a[k + 11] * b[k + 11];
		s12 += a[k + 12] * b[k + 12];
		s13 += a[k + 13] * b[k + 13];
		s14 += a[k + 14] * b[k + 14];
		s15 += a[k + 15] * b[k + 15];
	}
	for (; k < f; k++)
		s0 += a[k] * b[k];
	return (((s0 + s8) + (s4 + s12)) + ((s2 + s10) + (s6 + s14))) +
		(((s1 + s9) + (s5 + s13)) + ((s3 + s11) + (s7 + s15)));
}

/* ask for row idx[e] of z (f doubles) ahead of its use */
static inline void
PrefetchRow(const float *z, const int32 *idx, int64 e, int64 n, int32 f)
{
	if (e < n)
	{
		const char *r = (const char *) (z + (size_t) (idx ? idx[e] : e) * f);

		for (size_t off = 0; off < sizeof(float) * (size_t) f; off += 64)
			__builtin_prefetch(r + off);
	}
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

/* Dot and Axpy over a float row a (the gathers' copy), in double */
static inline double
DotF(const float *restrict a, const double *restrict b, int32 f)
{
	double		s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0,
				s8 = 0, s9 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0, s14 = 0, s15 = 0;
	int32		k = 0;

	for (; k + 16 <= f; k += 16)
	{
		s0 += (double) a[k] * b[k];
		s1 += (double) a[k + 1] * b[k + 1];
		s2 += (double) a[k + 2] * b[k + 2];
		s3 += (double) a[k + 3] * b[k + 3];
		s4 += (double) a[k + 4] * b[k + 4];
		s5 += (double) a[k + 5] * b[k + 5];
		s6 += (double) a[k + 6] * b[k + 6];
		s7 += (double) a[k + 7] * b[k + 7];
		s8 += (double) a[k + 8] * b[k + 8];
		s9 += (double) a[k + 9] * b[k + 9];
		s10 += (double) a[k + 10] * b[k + 10];
		s11 += (double) a[k + 11] * b[k + 11];
		s12 += (double) a[k + 12] * b[k + 12];
		s13 += (double) a[k + 13] * b[k + 13];
		s14 += (double) a[k + 14] * b[k + 14];
		s15 += (double) a[k + 15] * b[k + 15];
	}
	for (; k < f; k++)
		s0 += (double) a[k] * b[k];
	return (((s0 + s8) + (s4 + s12)) + ((s2 + s10) + (s6 + s14))) +
		(((s1 + s9) + (s5 + s13)) + ((s3 + s11) + (s7 + s15)));
}

static inline void
AxpyF(double *restrict y, double s, const float *restrict x, int32 f)
{
	for (int32 k = 0; k < f; k++)
		y[k] += s * (double) x[k];
}

static inline const float *
RowF(const float *z, const int32 *idx, int64 e, int32 f)
{
	return z + (size_t) (idx ? idx[e] : e) * f;
}

/*
 * four floats at a as doubles (a macro: a function returning V4 is an ABI
 * change without AVX).  Written as a constructor of four converted floats:
 * GCC 12 turns that into one vcvtps2pd ymm in the AVX2 clone, while it
 * lowers __builtin_convertvector of a float vector into two 128-bit halves,
 * an insert and a stack round trip (a third of the pair loops' time).
 */
#define CvtF4(a) ((V4) {(a)[0], (a)[1], (a)[2], (a)[3]})

/*
 * DotF of two rows at once, for f a multiple of 16: each result has exactly
 * DotF's bits (its 16 partial sums are the four lanes of the four
 * accumulators, added in DotF's order), with one load of b for both rows.
 */
static inline void
DotF2(const float *restrict a0, const float *restrict a1, const double *restrict b, int32 f,
	  double *s0, double *s1)
{
	V4			p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0},
				q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};

	for (int32 k = 0; k < f; k += 16)
	{
		V4			b0 = *(const V4 *) (b + k),
					b1 = *(const V4 *) (b + k + 4),
					b2 = *(const V4 *) (b + k + 8),
					b3 = *(const V4 *) (b + k + 12);

		p0 += CvtF4(a0 + k) * b0;
		q0 += CvtF4(a1 + k) * b0;
		p1 += CvtF4(a0 + k + 4) * b1;
		q1 += CvtF4(a1 + k + 4) * b1;
		p2 += CvtF4(a0 + k + 8) * b2;
		q2 += CvtF4(a1 + k + 8) * b2;
		p3 += CvtF4(a0 + k + 12) * b3;
		q3 += CvtF4(a1 + k + 12) * b3;
	}
	/* lane j of (p0 + p2) + (p1 + p3) is (s_j + s_j+8) + (s_j+4 + s_j+12) */
	p0 = (p0 + p2) + (p1 + p3);
	q0 = (q0 + q2) + (q1 + q3);
	*s0 = (p0[0] + p0[2]) + (p0[1] + p0[3]);
	*s1 = (q0[0] + q0[2]) + (q0[1] + q0[3]);
}

/*
 * y += c[0] a0 + c[1] a1 + c[2] a2 + c[3] a3, for f a multiple of 4: the
 * bits of four AxpyF calls in that order, with one load and store of y
 */
static inline void
AxpyF4(double *restrict y, const double *c, const float *restrict a0, const float *restrict a1,
	   const float *restrict a2, const float *restrict a3, int32 f)
{
	for (int32 k = 0; k < f; k += 4)
	{
		V4			v = *(V4 *) (y + k);

		v += c[0] * CvtF4(a0 + k);
		v += c[1] * CvtF4(a1 + k);
		v += c[2] * CvtF4(a2 + k);
		v += c[3] * CvtF4(a3 + k);
		*(V4 *) (y + k) = v;
	}
}

/*
 * a[r][c] += (alpha w_e z_e[r]) z_e[c] over the pairs e in order, for
 * f a multiple of 8: the arithmetic of one Axpy per pair and row (each
 * element gets the same products added in the same order, so the same
 * bits), in tiles of 4 rows x 8 columns whose sums stay in registers over a
 * chunk of ALS_EXACT_CHUNK pairs instead of a load and a store of a's row
 * per pair.  Tiles cover the lower triangle and a little of the upper,
 * which nothing reads.
 */
#define ALS_EXACT_CHUNK 32

static inline __attribute__((always_inline)) void
ExactUpdates(int32 f, double alpha, const double *z, const int32 *idx, const double *w, int64 n,
			 double *a)
{
	for (int64 e0 = 0; e0 < n; e0 += ALS_EXACT_CHUNK)
	{
		int			ne = (int) Min((int64) ALS_EXACT_CHUNK, n - e0);
		const double *zc[ALS_EXACT_CHUNK];
		double		cm[ALS_EXACT_CHUNK];

		for (int q = 0; q < ne; q++)
		{
			zc[q] = Row(z, idx, e0 + q, f);
			cm[q] = alpha * w[e0 + q];
		}
		for (int32 r0 = 0; r0 < f; r0 += 4)
			for (int32 c0 = 0; c0 <= r0 + 3; c0 += 8)
			{
				double	   *a0 = a + (size_t) r0 * f + c0,
						   *a1 = a0 + f,
						   *a2 = a1 + f,
						   *a3 = a2 + f;
				V4			p0 = *(V4 *) a0,
							q0 = *(V4 *) (a0 + 4),
							p1 = *(V4 *) a1,
							q1 = *(V4 *) (a1 + 4),
							p2 = *(V4 *) a2,
							q2 = *(V4 *) (a2 + 4),
							p3 = *(V4 *) a3,
							q3 = *(V4 *) (a3 + 4);

				for (int q = 0; q < ne; q++)
				{
					const double *zr = zc[q];
					V4			lo = *(const V4 *) (zr + c0),
								hi = *(const V4 *) (zr + c0 + 4);
					double		s0 = cm[q] * zr[r0],
								s1 = cm[q] * zr[r0 + 1],
								s2 = cm[q] * zr[r0 + 2],
								s3 = cm[q] * zr[r0 + 3];

					p0 += s0 * lo;
					q0 += s0 * hi;
					p1 += s1 * lo;
					q1 += s1 * hi;
					p2 += s2 * lo;
					q2 += s2 * hi;
					p3 += s3 * lo;
					q3 += s3 * hi;
				}
				*(V4 *) a0 = p0;
				*(V4 *) (a0 + 4) = q0;
				*(V4 *) a1 = p1;
				*(V4 *) (a1 + 4) = q1;
				*(V4 *) a2 = p2;
				*(V4 *) (a2 + 4) = q2;
				*(V4 *) a3 = p3;
				*(V4 *) (a3 + 4) = q3;
			}
	}
}

ALS_HOT bool
als_solve_exact(int32 f, const double *gram, double lambda, double alpha,
				const double *z, const int32 *idx, const double *w, int64 n,
				double *x, double *scratch)
{
	double	   *a = scratch;	/* lower triangle, row-major */
	double	   *b = scratch + (size_t) f * f;

	/* A = G + lambda I + sum alpha w z z',  b = sum (1 + alpha w) z */
	for (int32 r = 0; r < f; r++)
		for (int32 c = 0; c < f; c++)
			a[(size_t) r * f + c] = gram[(size_t) r * f + c] + (r == c ? lambda : 0);
	memset(b, 0, sizeof(double) * f);
	if (f % 8 == 0)
		ExactUpdates(f, alpha, z, idx, w, n, a);
	else
		for (int64 e = 0; e < n; e++)
		{
			const double *zr = Row(z, idx, e, f);
			double		cm1 = alpha * w[e];

			for (int32 r = 0; r < f; r++)
				Axpy(a + (size_t) r * f, cm1 * zr[r], zr, r + 1);
		}
	for (int64 e = 0; e < n; e++)
		Axpy(b, 1 + alpha * w[e], Row(z, idx, e, f), f);
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

/*
 * The CG solver runs ALS_LOCK rows in lockstep, so that (G + lambda I) p for
 * all of them is one matrix product whose G rows are loaded once per four
 * rows and whose sums stay in registers (BlockGram), instead of one
 * memory-bound matrix-vector product per row.  Each row's arithmetic is its
 * own and in a fixed order, so which rows share a group changes nothing.
 * The group's vectors are rows of stride fp = f rounded up to ALS_PAD,
 * zero-padded, as is the padded Gram matrix.
 */
size_t
als_cg_scratch_doubles(int32 f)
{
	return (size_t) PadF(f) * PadF(f) + 4 * (size_t) ALS_LOCK * PadF(f);
}

/* gpad[fp * fp] := gram[f * f] zero-padded */
static void
PadGram(int32 f, const double *gram, double *gpad)
{
	int32		fp = PadF(f);

	memset(gpad, 0, sizeof(double) * fp * fp);
	for (int32 r = 0; r < f; r++)
		memcpy(gpad + (size_t) r * fp, gram + (size_t) r * f, sizeof(double) * f);
}

/*
 * out[i] = lambda v[i] + sum_k v[i][k] G[k] for the first nr4 rows of v
 * (stride fp; nr4 a multiple of 4, at most ALS_LOCK); each output is
 * lambda v first, then k ascending
 */

static inline void
BlockGram(int32 f, int32 fp, const double *restrict g, double lambda,
		  const double *restrict v, double *restrict out, int nr4)
{
	for (int32 c0 = 0; c0 < fp; c0 += 8)
		for (int32 i0 = 0; i0 < nr4; i0 += 4)
		{
			const double *v0 = v + (size_t) i0 * fp,
					   *v1 = v0 + fp,
					   *v2 = v1 + fp,
					   *v3 = v2 + fp;
			V4			a0 = *(const V4 *) (v0 + c0) * lambda,
						b0 = *(const V4 *) (v0 + c0 + 4) * lambda,
						a1 = *(const V4 *) (v1 + c0) * lambda,
						b1 = *(const V4 *) (v1 + c0 + 4) * lambda,
						a2 = *(const V4 *) (v2 + c0) * lambda,
						b2 = *(const V4 *) (v2 + c0 + 4) * lambda,
						a3 = *(const V4 *) (v3 + c0) * lambda,
						b3 = *(const V4 *) (v3 + c0 + 4) * lambda;

			for (int32 k = 0; k < f; k++)
			{
				V4			ga = *(const V4 *) (g + (size_t) k * fp + c0),
							gb = *(const V4 *) (g + (size_t) k * fp + c0 + 4);

				a0 += v0[k] * ga;
				b0 += v0[k] * gb;
				a1 += v1[k] * ga;
				b1 += v1[k] * gb;
				a2 += v2[k] * ga;
				b2 += v2[k] * gb;
				a3 += v3[k] * ga;
				b3 += v3[k] * gb;
			}
			*(V4 *) (out + (size_t) i0 * fp + c0) = a0;
			*(V4 *) (out + (size_t) i0 * fp + c0 + 4) = b0;
			*(V4 *) (out + (size_t) (i0 + 1) * fp + c0) = a1;
			*(V4 *) (out + (size_t) (i0 + 1) * fp + c0 + 4) = b1;
			*(V4 *) (out + (size_t) (i0 + 2) * fp + c0) = a2;
			*(V4 *) (out + (size_t) (i0 + 2) * fp + c0 + 4) = b2;
			*(V4 *) (out + (size_t) (i0 + 3) * fp + c0) = a3;
			*(V4 *) (out + (size_t) (i0 + 3) * fp + c0 + 4) = b3;
		}
}

/*
 * One row of a CG group: its interactions and its factors (updated in
 * place); the fixed side's rows of its pairs are gathered (z[idx[e]]) or,
 * when the group is packed, contiguous (idx NULL: z + e f).
 */
typedef struct CgRow
{
	const float *z;
	const int32 *idx;
	const double *w;
	int64		n;
	double	   *x;
} CgRow;

/* the four rows of pairs e .. e + 3 of row (prefetching ahead when gathered) */
static inline void
FourRows(const CgRow *row, int64 e, int32 f, const float **z4)
{
	for (int a = 0; a < 4; a++)
	{
		z4[a] = RowF(row->z, row->idx, e + a, f);
		if (row->idx)
			PrefetchRow(row->z, row->idx, e + a + ALS_PREFETCH, row->n, f);
	}
}

/* pair e's row (prefetching ahead when gathered), for the pairs outside blocks of four */
static inline const float *
OneRow(const CgRow *row, int64 e, int32 f)
{
	if (row->idx)
		PrefetchRow(row->z, row->idx, e + ALS_PREFETCH, row->n, f);
	return RowF(row->z, row->idx, e, f);
}

/*
 * r += sum over the row's pairs of (c - (c - 1) z . x) z, pair by pair
 * (blocks of four have the same bits); returns the pairs' loss terms
 * c (1 - s)^2 - s^2 added in pair order
 */
static inline double
ResidualPairs(const CgRow *row, double alpha, const double *x, int32 f, double *r)
{
	double		lt = 0;
	int64		e = 0;

	if (f % 16 == 0)
		for (; e + 4 <= row->n; e += 4)
		{
			const float *z4[4];
			double		s4[4],
						c4[4];

			FourRows(row, e, f, z4);
			DotF2(z4[0], z4[1], x, f, &s4[0], &s4[1]);
			DotF2(z4[2], z4[3], x, f, &s4[2], &s4[3]);
			for (int a = 0; a < 4; a++)
			{
				double		cm1 = alpha * row->w[e + a];
				double		s = s4[a];

				c4[a] = (1 + cm1) - cm1 * s;
				lt += (1 + cm1) * (1 - s) * (1 - s) - s * s;
			}
			AxpyF4(r, c4, z4[0], z4[1], z4[2], z4[3], f);
		}
	for (; e < row->n; e++)
	{
		const float *ze = OneRow(row, e, f);
		double		cm1 = alpha * row->w[e];
		double		s = DotF(ze, x, f);

		AxpyF(r, (1 + cm1) - cm1 * s, ze, f);
		lt += (1 + cm1) * (1 - s) * (1 - s) - s * s;
	}
	return lt;
}

/* ap += sum over the row's pairs of (c - 1) (z . p) z */
static inline void
StepPairs(const CgRow *row, double alpha, const double *p, int32 f, double *ap)
{
	int64		e = 0;

	if (f % 16 == 0)
		for (; e + 4 <= row->n; e += 4)
		{
			const float *z4[4];
			double		s4[4];

			FourRows(row, e, f, z4);
			DotF2(z4[0], z4[1], p, f, &s4[0], &s4[1]);
			DotF2(z4[2], z4[3], p, f, &s4[2], &s4[3]);
			for (int a = 0; a < 4; a++)
				s4[a] = alpha * row->w[e + a] * s4[a];
			AxpyF4(ap, s4, z4[0], z4[1], z4[2], z4[3], f);
		}
	for (; e < row->n; e++)
	{
		const float *ze = OneRow(row, e, f);

		AxpyF(ap, alpha * row->w[e] * DotF(ze, p, f), ze, f);
	}
}

/*
 * The fixed side's rows of the next CG group's pairs (idx[next .. end)),
 * prefetched a few at a time while the current group computes, so that
 * PackGroup finds them in cache: its own prefetching can only overlap the
 * random misses with each other, these overlap them with the arithmetic.
 */
typedef struct NextGroup
{
	const float *z;
	const int32 *idx;
	int64		next;
	int64		end;
	int			per_visit;		/* rows per call of NextGroupStep */
} NextGroup;

/* rows prefetched per call at most (a burst beyond the miss buffers would stall) */
#define ALS_NEXT_BURST 8

static inline void
NextGroupStep(NextGroup *ng, int32 f)
{
	for (int a = 0; a < ng->per_visit && ng->next < ng->end; a++, ng->next++)
	{
		const char *r = (const char *) (ng->z + (size_t) ng->idx[ng->next] * f);

		for (size_t off = 0; off < sizeof(float) * (size_t) f; off += 64)
			__builtin_prefetch(r + off, 0, 2);
	}
}

/*
 * `steps` CG steps from each row's x on its system (see als_core.h), for
 * nr <= ALS_LOCK rows at once; gpad the padded Gram matrix, scratch
 * 4 ALS_LOCK fp doubles, zeroed once by the caller (rows and padding that a
 * group does not use keep finite values of an earlier group, which the
 * blocked products read and nothing uses); ng NULL or the next group.
 * When loss is not NULL, *loss gets the sum over the rows' stored pairs of
 * c (1 - s)^2 - s^2 with s = z . x at the starting x (the initial residual
 * computes every s anyway).  Any thread.
 */
static ALS_HOT void
BlockCg(int32 f, const double *gpad, double lambda, double alpha,
		const CgRow *rows, int nr, int32 steps, double *scratch, double *loss, NextGroup *ng)
{
	int32		fp = PadF(f);
	size_t		mat = (size_t) ALS_LOCK * fp;
	double	   *xb = scratch,
			   *r = scratch + mat,
			   *p = scratch + 2 * mat,
			   *ap = scratch + 3 * mat;
	double		rs[ALS_LOCK];
	bool		active[ALS_LOCK];
	int			n_active = 0;
	double		lt = 0;
	int			nr4 = (nr + 3) / 4 * 4;

	for (int i = 0; i < nr; i++)
		memcpy(xb + i * fp, rows[i].x, sizeof(double) * f);
	if (ng)
		ng->per_visit = (int) Min((int64) ALS_NEXT_BURST,
								  (ng->end - ng->next) / ((int64) (steps + 1) * nr) + 1);

	/* r = b - A x = sum (c - (c - 1) z . x) z - (G + lambda I) x */
	BlockGram(f, fp, gpad, lambda, xb, ap, nr4);
	for (int i = 0; i < nr; i++)
	{
		double	   *ri = r + i * fp;

		if (ng)
			NextGroupStep(ng, f);
		for (int32 k = 0; k < f; k++)
			ri[k] = -ap[i * fp + k];
		lt += ResidualPairs(&rows[i], alpha, xb + i * fp, f, ri);
		memcpy(p + i * fp, ri, sizeof(double) * f);
		rs[i] = Dot(ri, ri, f);
		active[i] = !(rs[i] < ALS_CG_EPS);
		n_active += active[i];
	}
	if (loss)
		*loss = lt;

	for (int32 it = 0; it < steps && n_active > 0; it++)
	{
		BlockGram(f, fp, gpad, lambda, p, ap, nr4);
		for (int i = 0; i < nr; i++)
		{
			double	   *pi = p + i * fp,
					   *api = ap + i * fp,
					   *ri = r + i * fp,
					   *xi = xb + i * fp;
			double		pap,
						step,
						rsnew,
						beta;

			if (!active[i])
				continue;
			if (ng)
				NextGroupStep(ng, f);
			StepPairs(&rows[i], alpha, pi, f, api);
			pap = Dot(pi, api, f);
			if (!(pap > 0))
			{
				active[i] = false;
				n_active--;
				continue;
			}
			step = rs[i] / pap;
			for (int32 k = 0; k < f; k++)
			{
				xi[k] += step * pi[k];
				ri[k] -= step * api[k];
			}
			rsnew = Dot(ri, ri, f);
			if (rsnew < ALS_CG_EPS)
			{
				active[i] = false;
				n_active--;
				continue;
			}
			beta = rsnew / rs[i];
			for (int32 k = 0; k < f; k++)
				pi[k] = ri[k] + beta * pi[k];
			rs[i] = rsnew;
		}
	}
	for (int i = 0; i < nr; i++)
		memcpy(rows[i].x, xb + i * fp, sizeof(double) * f);
}

/* sum over a row's stored pairs of c (1 - s)^2 - s^2, s = z . x */
static ALS_HOT double
PairLoss(int32 f, double alpha, const float *z, const int32 *idx, const double *w, int64 n,
		 const double *x)
{
	double		lt = 0;

	for (int64 e = 0; e < n; e++)
	{
		double		c = 1 + alpha * w[e];
		double		s;

		PrefetchRow(z, idx, e + ALS_PREFETCH, n, f);
		s = DotF(RowF(z, idx, e, f), x, f);

		lt += c * (1 - s) * (1 - s) - s * s;
	}
	return lt;
}

void
als_solve_cg(int32 f, const double *gram, double lambda, double alpha,
			 const float *z, const int32 *idx, const double *w, int64 n,
			 int32 steps, double *x, double *scratch)
{
	CgRow		row = {z, idx, w, n, x};
	size_t		gp = (size_t) PadF(f) * PadF(f);

	PadGram(f, gram, scratch);
	memset(scratch + gp, 0, sizeof(double) * 4 * ALS_LOCK * PadF(f));
	BlockCg(f, scratch, lambda, alpha, &row, 1, steps, scratch + gp, NULL, NULL);
}

/* ---------- training ---------- */

typedef struct HalfRun
{
	const AlsParams *p;
	int32		f;
	const int64 *ptr;			/* the solved side's interactions */
	const int32 *idx;
	const double *w;
	double	   *s;				/* the solved side's factors */
	const double *z;			/* the fixed side's factors */
	const float *zf;			/* the same values as floats (the gathers read these) */
	float	   *sf;				/* the solved side's float copy, kept equal to s */
	const double *gram;			/* Z'Z, f x f (the exact solver) */
	const double *gpad;			/* Z'Z padded to fp x fp (the CG solver) */
	bool		solve;			/* false: only the loss terms */
	double	   *scratch;		/* per worker: ScratchPerWorker doubles */
	double	   *partial;		/* NULL, or per task: the pair loss terms before solving */
	const int32 *task_lo;		/* task t's rows: task_lo[t] .. task_lo[t + 1] - 1 */
	const int32 *task_order;	/* the tasks in the order they are handed out */
	int64		n_tasks;
	ParallelRun *run;
	int			failed;			/* atomic: a row's system was not positive definite */
} HalfRun;

/* the solvers' doubles of a worker's scratch; its pack buffer follows them */
static size_t
SolverScratch(int32 f)
{
	return Max((size_t) f * f + (size_t) f, 4 * (size_t) ALS_LOCK * PadF(f));
}

static size_t
ScratchPerWorker(int32 f)
{
	return SolverScratch(f) + ALS_PACK_FLOATS / 2;
}

/* prefetches the row of pair (*pi, *pe) and moves the cursor to the next pair */
static inline void
PackAhead(int32 f, const float *z, const CgRow *rows, int packed, int *pi, int64 *pe)
{
	PrefetchRow(z, rows[*pi].idx, *pe, rows[*pi].n, f);
	++*pe;
	while (*pi < packed && *pe >= rows[*pi].n)
	{
		++*pi;
		*pe = 0;
	}
}

/*
 * Copies the fixed side's rows of a CG group's pairs into pack, row after
 * row while they fit (a row that does not, and every row after it, keeps
 * gathering from z).  The copy prefetches ALS_PACK_AHEAD pairs ahead across
 * the group's rows, so the misses of the random rows overlap; the solver's
 * passes then read each row's pairs as one contiguous stream.
 */
static ALS_HOT void
PackGroup(int32 f, const float *z, CgRow *rows, int nr, float *pack)
{
	size_t		used = 0;
	int			pi = 0;
	int64		pe = 0;
	int			packed = 0;

	for (int i = 0; i < nr; i++)
	{
		if ((size_t) rows[i].n > (ALS_PACK_FLOATS - used) / (size_t) f)
			break;
		used += (size_t) rows[i].n * f;
		packed = i + 1;
	}
	/* the prefetch cursor (pair pe of row pi) starts ALS_PACK_AHEAD pairs in */
	while (pi < packed && rows[pi].n == 0)
		pi++;
	for (int a = 0; a < ALS_PACK_AHEAD && pi < packed; a++)
		PackAhead(f, z, rows, packed, &pi, &pe);
	used = 0;
	for (int i = 0; i < packed; i++)
	{
		CgRow	   *row = &rows[i];
		float	   *dst = pack + used;

		for (int64 e = 0; e < row->n; e++)
		{
			if (pi < packed)
				PackAhead(f, z, rows, packed, &pi, &pe);
			memcpy(dst + (size_t) e * f, RowF(z, row->idx, e, f), sizeof(float) * f);
		}
		row->z = dst;
		row->idx = NULL;
		used += (size_t) row->n * f;
	}
}

/* a row's work, in units of f (steps + 1) multiply-adds: its Gram product and its pairs' dots and updates */
static inline int64
RowCost(const int64 *ptr, int32 r, int32 f)
{
	return (int64) f + 2 * (ptr[r + 1] - ptr[r]);
}

static int
CmpTaskKey(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Cuts rows 0 .. n_rows - 1 (interactions ptr) into tasks of consecutive
 * rows, each of at most ALS_BLOCK rows and, unless it is one row, of work
 * at most 1/ALS_TASK_SHARE of the side's (RowCost); returns the number of
 * tasks.  With lo, order and sort (the number of tasks + 1, the number, the
 * number of elements) also writes the bounds and the order to run them in:
 * by work, largest first, ties by position.  Depends on the matrix and f
 * only.  Pure.
 */
static int64
PlanTasks(const int64 *ptr, int32 n_rows, int32 f, int32 *lo, int32 *order, int64 *sort)
{
	int64		total = 0,
				target,
				n = 0,
				cost = 0;
	int32		start = 0;

	for (int32 r = 0; r < n_rows; r++)
		total += RowCost(ptr, r, f);
	target = Max(total / ALS_TASK_SHARE, 1);
	for (int32 r = 0; r <= n_rows; r++)
	{
		int64		c = r < n_rows ? RowCost(ptr, r, f) : 0;

		if (r > start && (r == n_rows || r - start == ALS_BLOCK || cost + c > target))
		{
			/* task n's work in the high bits, its number in the low 32 (n < 2^31) */
			if (lo)
			{
				lo[n] = start;
				sort[n] = (int64) ((((uint64) (INT64CONST(0x7FFFFFFF) - Min(cost, INT64CONST(0x7FFFFFFF)))) << 32) |
								   (uint64) n);
			}
			n++;
			start = r;
			cost = 0;
		}
		cost += c;
	}
	if (lo)
	{
		lo[n] = n_rows;
		qsort(sort, (size_t) n, sizeof(int64), CmpTaskKey);
		for (int64 t = 0; t < n; t++)
			order[t] = (int32) (sort[t] & 0xFFFFFFFF);
	}
	return n;
}

/*
 * Rows of the CG group starting at row g0 (< hi): up to ALS_LOCK rows while
 * their gathered rows fit ALS_GROUP_FLOATS (a larger row alone), because
 * every CG step streams all of a group's packed rows, which should stay in
 * L2 between steps.  Which rows share a group changes no bits.
 */
static inline int64
GroupRows(const HalfRun *h, int64 g0, int64 hi)
{
	int64		nr;

	for (nr = 1; nr < ALS_LOCK && g0 + nr < hi; nr++)
		if ((size_t) (h->ptr[g0 + nr + 1] - h->ptr[g0]) > ALS_GROUP_FLOATS / (size_t) h->f)
			break;
	return nr;
}

static void
HalfTask(void *arg, int worker, int64 run_index)
{
	HalfRun    *h = arg;
	int32		f = h->f;
	double	   *scratch = h->scratch + (size_t) worker * ScratchPerWorker(f);
	int32		task = h->task_order[run_index];
	int64		lo = h->task_lo[task],
				hi = h->task_lo[task + 1];
	double		loss = 0;

	if (!h->solve || h->p->cg_steps == 0)
	{
		for (int64 row = lo; row < hi; row++)
		{
			int64		b = h->ptr[row],
						n = h->ptr[row + 1] - b;
			double	   *x = h->s + (size_t) row * f;

			if (h->partial)
				loss += PairLoss(f, h->p->alpha, h->zf, h->idx + b, h->w + b, n, x);
			if (h->solve &&
				!als_solve_exact(f, h->gram, h->p->regularization, h->p->alpha, h->z,
								 h->idx + b, h->w + b, n, x, scratch))
				goto fail;
		}
	}
	else
	{
		NextGroup	ng = {h->zf, h->idx, 0, 0, 0};
		int64		nr = GroupRows(h, lo, hi);

		for (int64 g0 = lo, g1; g0 < hi; g0 = g1)
		{
			CgRow		rows[ALS_LOCK];
			double		lt = 0;
			int64		nr1;

			g1 = g0 + nr;
			nr1 = g1 < hi ? GroupRows(h, g1, hi) : 0;

			for (int i = 0; i < nr; i++)
			{
				int64		b = h->ptr[g0 + i];

				rows[i].z = h->zf;
				rows[i].idx = h->idx + b;
				rows[i].w = h->w + b;
				rows[i].n = h->ptr[g0 + i + 1] - b;
				rows[i].x = h->s + (size_t) (g0 + i) * f;
			}
			PackGroup(f, h->zf, rows, (int) nr, (float *) (scratch + SolverScratch(f)));
			/* the next group's rows that PackGroup will copy (those that fit) */
			ng.next = h->ptr[g1];
			ng.end = h->ptr[g1 + nr1];
			ng.end = Min(ng.end, ng.next + (int64) (ALS_PACK_FLOATS / (size_t) f));
			BlockCg(f, h->gpad, h->p->regularization, h->p->alpha, rows, (int) nr,
					h->p->cg_steps, scratch, h->partial ? &lt : NULL, &ng);
			loss += lt;
			nr = nr1;
		}
	}
	/* the factors are floats, as stored: round, and keep the float copy equal */
	if (h->solve)
		for (int64 k = lo * f; k < hi * f; k++)
		{
			float		v = (float) h->s[k];

			if (!isfinite(v))
				goto fail;
			h->s[k] = v;
			h->sf[k] = v;
		}
	if (h->partial)
		h->partial[task] = loss;
	return;

fail:
	__atomic_store_n(&h->failed, 1, __ATOMIC_RELAXED);
	parallel_stop(h->run);
}

static CoreStatus
SolveHalf(HalfRun *h, int nthreads, const CoreInterrupts *hooks, CoreError *err)
{
	ParallelRun run;
	int64		n_tasks = h->n_tasks;

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

/* the loss of the state (X, Y) whose Gram matrices are gx, gy (see the top) */
static double
AssembleLoss(int32 f, double lambda, const double *gx, const double *gy,
			 const double *partial, int64 n_partial)
{
	double		loss = 0,
				tr = 0;

	for (int32 k = 0; k < f * f; k++)
		loss += gy[k] * gx[k];
	for (int64 b = 0; b < n_partial; b++)
		loss += partial[b];
	for (int32 k = 0; k < f; k++)
		tr += gx[(size_t) k * f + k] + gy[(size_t) k * f + k];
	return loss + lambda * tr;
}

/* the half-iteration solving `items` (true) or users given the other side */
static void
SetHalf(HalfRun *h, const InteractionMatrix *m, AlsModel *model, float *xf, float *yf, bool items)
{
	h->ptr = items ? m->i_ptr : m->u_ptr;
	h->idx = items ? m->i_user : m->u_item;
	h->w = items ? m->i_w : m->u_w;
	h->s = items ? model->y : model->x;
	h->z = items ? model->x : model->y;
	h->sf = items ? yf : xf;
	h->zf = items ? xf : yf;
}

CoreStatus
als_train(const CoreAlloc *a, const InteractionMatrix *m, const AlsParams *p, int nthreads,
		  const CoreInterrupts *hooks, AlsModel **out, CoreError *err)
{
	CoreStatus	st;
	AlsModel   *model;
	int32		f = p->factors;
	int32		fp = PadF(f);
	int			nw = Workers(nthreads);
	int64		item_tasks,
				user_tasks;
	int32	   *item_lo,
			   *item_order,
			   *user_lo,
			   *user_order;
	int64	   *item_sort,
			   *user_sort;
	double	   *gram_y,
			   *gram_x,
			   *gpad,
			   *scratch,
			   *partial;
	float	   *xf,
			   *yf;
	double		last_seconds = 0;
	HalfRun		h;

	if ((st = als_check_params(p, err)) != CORE_OK)
		return st;
	if (m->i_ptr == NULL)
		return core_error(err, CORE_INVALID, "als needs the item-major copy of the matrix");
	for (int64 e = 0; e < m->nnz; e++)
		if (!(m->u_w[e] > 0) || !isfinite(m->u_w[e]))
			return core_error(err, CORE_INVALID, "interaction weights must be finite and > 0");

	item_tasks = PlanTasks(m->i_ptr, m->n_items, f, NULL, NULL, NULL);
	user_tasks = PlanTasks(m->u_ptr, m->n_users, f, NULL, NULL, NULL);
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
		(gram_y = core_array(a, (size_t) f * f, sizeof(double), false, err)) == NULL ||
		(gram_x = core_array(a, (size_t) f * f, sizeof(double), false, err)) == NULL ||
		(gpad = core_array(a, (size_t) fp * fp, sizeof(double), false, err)) == NULL ||
		(scratch = core_array(a, (size_t) nw * ScratchPerWorker(f), sizeof(double), true, err)) == NULL ||
		(partial = core_array(a, Max(item_tasks, 1), sizeof(double), true, err)) == NULL ||
		(item_lo = core_array(a, item_tasks + 1, sizeof(int32), false, err)) == NULL ||
		(item_order = core_array(a, Max(item_tasks, 1), sizeof(int32), false, err)) == NULL ||
		(item_sort = core_array(a, Max(item_tasks, 1), sizeof(int64), false, err)) == NULL ||
		(user_lo = core_array(a, user_tasks + 1, sizeof(int32), false, err)) == NULL ||
		(user_order = core_array(a, Max(user_tasks, 1), sizeof(int32), false, err)) == NULL ||
		(user_sort = core_array(a, Max(user_tasks, 1), sizeof(int64), false, err)) == NULL ||
		(xf = core_array(a, (size_t) m->n_users * f, sizeof(float), false, err)) == NULL ||
		(yf = core_array(a, (size_t) m->n_items * f, sizeof(float), false, err)) == NULL)
		return err->status;

	for (int32 u = 0; u < m->n_users; u++)
		for (int32 k = 0; k < f; k++)
		{
			size_t		at = (size_t) u * f + k;

			xf[at] = (float) als_initial_factor(p->seed, false, m->user_ids[u], k);
			model->x[at] = xf[at];
		}
	for (int32 i = 0; i < m->n_items; i++)
		for (int32 k = 0; k < f; k++)
		{
			size_t		at = (size_t) i * f + k;

			yf[at] = (float) als_initial_factor(p->seed, true, m->item_ids[i], k);
			model->y[at] = yf[at];
		}
	PlanTasks(m->i_ptr, m->n_items, f, item_lo, item_order, item_sort);
	PlanTasks(m->u_ptr, m->n_users, f, user_lo, user_order, user_sort);
	core_release(a, item_sort);
	core_release(a, user_sort);
	core_check_interrupts(hooks);

	/*
	 * Iteration `it`'s loss needs s = x_u . y_i over every stored pair at
	 * its end; the next item half computes exactly those in its initial
	 * residual (CG) or in a pass before solving (exact), so the loss of
	 * iteration it is assembled, and reported, after the item half of it + 1;
	 * the last iteration's by a pass of its own.
	 */
	memset(&h, 0, sizeof(h));
	h.p = p;
	h.f = f;
	h.gram = gram_x;
	h.gpad = gpad;
	h.scratch = scratch;
	als_gram(model->x, m->n_users, f, gram_x, hooks);
	for (int32 it = 0; it <= p->iterations; it++)
	{
		struct timespec t0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		/* items given the users (X'X from the end of the last iteration) */
		SetHalf(&h, m, model, xf, yf, true);
		h.task_lo = item_lo;
		h.task_order = item_order;
		h.n_tasks = item_tasks;
		h.gram = gram_x;
		PadGram(f, gram_x, gpad);
		h.solve = it < p->iterations;
		h.partial = it > 0 ? partial : NULL;
		if ((st = SolveHalf(&h, nthreads, hooks, err)) != CORE_OK)
			return st;
		if (it > 0)
		{
			double		loss = AssembleLoss(f, p->regularization, gram_x, gram_y, partial, item_tasks);

			if (!isfinite(loss))
				return core_error(err, CORE_RANGE, "als loss is not finite");
			model->loss[it - 1] = loss;
			if (p->progress && p->progress->iteration)
				p->progress->iteration(p->progress->arg, it, loss, last_seconds);
		}
		if (it == p->iterations)
			break;
		/* users given the items */
		als_gram(model->y, m->n_items, f, gram_y, hooks);
		SetHalf(&h, m, model, xf, yf, false);
		h.task_lo = user_lo;
		h.task_order = user_order;
		h.n_tasks = user_tasks;
		h.gram = gram_y;
		PadGram(f, gram_y, gpad);
		h.solve = true;
		h.partial = NULL;
		if ((st = SolveHalf(&h, nthreads, hooks, err)) != CORE_OK)
			return st;
		/* X'X: the loss of this iteration and the next item half */
		als_gram(model->x, m->n_users, f, gram_x, hooks);
		last_seconds = Seconds(&t0);
	}
	core_release(a, gram_y);
	core_release(a, gram_x);
	core_release(a, gpad);
	core_release(a, scratch);
	core_release(a, partial);
	core_release(a, item_lo);
	core_release(a, item_order);
	core_release(a, user_lo);
	core_release(a, user_order);
	core_release(a, xf);
	core_release(a, yf);
	*out = model;
	return CORE_OK;
}
