/*
 * test_ease.c
 *	  EASE's dense linear algebra (ease_core.c) against references written
 *	  here: a Gauss-Jordan inverse in long double, L L' multiplied out, and
 *	  X'X summed from the raw rows; the item selection's ties, the errors,
 *	  thread-count independence (bit for bit), interrupts, and memory.
 */
#include "unit.h"

#include <stdlib.h>

#include "ease_core.h"
#include "simcore.h"

#define SENTINEL 1234.5			/* planted in the strict upper triangle */

/* ---------- test matrices and references ---------- */

/*
 * G + lambda I of a random sparse 0/1-and-weights matrix X (users x n),
 * like EASE's input: symmetric positive definite, condition up to ~1e4.
 * Full symmetric in `full`; lower triangle in `a` with SENTINEL above.
 */
static void
RandomSpd(int n, uint64 seed, double *full, double *a)
{
	int			users = n + 5,
				per_user = Min(n, 3 + n / 15);
	double	   *row = calloc(n, sizeof(double));

	memset(full, 0, sizeof(double) * n * n);
	for (int u = 0; u < users; u++)
	{
		memset(row, 0, sizeof(double) * n);
		for (int t = 0; t < per_user; t++)
			row[unit_rand(&seed) % (uint64) n] = 0.5 + (double) (unit_rand(&seed) % 4) * 0.5;
		for (int c = 0; c < n; c++)
			if (row[c] != 0)
				for (int r = 0; r < n; r++)
					full[(size_t) c * n + r] += row[r] * row[c];
	}
	for (int i = 0; i < n; i++)
		full[(size_t) i * n + i] += 0.5;
	for (int c = 0; c < n; c++)
		for (int r = 0; r < n; r++)
			a[(size_t) c * n + r] = r >= c ? full[(size_t) c * n + r] : SENTINEL;
	free(row);
}

/* inverse of the symmetric full[n x n] by Gauss-Jordan with partial pivoting, in long double */
static void
GaussJordanInverse(int n, const double *full, long double *inv)
{
	long double *m = malloc(sizeof(long double) * n * n);

	/* row-major working copy m | inv */
	for (int r = 0; r < n; r++)
		for (int c = 0; c < n; c++)
		{
			m[(size_t) r * n + c] = full[(size_t) c * n + r];
			inv[(size_t) r * n + c] = r == c;
		}
	for (int p = 0; p < n; p++)
	{
		int			best = p;
		long double f;

		for (int r = p + 1; r < n; r++)
			if (fabsl(m[(size_t) r * n + p]) > fabsl(m[(size_t) best * n + p]))
				best = r;
		if (best != p)
			for (int c = 0; c < n; c++)
			{
				long double t = m[(size_t) p * n + c];

				m[(size_t) p * n + c] = m[(size_t) best * n + c];
				m[(size_t) best * n + c] = t;
				t = inv[(size_t) p * n + c];
				inv[(size_t) p * n + c] = inv[(size_t) best * n + c];
				inv[(size_t) best * n + c] = t;
			}
		f = 1.0L / m[(size_t) p * n + p];
		for (int c = p; c < n; c++)
			m[(size_t) p * n + c] *= f;
		for (int c = 0; c < n; c++)
			inv[(size_t) p * n + c] *= f;
		for (int r = 0; r < n; r++)
		{
			long double g = m[(size_t) r * n + p];

			if (r == p || g == 0)
				continue;
			for (int c = p; c < n; c++)
				m[(size_t) r * n + c] -= g * m[(size_t) p * n + c];
			for (int c = 0; c < n; c++)
				inv[(size_t) r * n + c] -= g * inv[(size_t) p * n + c];
		}
	}
	free(m);
}

/* max |(L L')[r][c] - A[r][c]| / max |A| over the lower triangle */
static double
FactorError(int n, const double *l, const double *full)
{
	double		err = 0,
				scale = 0;

	for (int c = 0; c < n; c++)
		for (int r = c; r < n; r++)
		{
			long double s = 0;

			for (int k = 0; k <= c; k++)
				s += (long double) l[(size_t) k * n + r] * l[(size_t) k * n + c];
			err = fmax(err, fabs((double) (s - full[(size_t) c * n + r])));
			scale = fmax(scale, fabs(full[(size_t) c * n + r]));
		}
	return err / scale;
}

