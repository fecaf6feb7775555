/*
 * ease_core.c
 *	  EASE's dense linear algebra: the Gram matrix of the interactions, a
 *	  tiled Cholesky factorisation and a tiled inverse, over serial BLAS.
 *
 * Design
 * ------
 * The matrix is the caller's one n x n allocation, column-major, of which
 * only the lower triangle is used; nothing here reads or writes the strict
 * upper triangle.  It is cut into square tiles of `tile` rows and columns
 * (the last row/column of tiles is smaller).  Every step below is a set of
 * tasks for parallel.c's runner, each task writing one output tile (or one
 * Gram column) in a fixed order of operations, so the result is bit-for-bit
 * the same whatever the thread count and whichever thread ran a task.  The
 * main thread is worker 0 of every run and polls the interrupt hooks
 * between tasks; between runs (the serial steps) it polls itself.  Every
 * BLAS/LAPACK call works on a tile: at most `tile` rows and columns and an
 * inner dimension of at most `inner`, so no single call runs for more than a
 * few milliseconds and no task for more than a few dozen (one tile row of
 * products at n = 10,000).
 *
 * ease_gram: one task per item (column of G): for each user of the item,
 * in ascending order, add w(u,i) w(u,j) for the user's items j >= i.
 *
 * ease_factor: right-looking Cholesky, for each tile column k: dpotrf of the
 * diagonal tile (main thread), then one run of dtrsm tasks for the tiles
 * below it, then one run of dsyrk/dgemm tasks, one per trailing tile.
 *
 * ease_invert, after LAPACK's dpotri = dtrtri + dlauum, by tiles:
 *  1. X = L^-1, tile columns from the last to the first:
 *       X_IJ = -(X_II L_IJ + sum_{J<K<I} X_IK L_KJ) L_JJ^-1,
 *     tasks for I > J, reading the column's original L_KJ from a copy of the
 *     panel (the tasks overwrite it) and L_JJ from its place, while a further
 *     task inverts L_JJ into a scratch tile that is copied back after the run.
 *  2. P = X' X, tile rows from the first to the last:
 *       P_IJ = X_II' X_IJ + sum_{K>I} X_KI' X_KJ   (J <= I),
 *     which reads only tile rows >= I, so row I can be overwritten by its
 *     tasks; the diagonal tile (which the others read as X_II) again goes
 *     to a scratch tile first.
 * Scratch: one panel of n x tile doubles and one tile, a few percent of the
 * matrix at n = 5,000 and beyond.  The flops are n^3 / 3 for each of the
 * three stages, almost all in dgemm on tiles.
 *
 * Helper threads and the serial BLAS
 * ----------------------------------
 * OpenBLAS built without threads (Debian's libopenblas0-serial, which the
 * Makefile links) claims its packing buffers from a global pool without a
 * lock unless it was built with USE_LOCKING=1, and Debian's 0.3.21 was not:
 * two threads in level-3 calls at once can be handed the same buffer and
 * compute wrong results (test/bench/ease_core.sh shows thousands of them).
 * So the BLAS tile tasks run on the main thread only, unless the library
 * is a threaded build (openblas_get_parallel() != 0), which locks its pool
 * itself.  The Gram matrix and the neighbour selection (no BLAS) use every
 * thread.  One thread is already 2.4-3.2x faster than numpy's inverse on two
 * (the README's figures); the tiles still bound every call for interrupts.
 *
 * Plain C (core.h): no PostgreSQL calls; memory from the caller.
 */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "ease_core.h"
#include "parallel.h"

StaticAssertDecl(sizeof(blasint) >= sizeof(int32), "blasint must hold an int32 matrix size");

/* LAPACK (Fortran interface; the trailing lengths of the character arguments) */
extern void dpotrf_(const char *uplo, const blasint *n, double *a, const blasint *lda,
					blasint *info, size_t uplo_len);
extern void dtrtri_(const char *uplo, const char *diag, const blasint *n, double *a,
					const blasint *lda, blasint *info, size_t uplo_len, size_t diag_len);
extern void dlauum_(const char *uplo, const blasint *n, double *a, const blasint *lda,
					blasint *info, size_t uplo_len);

static int32 tile_size = EASE_TILE;
static int32 inner_size = EASE_INNER;

