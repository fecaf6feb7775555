/*
 * ease_core.h
 *	  The dense linear algebra of EASE (Steck 2019) on plain C arrays.
 *
 * EASE's item-item weights are B = I - P diagMat(1 / diag(P)) with
 * P = (G + lambda I)^-1 and G = X'X, i.e. B[i][j] = -P[i][j] / P[j][j]
 * (i != j).  simcore.c selects each item's neighbours from P; this unit
 * builds G and inverts it in place:
 *
 *   ease_select_items  which items enter the dense matrix (max_items)
 *   ease_gram          lower triangle of G + lambda I, from the sparse matrix
 *   ease_factor        in-place Cholesky G + lambda I = L L'  (tiled)
 *   ease_invert        in-place L -> P = (L L')^-1            (tiled)
 *
 * The dense matrix is n x n doubles, column-major (element (r, c) at
 * a[c * n + r]), of which only the lower triangle (r >= c) is read or
 * written by these functions; the strict upper triangle is never touched,
 * so the caller may keep data there.  Its memory is the caller's (one huge
 * allocation); ease_invert needs a further (n + tile) * tile doubles from
 * the CoreAlloc, so the peak stays within a few percent of the one n x n
 * matrix (5 % at n = 5,000, 2.5 % at 10,000).
 *
 * Tiles are spread over up to nthreads threads through parallel.c; helper
 * threads call only the serial BLAS/LAPACK on tiles, never the allocator or
 * the hooks.  Every BLAS call is on a tile (at most EASE_TILE rows/columns
 * and an inner dimension of at most EASE_INNER), so the main thread polls
 * hooks between tasks of at most a few dozen milliseconds at n = 10,000.
 * Results do not depend on nthreads: each output tile (Gram column) is
 * computed by one task, in a fixed order of operations.
 *
 * Helper threads call BLAS only where concurrent calls are safe
 * (ease_blas_concurrent; ease_core.c explains how the serial OpenBLAS is
 * made so); otherwise the factor and the inverse run on the main thread
 * alone, with the same result.
 */
#ifndef MEDIA_RECO_EASE_CORE_H
#define MEDIA_RECO_EASE_CORE_H

#include "core.h"

#include "simcore.h"

/* tile rows/columns of one BLAS call, and its longest inner dimension */
#define EASE_TILE	256
#define EASE_INNER	256

/* The bytes of the dense n x n matrix (false on overflow); pure. */
extern bool ease_matrix_bytes(int32 n, size_t *bytes);

/*
 * The items EASE covers.  max_items <= 0 or >= n_items: all of them.
 * Otherwise the max_items with the most users (deg = |U(i)|), ties by the
 * smaller index (= smaller id).  *sub (from a, [m->n_items]) maps an item
 * index to its row/column in the dense matrix, in index order, or -1;
 * *n_sub is the dense size.  Main thread only.
 */
extern CoreStatus ease_select_items(const CoreAlloc *a, const InteractionMatrix *m, int32 max_items,
									int32 **sub, int32 *n_sub, CoreError *err);

/*
 * a[n_sub * n_sub] (caller's memory): lower triangle := G + lambda * I over
 * the items with sub[i] >= 0, G[r][c] = sum over users of w(u,r) w(u,c),
 * using m's user-major and item-major copies (weights as stored in m).
 * lambda must be finite and >= 0 (CORE_INVALID).  One task per column on up
 * to nthreads threads, users summed in ascending order; polls hooks between
 * tasks.  CORE_RANGE when a sum is not finite (overflow).
 */
extern CoreStatus ease_gram(const InteractionMatrix *m, const int32 *sub, int32 n_sub, double lambda,
							double *a, int nthreads, const CoreInterrupts *hooks, CoreError *err);

/*
 * In-place tiled Cholesky of the lower triangle of a (n x n): on return the
 * lower triangle is L with a = L L'.  CORE_RANGE ("matrix is not positive
 * definite") when a pivot is not positive and finite.  Main thread only
 * (helpers run tiles); polls hooks between tiles.
 */
extern CoreStatus ease_factor(const CoreAlloc *alloc, double *a, int32 n, int nthreads,
							  const CoreInterrupts *hooks, CoreError *err);

/*
 * In place: lower triangle L (from ease_factor) -> lower triangle of
 * P = (L L')^-1 (tiled triangular inverse, then P = L^-T L^-1).  Scratch
 * of O(n * tile) doubles from alloc.  Main thread only; polls hooks.
 */
extern CoreStatus ease_invert(const CoreAlloc *alloc, double *a, int32 n, int nthreads,
							  const CoreInterrupts *hooks, CoreError *err);

/*
 * Whether helper threads may call BLAS at once: a threaded OpenBLAS build,
 * or the serial one with ease_core.c's pool lock in effect (checked with a
 * probe call the first time).  Main thread only.
 */
extern bool ease_blas_concurrent(void);

/*
 * Tile size and longest inner dimension of later calls (0: EASE_TILE,
 * EASE_INNER); for tests and benchmarks.  Main thread, between calls.
 */
extern void ease_set_tiling(int32 tile, int32 inner);

/* P[r][c] from the lower triangle, either order of r and c; any thread. */
static inline double
ease_p(const double *a, int32 n, int32 r, int32 c)
{
	return r >= c ? a[(size_t) c * n + r] : a[(size_t) r * n + c];
}

#endif