/* whether the strict upper triangle still holds SENTINEL */
static bool
UpperUntouched(int n, const double *a)
{
	for (int c = 0; c < n; c++)
		for (int r = 0; r < c; r++)
			if (a[(size_t) c * n + r] != SENTINEL)
				return false;
	return true;
}

static double worst_factor_error,
			worst_inverse_error;

/*
 * factor + invert an SPD matrix of size n on nthreads threads and check it
 * against the references; returns the result (malloc'ed) for comparisons
 */
static double *
CheckInverse(int n, uint64 seed, int nthreads, bool reference)
{
	double	   *full = malloc(sizeof(double) * n * n),
			   *a = malloc(sizeof(double) * n * n);
	long double *ref = malloc(sizeof(long double) * n * n);
	CoreError	err;
	double		e = 0,
				scale = 0;

	RandomSpd(n, seed, full, a);
	CHECK_EQ_INT(ease_factor(&unit_arena, a, n, nthreads, &core_no_interrupts, &err), CORE_OK);
	CHECK(UpperUntouched(n, a));
	if (reference)
	{
		e = FactorError(n, a, full);
		worst_factor_error = fmax(worst_factor_error, e);
		if (!(e <= 1e-13))
			unit_fail(__FILE__, __LINE__, "n = %d: factor error %g", n, e);
	}

	CHECK_EQ_INT(ease_invert(&unit_arena, a, n, nthreads, &core_no_interrupts, &err), CORE_OK);
	CHECK(UpperUntouched(n, a));
	if (!reference)
	{
		free(full);
		free(ref);
		return a;
	}
	GaussJordanInverse(n, full, ref);
	e = 0;
	for (int c = 0; c < n; c++)
		for (int r = c; r < n; r++)
		{
			e = fmax(e, fabs((double) (a[(size_t) c * n + r] - ref[(size_t) r * n + c])));
			scale = fmax(scale, fabs((double) ref[(size_t) r * n + c]));
			CHECK(ease_p(a, n, r, c) == ease_p(a, n, c, r));
		}
	e /= scale;
	worst_inverse_error = fmax(worst_inverse_error, e);
	if (!(e <= 1e-10))
		unit_fail(__FILE__, __LINE__, "n = %d: inverse error %g", n, e);
	free(full);
	free(ref);
	return a;
}

/* ---------- tests ---------- */

static void
test_ease_matrix_bytes(void)
{
	size_t		b = 1;

	CHECK(ease_matrix_bytes(0, &b) && b == 0);
	CHECK(ease_matrix_bytes(10000, &b) && b == (size_t) 800000000);
	CHECK(!ease_matrix_bytes(-1, &b));
	CHECK(!ease_matrix_bytes(PG_INT32_MAX, &b));	/* 3.7e19 bytes */
}

/* the sizes around the tile boundaries, against Gauss-Jordan; several tilings */
static void
test_ease_inverse_vs_reference(void)
{
	static const int sizes[] = {1, 2, 3, 5, 17, EASE_TILE - 1, EASE_TILE, EASE_TILE + 1,
	2 * EASE_TILE + 3, 700};
	/* small tiles: many tiles, inner chunks shorter and longer than a tile */
	static const int small[][3] = {{16, 24, 150}, {16, 16, 33}, {5, 3, 41}, {7, 64, 64}};

	for (int s = 0; s < (int) lengthof(sizes); s++)
		free(CheckInverse(sizes[s], 100 + s, 2, true));
	for (int s = 0; s < (int) lengthof(small); s++)
	{
		ease_set_tiling(small[s][0], small[s][1]);
		free(CheckInverse(small[s][2], 200 + s, 1, true));
		free(CheckInverse(small[s][2], 300 + s, 3, true));
	}
	ease_set_tiling(0, 0);
	printf("ease: worst relative error: factor %.3g, inverse %.3g (bound 1e-10)\n",
		   worst_factor_error, worst_inverse_error);
}

/*
 * 1, 2 and 3 threads give the same bytes (with the serial OpenBLAS the BLAS
 * tiles stay on the main thread: ease_blas_concurrent)
 */