void
ease_set_tiling(int32 tile, int32 inner)
{
	tile_size = tile > 0 ? tile : EASE_TILE;
	inner_size = inner > 0 ? inner : EASE_INNER;
}

bool
ease_matrix_bytes(int32 n, size_t *bytes)
{
	if (n < 0 || (uint64) n * (uint64) n > SIZE_MAX / sizeof(double))
		return false;
	*bytes = (size_t) n * (size_t) n * sizeof(double);
	return true;
}

size_t
ease_invert_scratch_bytes(int32 n)
{
	int64		nt;
	size_t		doubles;

	if (n <= 0)
		return 0;
	nt = ((int64) n + tile_size - 1) / tile_size;
	doubles = (size_t) tile_size * tile_size;	/* the diagonal tile */
	if (nt > 2)					/* the panel copy */
		doubles += (size_t) ((nt - 1) * tile_size - tile_size) * tile_size;
	return doubles * sizeof(double);
}

/* whether helper threads may call the BLAS at once (see the top of the file) */
bool
ease_blas_concurrent(void)
{
	return openblas_get_parallel() != 0;
}

/* ---------- tiles ---------- */

typedef struct Tiles
{
	double	   *a;
	int32		n;				/* matrix size; also every leading dimension */
	int32		t;				/* tile size */
	int32		nt;				/* tiles per row/column */
	int32		inner;			/* longest inner dimension of one call */
} Tiles;

static void
TilesInit(Tiles *tl, double *a, int32 n)
{
	tl->a = a;
	tl->n = n;
	tl->t = tile_size;
	tl->nt = n == 0 ? 0 : (int32) (((int64) n + tile_size - 1) / tile_size);
	tl->inner = inner_size;
}

/* element (r, c) */
static inline double *
At(const Tiles *tl, int64 r, int64 c)
{
	return tl->a + (size_t) c * tl->n + (size_t) r;
}

/* tile (i, j) and the first row/column of tile i */
static inline double *
Tile(const Tiles *tl, int32 i, int32 j)
{
	return At(tl, (int64) i * tl->t, (int64) j * tl->t);
}

static inline int64
Start(const Tiles *tl, int32 i)
{
	return (int64) i * tl->t;
}

static inline blasint
Dim(const Tiles *tl, int32 i)
{
	return (blasint) Min((int64) tl->t, tl->n - Start(tl, i));
}

/* copy the lower triangle of an m x m tile */
static void
CopyLower(const double *src, blasint lds, double *dst, blasint ldd, blasint m)
{
	for (blasint c = 0; c < m; c++)
		memcpy(dst + (size_t) c * ldd + c, src + (size_t) c * lds + c, (m - c) * sizeof(double));
}

/* whether an m x k block (column-major, leading dimension ld) is all finite */
static bool
AllFinite(const double *x, blasint ld, blasint m, blasint k, bool lower)
{
	for (blasint c = 0; c < k; c++)
		for (blasint r = lower ? c : 0; r < m; r++)
			if (!isfinite(x[(size_t) c * ld + r]))
				return false;
	return true;
}

static int
Workers(int nthreads)
{
	return nthreads > 1 && ease_blas_concurrent() ? nthreads : 1;
}

/* run n_tasks of fn(arg) on up to n_workers threads, hooks polled between tasks */
static void
RunTasks(void (*fn) (void *, int, int64), void *arg, int64 n_tasks, int n_workers,
		 const CoreInterrupts *hooks)
{
	ParallelRun run;

	if (n_tasks <= 0)
		return;
	memset(&run, 0, sizeof(run));
	run.n_tasks = n_tasks;
	run.n_workers = (int) Min((int64) n_workers, n_tasks);
	run.fn = fn;
	run.arg = arg;
	parallel_run(&run, hooks);
}

/* ---------- ease_select_items ---------- */

typedef struct ItemDeg
{
	int64		deg;
	int32		idx;
} ItemDeg;

/* more users first, then the smaller index */
static int
CompareItemDeg(const void *pa, const void *pb)
{
	const ItemDeg *a = (const ItemDeg *) pa,
			   *b = (const ItemDeg *) pb;

	if (a->deg != b->deg)
		return a->deg > b->deg ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

CoreStatus
ease_select_items(const CoreAlloc *a, const InteractionMatrix *m, int32 max_items,
				  int32 **sub, int32 *n_sub, CoreError *err)
{
	int32		n_items = m->n_items;
	int32	   *s;
	int32		n = 0;

	s = core_array(a, n_items, sizeof(int32), false, err);
	if (s == NULL)
		return err->status;
	if (max_items <= 0 || max_items >= n_items)
	{
		for (int32 i = 0; i < n_items; i++)
			s[i] = i;
		n = n_items;
	}
	else
	{
		ItemDeg    *d = core_array(a, n_items, sizeof(ItemDeg), true, err);

		if (d == NULL)
			return err->status;
		for (int32 i = 0; i < n_items; i++)
			d[i].idx = i;
		if (m->i_ptr != NULL)
			for (int32 i = 0; i < n_items; i++)
				d[i].deg = m->i_ptr[i + 1] - m->i_ptr[i];
		else
			for (int64 p = 0; p < m->nnz; p++)
				d[m->u_item[p]].deg++;
		qsort(d, n_items, sizeof(ItemDeg), CompareItemDeg);
		for (int32 i = 0; i < n_items; i++)
			s[i] = -1;
		for (int32 r = 0; r < max_items; r++)
			s[d[r].idx] = 0;
		core_release(a, d);
		for (int32 i = 0; i < n_items; i++)
			if (s[i] == 0)
				s[i] = n++;
	}
	*sub = s;
	*n_sub = n;
	return CORE_OK;
}

/* ---------- ease_gram ---------- */

typedef struct GramTask
{
	const InteractionMatrix *m;
	const int32 *sub;
	int32		n;
	double		lambda;
	double	   *a;
	int64		bad;			/* atomic: smallest c * n + r with G[r][c] not finite */
} GramTask;

/* first position >= lo of item i in a user's ascending list [lo, hi) */
static int64
FindItem(const int32 *items, int64 lo, int64 hi, int32 i)
{
	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (items[mid] < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* task: column sub[i] of G + lambda I, rows >= the diagonal; any thread */
static void
GramColumn(void *arg, int worker, int64 task)
{
	GramTask   *g = (GramTask *) arg;
	const InteractionMatrix *m = g->m;
	int32		i = (int32) task;
	int32		c = g->sub[i];
	double	   *col;

	(void) worker;
	if (c < 0)
		return;
	col = g->a + (size_t) c * g->n;
	memset(col + c, 0, (size_t) (g->n - c) * sizeof(double));
	for (int64 p = m->i_ptr[i]; p < m->i_ptr[i + 1]; p++)
	{
		int32		u = m->i_user[p];
		double		wi = m->i_w[p];
		int64		hi = m->u_ptr[u + 1];

		for (int64 q = FindItem(m->u_item, m->u_ptr[u], hi, i); q < hi; q++)
		{
			int32		r = g->sub[m->u_item[q]];

			if (r >= 0)
				col[r] += wi * m->u_w[q];
		}
	}
	col[c] += g->lambda;
	for (int32 r = c; r < g->n; r++)
		if (!isfinite(col[r]))
		{
			int64		key = (int64) c * g->n + r,
						cur = __atomic_load_n(&g->bad, __ATOMIC_RELAXED);

			while (key < cur &&
				   !__atomic_compare_exchange_n(&g->bad, &cur, key, false,
												__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				;
			break;
		}
}

CoreStatus
ease_gram(const InteractionMatrix *m, const int32 *sub, int32 n_sub, double lambda,
		  double *a, int nthreads, const CoreInterrupts *hooks, CoreError *err)
{
	GramTask	g;
	int32		seen = 0;

	if (!(lambda >= 0) || isinf(lambda))
		return core_error(err, CORE_INVALID, "ease lambda must be finite and not negative");
	if (m->i_ptr == NULL)
		return core_error(err, CORE_INVALID, "the ease gram matrix needs the item-major interactions");
	for (int32 i = 0; i < m->n_items; i++)
	{
		if (sub[i] >= n_sub || (sub[i] >= 0 && sub[i] != seen))
			return core_error(err, CORE_INVALID, "the ease item map is not in index order");
		if (sub[i] >= 0)
			seen++;
	}
	if (seen != n_sub)
		return core_error(err, CORE_INVALID, "the ease item map covers %d items, not %d",
						  seen, n_sub);

	g.m = m;
	g.sub = sub;
	g.n = n_sub;
	g.lambda = lambda;
	g.a = a;
	g.bad = PG_INT64_MAX;
	RunTasks(GramColumn, &g, m->n_items, Max(nthreads, 1), hooks);
	if (g.bad != PG_INT64_MAX)
	{
		int32		c = (int32) (g.bad / n_sub),
					r = (int32) (g.bad % n_sub);
		int64		id_c = 0,
					id_r = 0;

		for (int32 i = 0; i < m->n_items; i++)
		{
			if (sub[i] == c)
				id_c = m->item_ids[i];
			if (sub[i] == r)
				id_r = m->item_ids[i];
		}
		core_error(err, CORE_RANGE, "ease gram matrix is out of range");
		if (id_r == id_c)
			return core_error_detail(err, "The sum of w(u,i)^2 over the users of item "
									 INT64_FORMAT " is not finite.", id_r);
		return core_error_detail(err, "The sum of w(u,i)*w(u,j) over the users of items "
								 INT64_FORMAT " and " INT64_FORMAT " is not finite.",
								 id_r, id_c);
	}
	return CORE_OK;
}

/* ---------- ease_factor ---------- */

typedef struct FactorStep
{
	Tiles	   *tl;
	int32		k;				/* the tile column being factored */
} FactorStep;

/* task: tile (k+1+task, k) := tile * L_kk^-T; any thread */
static void
PanelSolve(void *arg, int worker, int64 task)
{
	FactorStep *s = (FactorStep *) arg;
	Tiles	   *tl = s->tl;
	int32		i = s->k + 1 + (int32) task;

	(void) worker;
	cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
				Dim(tl, i), Dim(tl, s->k), 1.0, Tile(tl, s->k, s->k), tl->n,
				Tile(tl, i, s->k), tl->n);
}

/* task: trailing tile (i, j), k < j <= i, -= L_ik L_jk'; any thread */
static void
TrailingUpdate(void *arg, int worker, int64 task)
{
	FactorStep *s = (FactorStep *) arg;
	Tiles	   *tl = s->tl;
	int32		k = s->k,
				i,
				j = k + 1;

	(void) worker;
	/* tasks column by column: (j, j), (j+1, j), ..., then column j + 1 */
	while (task >= tl->nt - j)
	{
		task -= tl->nt - j;
		j++;
	}
	i = j + (int32) task;
	if (i == j)
		cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, Dim(tl, j), Dim(tl, k),
					-1.0, Tile(tl, j, k), tl->n, 1.0, Tile(tl, j, j), tl->n);
	else
		cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, Dim(tl, i), Dim(tl, j), Dim(tl, k),
					-1.0, Tile(tl, i, k), tl->n, Tile(tl, j, k), tl->n,
					1.0, Tile(tl, i, j), tl->n);
}

/* dpotrf of diagonal tile k, its pivots checked; main thread */
static CoreStatus
FactorDiagonal(Tiles *tl, int32 k, CoreError *err)
{
	double	   *d = Tile(tl, k, k);
	blasint		m = Dim(tl, k),
				lda = tl->n,
				info = 0,
				bad = -1;

	dpotrf_("L", &m, d, &lda, &info, 1);
	if (info > 0)
		bad = info - 1;
	else
		for (blasint j = 0; j < m && bad < 0; j++)
			if (!(d[(size_t) j * lda + j] > 0) || isinf(d[(size_t) j * lda + j]))
				bad = j;
	if (bad >= 0)
	{
		core_error(err, CORE_RANGE, "matrix is not positive definite");
		core_error_detail(err, "Cholesky pivot " INT64_FORMAT " of %d is %g.",
						  Start(tl, k) + bad + 1, tl->n, d[(size_t) bad * lda + bad]);
		return core_error_hint(err, "A larger ease_lambda makes the matrix better conditioned.");
	}
	return CORE_OK;
}

CoreStatus
ease_factor(const CoreAlloc *alloc, double *a, int32 n, int nthreads,
			const CoreInterrupts *hooks, CoreError *err)
{
	Tiles		tl;
	int			workers = Workers(nthreads);

	(void) alloc;
	if (n < 0)
		return core_error(err, CORE_INVALID, "matrix size %d is negative", n);
	TilesInit(&tl, a, n);
	for (int32 k = 0; k < tl.nt; k++)
	{
		FactorStep	s = {&tl, k};
		int64		below = tl.nt - k - 1;

		core_check_interrupts(hooks);
		if (FactorDiagonal(&tl, k, err) != CORE_OK)
			return err->status;
		RunTasks(PanelSolve, &s, below, workers, hooks);
		RunTasks(TrailingUpdate, &s, below * (below + 1) / 2, workers, hooks);
	}
	return CORE_OK;
}

/* ---------- ease_invert ---------- */

typedef struct InvertStep
{
	Tiles	   *tl;
	int32		j;				/* phase 1: the tile column; phase 2: the tile row */
	double	   *w;				/* phase 1: copy of column j's L_KJ, rows [w0, ...) */
	int64		w0;
	blasint		ldw;
	double	   *d;				/* the diagonal tile's result, tile x tile */
	int			failed;			/* atomic: 1 singular diagonal, 2 not finite */
} InvertStep;

static void
Fail(InvertStep *s, int code)
{
	__atomic_store_n(&s->failed, code, __ATOMIC_RELAXED);
}

/* phase 1, diagonal task: d := L_jj^-1; any thread */
static void
InvertDiagonal(InvertStep *s)
{
	Tiles	   *tl = s->tl;
	blasint		m = Dim(tl, s->j),
				ldd = tl->t,
				info = 0;

	CopyLower(Tile(tl, s->j, s->j), tl->n, s->d, ldd, m);
	dtrtri_("L", "N", &m, s->d, &ldd, &info, 1, 1);
	if (info != 0)
		Fail(s, 1);
}

/*
 * phase 1 task: tile (i, j) := -(X_ii L_ij + sum_{j<K<i} X_iK L_Kj) L_jj^-1,
 * the largest (i = nt - 1) first, the diagonal inverse last; any thread
 */
static void
InvertColumnTile(void *arg, int worker, int64 task)
{
	InvertStep *s = (InvertStep *) arg;
	Tiles	   *tl = s->tl;
	int32		j = s->j,
				i = tl->nt - 1 - (int32) task;
	double	   *c;
	blasint		mi,
				mj;

	(void) worker;
	if (i == j)
	{
		InvertDiagonal(s);
		return;
	}
	c = Tile(tl, i, j);
	mi = Dim(tl, i);
	mj = Dim(tl, j);
	cblas_dtrmm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, mi, mj,
				1.0, Tile(tl, i, i), tl->n, c, tl->n);
	for (int64 k0 = Start(tl, j + 1); k0 < Start(tl, i); k0 += tl->inner)
	{
		blasint		kk = (blasint) Min((int64) tl->inner, Start(tl, i) - k0);

		cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, mi, mj, kk,
					1.0, At(tl, Start(tl, i), k0), tl->n, s->w + (k0 - s->w0), s->ldw,
					1.0, c, tl->n);
	}
	cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, mi, mj,
				-1.0, Tile(tl, j, j), tl->n, c, tl->n);
}