static void
test_ease_threads_identical(void)
{
	static const int cases[][3] = {{0, 0, 2 * EASE_TILE + 3}, {0, 0, 700}, {16, 40, 181}};

	for (int t = 0; t < (int) lengthof(cases); t++)
	{
		int			n = cases[t][2];
		double	   *one,
				   *other;

		ease_set_tiling(cases[t][0], cases[t][1]);
		one = CheckInverse(n, 7 + t, 1, false);
		for (int nthreads = 2; nthreads <= 3; nthreads++)
		{
			other = CheckInverse(n, 7 + t, nthreads, false);
			if (memcmp(one, other, sizeof(double) * n * n) != 0)
				unit_fail(__FILE__, __LINE__, "n = %d: %d threads differ from 1", n, nthreads);
			free(other);
		}
		free(one);
	}
	ease_set_tiling(0, 0);
}

/* ease_factor's errors: a negative, a NaN and an infinite pivot, late in the matrix */
static void
test_ease_not_positive_definite(void)
{
	int			n = EASE_TILE + 44;
	double	   *a = malloc(sizeof(double) * n * n);
	CoreError	err;

	/* [[1, 2], [2, 1]] has eigenvalue -1: the second pivot is 1 - 4 */
	{
		double		m[9] = {1, 2, 0, SENTINEL, 1, 0, SENTINEL, SENTINEL, 1};

		CHECK_EQ_INT(ease_factor(&unit_arena, m, 3, 1, &core_no_interrupts, &err), CORE_RANGE);
		CHECK_STR(err.message, "matrix is not positive definite");
		CHECK_STR(err.detail, "Cholesky pivot 2 of 3 is -3.");
		CHECK(err.hint[0] != '\0');
	}
	for (int kind = 0; kind < 3; kind++)
	{
		for (int c = 0; c < n; c++)
			for (int r = 0; r < n; r++)
				a[(size_t) c * n + r] = r == c ? 2 : r > c ? 0.001 : SENTINEL;
		if (kind == 0)
			a[(size_t) 280 * n + 280] = -1;
		else if (kind == 1)
			a[(size_t) 3 * n + 290] = NAN;	/* row 291's pivot becomes NaN */
		else
			a[(size_t) 3 * n + 270] = INFINITY; /* row 271's pivot becomes -inf */
		CHECK_EQ_INT(ease_factor(&unit_arena, a, n, 2, &core_no_interrupts, &err), CORE_RANGE);
		CHECK_STR(err.message, "matrix is not positive definite");
		if (kind == 0)
			CHECK(strncmp(err.detail, "Cholesky pivot 281 of 300 is -", 30) == 0);
		else if (kind == 1)
			CHECK(strncmp(err.detail, "Cholesky pivot 291 of 300 is ", 29) == 0);
		else
			CHECK(strncmp(err.detail, "Cholesky pivot 271 of 300 is ", 29) == 0);
	}
	/* empty and negative sizes */
	CHECK_EQ_INT(ease_factor(&unit_arena, a, 0, 1, NULL, &err), CORE_OK);
	CHECK_EQ_INT(ease_invert(&unit_arena, a, 0, 1, NULL, &err), CORE_OK);
	CHECK_EQ_INT(ease_factor(&unit_arena, a, -1, 1, NULL, &err), CORE_INVALID);
	free(a);
}

/* ---------- the Gram matrix ---------- */

#define GU 40
#define GI 30

static InteractionMatrix *
BuildMatrix(double w[GU][GI], int64 item_id_base, bool with_items, uint64 seed, bool duplicates)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	InteractionMatrix *m = NULL;

	memset(w, 0, sizeof(double) * GU * GI);
	for (int u = 0; u < GU; u++)
		for (int i = 0; i < GI; i++)
		{
			/* about a third of the pairs, item 0 in every user; dyadic weights */
			if (i != 0 && unit_rand(&seed) % 3 != 0)
				continue;
			w[u][i] = 0.25 * (double) (1 + unit_rand(&seed) % 8);
			CHECK_EQ_INT(simcore_triples_add(tb, 10 * u, item_id_base + i, w[u][i], &err), CORE_OK);
			if (duplicates && u % 3 == 0)
			{
				/* the same pair again: the matrix sums them */
				CHECK_EQ_INT(simcore_triples_add(tb, 10 * u, item_id_base + i, 0.5, &err), CORE_OK);
				w[u][i] += 0.5;
			}
		}
	CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, with_items, &core_no_interrupts, &m, &err), CORE_OK);
	return m;
}