/* phase 2, diagonal task: d := X_ii' X_ii + sum_{K>i} X_Ki' X_Ki; any thread */
static void
ProductDiagonal(InvertStep *s)
{
	Tiles	   *tl = s->tl;
	int32		i = s->j;
	blasint		m = Dim(tl, i),
				ldd = tl->t,
				info = 0;

	CopyLower(Tile(tl, i, i), tl->n, s->d, ldd, m);
	dlauum_("L", &m, s->d, &ldd, &info, 1);
	for (int64 k0 = Start(tl, i + 1); k0 < tl->n; k0 += tl->inner)
	{
		blasint		kk = (blasint) Min((int64) tl->inner, tl->n - k0);

		cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, m, kk,
					1.0, At(tl, k0, Start(tl, i)), tl->n, 1.0, s->d, ldd);
	}
	if (!AllFinite(s->d, ldd, m, m, true))
		Fail(s, 2);
}

/*
 * phase 2 task: tile (i, j), j < i, := X_ii' X_ij + sum_{K>i} X_Ki' X_Kj,
 * the diagonal tile (into d) last; any thread
 */
static void
ProductRowTile(void *arg, int worker, int64 task)
{
	InvertStep *s = (InvertStep *) arg;
	Tiles	   *tl = s->tl;
	int32		i = s->j,
				j = (int32) task;
	double	   *c;
	blasint		mi,
				mj;

	(void) worker;
	if (j == i)
	{
		ProductDiagonal(s);
		return;
	}
	c = Tile(tl, i, j);
	mi = Dim(tl, i);
	mj = Dim(tl, j);
	cblas_dtrmm(CblasColMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, mi, mj,
				1.0, Tile(tl, i, i), tl->n, c, tl->n);
	for (int64 k0 = Start(tl, i + 1); k0 < tl->n; k0 += tl->inner)
	{
		blasint		kk = (blasint) Min((int64) tl->inner, tl->n - k0);

		cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, mi, mj, kk,
					1.0, At(tl, k0, Start(tl, i)), tl->n, At(tl, k0, Start(tl, j)), tl->n,
					1.0, c, tl->n);
	}
	if (!AllFinite(c, tl->n, mi, mj, false))
		Fail(s, 2);
}