/* G + lambda I against X'X summed directly; a subset; the threads; the upper triangle */
static void
test_ease_gram_vs_naive(void)
{
	static double w[GU][GI];
	InteractionMatrix *m = BuildMatrix(w, 500, true, 11, true);
	CoreError	err;
	double		lambda = 2.5;

	CHECK_EQ_INT(m->n_items, GI);
	for (int max_items = 0; max_items <= 12; max_items += 12)
	{
		int32	   *sub,
					n;
		double	   *g[4];

		CHECK_EQ_INT(ease_select_items(&unit_arena, m, max_items, &sub, &n, &err), CORE_OK);
		CHECK_EQ_INT(n, max_items ? max_items : GI);
		for (int nthreads = 1; nthreads <= 3; nthreads++)
		{
			g[nthreads] = malloc(sizeof(double) * n * n);
			for (int i = 0; i < n * n; i++)
				g[nthreads][i] = SENTINEL;
			CHECK_EQ_INT(ease_gram(m, sub, n, lambda, g[nthreads], nthreads, &core_no_interrupts, &err), CORE_OK);
			CHECK(UpperUntouched(n, g[nthreads]));
		}
		CHECK(memcmp(g[1], g[2], sizeof(double) * n * n) == 0);
		CHECK(memcmp(g[1], g[3], sizeof(double) * n * n) == 0);
		for (int i = 0; i < GI; i++)
			for (int j = 0; j < GI; j++)
			{
				double		s = i == j ? lambda : 0;

				if (sub[i] < 0 || sub[j] < 0 || sub[j] < sub[i])
					continue;
				for (int u = 0; u < GU; u++)
					s += w[u][i] * w[u][j];
				CHECK_NEAR(g[1][(size_t) sub[i] * n + sub[j]], s, 1e-12 * fabs(s));
			}
		for (int t = 1; t <= 3; t++)
			free(g[t]);
	}
}

/* the most popular items, ties by the smaller id; with and without the item-major copy */
static void
test_ease_select_items_ties(void)
{
	/* item ids 10..50, users per item 3, 5, 5, 1, 3 */
	static const int deg[5] = {3, 5, 5, 1, 3};
	CoreError	err;

	for (int with_items = 0; with_items <= 1; with_items++)
	{
		TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
		InteractionMatrix *m;
		int32	   *sub,
					n;

		for (int i = 4; i >= 0; i--)
			for (int u = 0; u < deg[i]; u++)
				simcore_triples_add(tb, 100 + u * 7 + i, 10 * (i + 1), 1, &err);
		CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, with_items, &core_no_interrupts, &m, &err), CORE_OK);

		CHECK_EQ_INT(ease_select_items(&unit_arena, m, 3, &sub, &n, &err), CORE_OK);
		CHECK_EQ_INT(n, 3);		/* 20 and 30 (5 users), then 10 before 50 (3 each) */
		CHECK(sub[0] == 0 && sub[1] == 1 && sub[2] == 2 && sub[3] == -1 && sub[4] == -1);
		CHECK_EQ_INT(ease_select_items(&unit_arena, m, 1, &sub, &n, &err), CORE_OK);
		CHECK(n == 1 && sub[0] == -1 && sub[1] == 0 && sub[2] == -1);	/* 20 before 30 */
		CHECK_EQ_INT(ease_select_items(&unit_arena, m, 4, &sub, &n, &err), CORE_OK);
		CHECK(n == 4 && sub[3] == -1 && sub[4] == 3);
		for (int c = 0; c < 4; c++)	/* max_items <= 0 or >= the items: all */
		{
			static const int32 all[4] = {-1, 0, 5, 9};

			CHECK_EQ_INT(ease_select_items(&unit_arena, m, all[c], &sub, &n, &err), CORE_OK);
			CHECK_EQ_INT(n, 5);
			for (int i = 0; i < 5; i++)
				CHECK_EQ_INT(sub[i], i);
		}
		/* a memory failure is reported */
		unit_arena_fail_after(8);
		CHECK_EQ_INT(ease_select_items(&unit_arena, m, 2, &sub, &n, &err), CORE_NOMEM);
		unit_arena_fail_after(0);
	}
}