/* X = L^-1 in place, tile column by tile column from the last; main thread */
static CoreStatus
InvertTriangle(Tiles *tl, InvertStep *s, int workers, const CoreInterrupts *hooks,
			   CoreError *err)
{
	for (int32 j = tl->nt - 1; j >= 0; j--)
	{
		int64		w_end = Start(tl, tl->nt - 1);	/* the tasks' own tiles are not copied */

		core_check_interrupts(hooks);
		s->j = j;
		s->w0 = Start(tl, j + 1);
		s->ldw = (blasint) Max(w_end - s->w0, 1);
		for (int64 c = Start(tl, j); c < Start(tl, j) + Dim(tl, j) && s->w0 < w_end; c++)
			memcpy(s->w + (size_t) (c - Start(tl, j)) * s->ldw, At(tl, s->w0, c),
				   (size_t) (w_end - s->w0) * sizeof(double));
		RunTasks(InvertColumnTile, s, tl->nt - j, workers, hooks);
		if (s->failed)
		{
			core_error(err, CORE_RANGE, "matrix is not positive definite");
			return core_error_detail(err, "A diagonal element of its Cholesky factor is zero.");
		}
		CopyLower(s->d, tl->t, Tile(tl, j, j), tl->n, Dim(tl, j));
	}
	return CORE_OK;
}