/* ease_gram's errors: overflow (naming the items), lambda, the item map, no item-major copy */
static void
test_ease_gram_errors(void)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	InteractionMatrix *m,
			   *m_users;
	int32	   *sub,
				n;
	double		g[9];
	static double w[GU][GI];

	/* items 7, 8, 9; user 1 has 8 and 9 with huge weights: G[9][8] overflows */
	simcore_triples_add(tb, 1, 7, 1, &err);
	simcore_triples_add(tb, 1, 8, 1e200, &err);
	simcore_triples_add(tb, 1, 9, 1e200, &err);
	simcore_triples_add(tb, 2, 7, 1, &err);
	CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, true, &core_no_interrupts, &m, &err), CORE_OK);
	CHECK_EQ_INT(ease_select_items(&unit_arena, m, 0, &sub, &n, &err), CORE_OK);
	for (int nthreads = 1; nthreads <= 3; nthreads += 2)
	{
		CHECK_EQ_INT(ease_gram(m, sub, n, 1.0, g, nthreads, &core_no_interrupts, &err), CORE_RANGE);
		CHECK_STR(err.message, "ease gram matrix is out of range");
		/* the first bad element in column order: (8, 8) */
		CHECK_STR(err.detail, "The sum of w(u,i)^2 over the users of item 8 is not finite.");
	}
	CHECK_EQ_INT(ease_gram(m, sub, n, -1, g, 1, NULL, &err), CORE_INVALID);
	CHECK_EQ_INT(ease_gram(m, sub, n, NAN, g, 1, NULL, &err), CORE_INVALID);
	CHECK_EQ_INT(ease_gram(m, sub, n, INFINITY, g, 1, NULL, &err), CORE_INVALID);
	CHECK_EQ_INT(ease_gram(m, sub, 2, 1, g, 1, NULL, &err), CORE_INVALID);
	sub[0] = 1;
	sub[1] = 0;
	CHECK_EQ_INT(ease_gram(m, sub, 3, 1, g, 1, NULL, &err), CORE_INVALID);

	m_users = BuildMatrix(w, 1, false, 5, false);
	CHECK_EQ_INT(ease_select_items(&unit_arena, m_users, 3, &sub, &n, &err), CORE_OK);
	CHECK_EQ_INT(ease_gram(m_users, sub, n, 1, g, 1, NULL, &err), CORE_INVALID);
}

/* ---------- interrupts ---------- */

static int	polls,
			pending_left,
			processed;

static bool
CountingPending(void)
{
	polls++;
	return pending_left > 0;
}

static void
FlagProcess(void)
{
	pending_left--;				/* returns: the run resumes */
	processed++;
}

/* the tile tasks of ease_factor and ease_invert at nt tiles per side */
static int64
FactorTasks(int64 nt)
{
	int64		t = 0;

	for (int64 k = 0; k < nt; k++)
		t += 1 + (nt - k - 1) + (nt - k - 1) * (nt - k) / 2;
	return t;
}

static int64
InvertTasks(int64 nt)
{
	return nt * (nt + 1);		/* phase 1: nt - j per column j; phase 2: i + 1 per row i */
}

/*
 * one thread: a poll before every tile task (and Gram column); pending
 * interrupts reach `process`, after which the work resumes and ends with
 * the same bytes, on one thread and on three
 */