/* P = X' X in place, tile row by tile row from the first; main thread */
static CoreStatus
MultiplyTriangle(Tiles *tl, InvertStep *s, int workers, const CoreInterrupts *hooks,
				 CoreError *err)
{
	for (int32 i = 0; i < tl->nt; i++)
	{
		core_check_interrupts(hooks);
		s->j = i;
		RunTasks(ProductRowTile, s, i + 1, workers, hooks);
		if (s->failed)
		{
			core_error(err, CORE_RANGE, "inverse of the matrix is out of range");
			return core_error_detail(err, "The matrix is too close to singular to invert in double precision.");
		}
		CopyLower(s->d, tl->t, Tile(tl, i, i), tl->n, Dim(tl, i));
	}
	return CORE_OK;
}

CoreStatus
ease_invert(const CoreAlloc *alloc, double *a, int32 n, int nthreads,
			const CoreInterrupts *hooks, CoreError *err)
{
	Tiles		tl;
	InvertStep	s;
	int			workers = Workers(nthreads);

	if (n < 0)
		return core_error(err, CORE_INVALID, "matrix size %d is negative", n);
	if (n == 0)
		return CORE_OK;
	TilesInit(&tl, a, n);
	memset(&s, 0, sizeof(s));
	s.tl = &tl;
	s.d = core_array(alloc, (size_t) tl.t * tl.t, sizeof(double), false, err);
	if (s.d == NULL)
		return err->status;
	if (tl.nt > 2)
	{
		s.w = core_array(alloc, (size_t) (Start(&tl, tl.nt - 1) - tl.t) * tl.t,
						 sizeof(double), false, err);
		if (s.w == NULL)
			return err->status;
	}
	if (InvertTriangle(&tl, &s, workers, hooks, err) != CORE_OK ||
		MultiplyTriangle(&tl, &s, workers, hooks, err) != CORE_OK)
		return err->status;
	core_release(alloc, s.w);
	core_release(alloc, s.d);
	return CORE_OK;
}