static void
test_ease_interrupts(void)
{
	const CoreInterrupts hooks = {CountingPending, FlagProcess};
	int			n = 150;
	int64		nt = (n + 15) / 16;
	double	   *full = malloc(sizeof(double) * n * n),
			   *a = malloc(sizeof(double) * n * n),
			   *b = malloc(sizeof(double) * n * n);
	CoreError	err;
	static double w[GU][GI];
	InteractionMatrix *m = BuildMatrix(w, 1, true, 3, false);
	int32	   *sub,
				ns;

	ease_set_tiling(16, 16);
	RandomSpd(n, 5, full, a);
	memcpy(b, a, sizeof(double) * n * n);
	CHECK_EQ_INT(ease_factor(&unit_arena, a, n, 1, NULL, &err), CORE_OK);
	CHECK_EQ_INT(ease_invert(&unit_arena, a, n, 1, NULL, &err), CORE_OK);

	polls = pending_left = processed = 0;
	memcpy(full, b, sizeof(double) * n * n);
	CHECK_EQ_INT(ease_factor(&unit_arena, full, n, 1, &hooks, &err), CORE_OK);
	if (polls < FactorTasks(nt))
		unit_fail(__FILE__, __LINE__, "factor: %d polls for " INT64_FORMAT " tasks", polls, FactorTasks(nt));
	polls = 0;
	CHECK_EQ_INT(ease_invert(&unit_arena, full, n, 1, &hooks, &err), CORE_OK);
	if (polls < InvertTasks(nt))
		unit_fail(__FILE__, __LINE__, "invert: %d polls for " INT64_FORMAT " tasks", polls, InvertTasks(nt));
	CHECK(memcmp(a, full, sizeof(double) * n * n) == 0);

	for (int nthreads = 1; nthreads <= 3; nthreads += 2)
	{
		polls = processed = 0;
		pending_left = 5;
		memcpy(full, b, sizeof(double) * n * n);
		CHECK_EQ_INT(ease_factor(&unit_arena, full, n, nthreads, &hooks, &err), CORE_OK);
		CHECK_EQ_INT(processed, 5);
		pending_left = 3;
		CHECK_EQ_INT(ease_invert(&unit_arena, full, n, nthreads, &hooks, &err), CORE_OK);
		CHECK_EQ_INT(processed, 8);
		CHECK(memcmp(a, full, sizeof(double) * n * n) == 0);
	}

	/* the Gram matrix polls per column, and processes pending interrupts */
	CHECK_EQ_INT(ease_select_items(&unit_arena, m, 0, &sub, &ns, &err), CORE_OK);
	polls = processed = 0;
	pending_left = 2;
	CHECK_EQ_INT(ease_gram(m, sub, ns, 1, a, 1, &hooks, &err), CORE_OK);
	CHECK(polls >= GI);
	CHECK_EQ_INT(processed, 2);
	ease_set_tiling(0, 0);
	free(full);
	free(a);
	free(b);
}

/* ease_invert takes the scratch it announces from the allocator, and reports a failure */
static void
test_ease_invert_memory(void)
{
	int			n = 3 * EASE_TILE;
	double	   *full = malloc(sizeof(double) * n * n),
			   *a = malloc(sizeof(double) * n * n);
	CoreError	err;
	size_t		before = unit_arena_live();

	/* the diagonal tile and a panel of n - 2 tiles' rows */
	CHECK_EQ_INT(ease_invert_scratch_bytes(n), (size_t) (EASE_TILE + n - 2 * EASE_TILE) * EASE_TILE * sizeof(double));
	CHECK_EQ_INT(ease_invert_scratch_bytes(2 * EASE_TILE), (size_t) EASE_TILE * EASE_TILE * sizeof(double));
	CHECK_EQ_INT(ease_invert_scratch_bytes(0), 0);
	RandomSpd(n, 9, full, a);
	CHECK_EQ_INT(ease_factor(&unit_arena, a, n, 2, NULL, &err), CORE_OK);
	unit_arena_fail_after(ease_invert_scratch_bytes(n) - 1);
	CHECK_EQ_INT(ease_invert(&unit_arena, a, n, 2, NULL, &err), CORE_NOMEM);
	unit_arena_fail_after(0);
	unit_arena_reset();
	/* exactly the scratch announced, released on success */
	RandomSpd(n, 9, full, a);
	CHECK_EQ_INT(ease_factor(&unit_arena, a, n, 2, NULL, &err), CORE_OK);
	unit_arena_fail_after(ease_invert_scratch_bytes(n));
	CHECK_EQ_INT(ease_invert(&unit_arena, a, n, 2, NULL, &err), CORE_OK);
	unit_arena_fail_after(0);
	CHECK_EQ_INT(unit_arena_live(), before);
	free(full);
	free(a);
}

void
ease_suite(void)
{
	RUN(test_ease_matrix_bytes);
	RUN(test_ease_inverse_vs_reference);
	RUN(test_ease_threads_identical);
	RUN(test_ease_not_positive_definite);
	RUN(test_ease_gram_vs_naive);
	RUN(test_ease_select_items_ties);
	RUN(test_ease_gram_errors);
	RUN(test_ease_interrupts);
	RUN(test_ease_invert_memory);
}
