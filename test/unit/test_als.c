/*
 * test_als.c
 *	  Implicit ALS (als_core.c) against references written here: the normal
 *	  equations built over every (row, column) pair of a dense confidence
 *	  matrix and solved by Gaussian elimination in long double, the loss
 *	  summed over every pair; CG converging to the exact solve; the loss
 *	  decreasing; bit-for-bit determinism across thread counts and row
 *	  orders; parameter errors.
 */
#include "unit.h"

#include <stdlib.h>

#include "als_core.h"
#include "simcore.h"

#define AU 12
#define AI 9

/* a small matrix: about half the pairs, weights 0.5 .. 3; w[u][i] = 0 when absent */
static InteractionMatrix *
AlsMatrix(double w[AU][AI], uint64 seed, bool reverse)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	InteractionMatrix *m = NULL;
	uint64		s = seed;

	memset(w, 0, sizeof(double) * AU * AI);
	for (int u = 0; u < AU; u++)
		for (int i = 0; i < AI; i++)
			if (i == u % AI || unit_rand(&s) % 2 == 0)
				w[u][i] = 0.5 * (double) (1 + unit_rand(&s) % 6);
	for (int t = 0; t < AU * AI; t++)
	{
		int			x = reverse ? AU * AI - 1 - t : t;
		int			u = x / AI,
					i = x % AI;

		if (w[u][i] > 0)
			CHECK_EQ_INT(simcore_triples_add(tb, 100 + 7 * u, 5 + 3 * i, w[u][i], &err), CORE_OK);
	}
	CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, true, &core_no_interrupts, &m, &err), CORE_OK);
	return m;
}

/* solve a x = b (n x n, row-major) by Gaussian elimination with partial pivoting, long double */
static void
GaussSolve(int n, const long double *a_in, const long double *b_in, double *x)
{
	long double *a = malloc(sizeof(long double) * n * (n + 1));

	for (int r = 0; r < n; r++)
	{
		for (int c = 0; c < n; c++)
			a[r * (n + 1) + c] = a_in[r * n + c];
		a[r * (n + 1) + n] = b_in[r];
	}
	for (int c = 0; c < n; c++)
	{
		int			piv = c;

		for (int r = c + 1; r < n; r++)
			if (fabsl(a[r * (n + 1) + c]) > fabsl(a[piv * (n + 1) + c]))
				piv = r;
		for (int k = 0; k <= n; k++)
		{
			long double t = a[c * (n + 1) + k];

			a[c * (n + 1) + k] = a[piv * (n + 1) + k];
			a[piv * (n + 1) + k] = t;
		}
		for (int r = 0; r < n; r++)
			if (r != c)
			{
				long double q = a[r * (n + 1) + c] / a[c * (n + 1) + c];

				for (int k = c; k <= n; k++)
					a[r * (n + 1) + k] -= q * a[c * (n + 1) + k];
			}
	}
	for (int r = 0; r < n; r++)
		x[r] = (double) (a[r * (n + 1) + n] / a[r * (n + 1) + r]);
	free(a);
}

/*
 * The normal equations of one row written out over every column j of the
 * other side: (sum_j c_j z_j z_j' + lambda I) x = sum_j c_j p_j z_j with
 * c_j = 1 + alpha w_j, p_j = 1 where w_j > 0, c_j = 1, p_j = 0 elsewhere.
 */
static void
NormalSolve(int f, int ncols, const double *z, const double *wrow, double lambda, double alpha,
			double *x)
{
	long double *a = calloc(f * f, sizeof(long double));
	long double *b = calloc(f, sizeof(long double));

	for (int j = 0; j < ncols; j++)
	{
		long double c = wrow[j] > 0 ? 1 + (long double) alpha * wrow[j] : 1;
		long double pj = wrow[j] > 0 ? 1 : 0;

		for (int r = 0; r < f; r++)
		{
			for (int s = 0; s < f; s++)
				a[r * f + s] += c * z[j * f + r] * z[j * f + s];
			b[r] += c * pj * z[j * f + r];
		}
	}
	for (int r = 0; r < f; r++)
		a[r * f + r] += lambda;
	GaussSolve(f, a, b, x);
	free(a);
	free(b);
}

/* L summed over every (user, item) pair */
static double
NaiveLoss(int f, double w[AU][AI], const double *x, const double *y, double lambda, double alpha)
{
	long double l = 0;

	for (int u = 0; u < AU; u++)
		for (int i = 0; i < AI; i++)
		{
			long double s = 0,
						c = w[u][i] > 0 ? 1 + (long double) alpha * w[u][i] : 1,
						p = w[u][i] > 0 ? 1 : 0;

			for (int k = 0; k < f; k++)
				s += (long double) x[u * f + k] * y[i * f + k];
			l += c * (p - s) * (p - s);
		}
	for (int k = 0; k < AU * f; k++)
		l += lambda * (long double) x[k] * x[k];
	for (int k = 0; k < AI * f; k++)
		l += lambda * (long double) y[k] * y[k];
	return (double) l;
}

static AlsParams
Params(int f, int iterations, int cg)
{
	AlsParams	p;

	memset(&p, 0, sizeof(p));
	p.factors = f;
	p.regularization = 0.3;
	p.alpha = 2.0;
	p.iterations = iterations;
	p.cg_steps = cg;
	p.seed = 42;
	return p;
}

/* one iteration from the hashed initial factors, exact: items then users, by the normal equations */
static void
test_als_one_iteration_vs_normal_equations(void)
{
	double		w[AU][AI],
				wt[AI][AU];
	InteractionMatrix *m = AlsMatrix(w, 7, false);
	int			f = 3;
	AlsParams	p = Params(f, 1, 0);
	AlsModel   *model = NULL;
	CoreError	err;
	double		x0[AU * 3],
				y1[AI * 3],
				x1[AU * 3];

	CHECK_EQ_INT(m->n_users, AU);
	CHECK_EQ_INT(m->n_items, AI);
	for (int u = 0; u < AU; u++)
		for (int k = 0; k < f; k++)
			x0[u * f + k] = (float) als_initial_factor(p.seed, false, 100 + 7 * u, k);
	for (int u = 0; u < AU; u++)
		for (int i = 0; i < AI; i++)
			wt[i][u] = w[u][i];
	/* the factors are floats: each solve rounded, as als_train does */
	for (int i = 0; i < AI; i++)
		NormalSolve(f, AU, x0, wt[i], p.regularization, p.alpha, y1 + i * f);
	for (int k = 0; k < AI * f; k++)
		y1[k] = (float) y1[k];
	for (int u = 0; u < AU; u++)
		NormalSolve(f, AI, y1, w[u], p.regularization, p.alpha, x1 + u * f);
	for (int k = 0; k < AU * f; k++)
		x1[k] = (float) x1[k];

	CHECK_EQ_INT(als_train(&unit_arena, m, &p, 1, &core_no_interrupts, &model, &err), CORE_OK);
	/* the same float, or its neighbour when the exact value sits on a rounding boundary */
	for (int k = 0; k < AI * f; k++)
	{
		CHECK(model->y[k] == (float) model->y[k]);
		CHECK_NEAR(model->y[k], y1[k], 1.2e-7 * fabs(y1[k]));
	}
	for (int k = 0; k < AU * f; k++)
	{
		CHECK(model->x[k] == (float) model->x[k]);
		CHECK_NEAR(model->x[k], x1[k], 1.2e-7 * fabs(x1[k]));
	}
	CHECK_NEAR(model->loss[0], NaiveLoss(f, w, model->x, model->y, p.regularization, p.alpha),
			   1e-10 * model->loss[0]);
	/* the initial factors: in [0, 0.01), different per side, id and index */
	CHECK(als_initial_factor(1, false, 5, 0) >= 0 && als_initial_factor(1, false, 5, 0) < 0.01);
	CHECK(als_initial_factor(1, false, 5, 0) != als_initial_factor(1, true, 5, 0));
	CHECK(als_initial_factor(1, false, 5, 0) != als_initial_factor(1, false, 6, 0));
	CHECK(als_initial_factor(1, false, 5, 0) != als_initial_factor(1, false, 5, 1));
	CHECK(als_initial_factor(1, false, 5, 0) != als_initial_factor(2, false, 5, 0));
}

/*
 * the exact solver's tiled path (f a multiple of 8: tiles of 4 x 8 over chunks of 32 pairs)
 * against the written-out normal equations, with 1, 34, 67 and 100 pairs (one chunk, across
 * chunk boundaries)
 */
static void
test_als_exact_tiled(void)
{
	for (int f = 8; f <= 24; f += 8)
		for (int n = 1; n <= 100; n += 33)
		{
			uint64		s = 11 + f + n;
			int			ncols = n + 7;
			double	   *z = malloc(sizeof(double) * ncols * f),
					   *wrow = calloc(ncols, sizeof(double)),
					   *w = malloc(sizeof(double) * ncols),
					   *gram = malloc(sizeof(double) * f * f),
					   *scratch = malloc(sizeof(double) * (f * f + f)),
						ref[24],
						x[24];
			int32	   *idx = malloc(sizeof(int32) * ncols);
			int			nnz = 0;

			for (int k = 0; k < ncols * f; k++)
				z[k] = (float) (unit_uniform(&s) - 0.4);
			/* the first n columns stored, the last 7 not (they count in the Gram matrix only) */
			for (int j = 0; j < n; j++)
			{
				wrow[j] = 0.5 + unit_uniform(&s) * 3;
				idx[nnz] = j;
				w[nnz++] = wrow[j];
			}
			als_gram(z, ncols, f, gram, &core_no_interrupts);
			NormalSolve(f, ncols, z, wrow, 0.3, 2.0, ref);
			CHECK(als_solve_exact(f, gram, 0.3, 2.0, z, idx, w, nnz, x, scratch));
			for (int k = 0; k < f; k++)
				CHECK_NEAR(x[k], ref[k], 1e-10 * (1 + fabs(ref[k])));
			free(z);
			free(wrow);
			free(w);
			free(gram);
			free(scratch);
			free(idx);
		}
}

/* the row solvers against the written-out normal equations; CG reaches the exact solve */
static void
test_als_cg_converges_to_exact(void)
{
	int			f = 6,
				n = 20;
	uint64		s = 3;
	double	   *z = malloc(sizeof(double) * n * f);
	float		zf[20 * 6];		/* the CG solver's float copy of z (z holds float values) */
	double		wrow[20],
				w[20],
				gram[36],
				ref[6],
				x[6],
				xcg[6],
				xcg1[6],
				scratch[512];	/* >= f * f + f and als_cg_scratch_doubles(6) */
	int32		idx[20];
	int			nnz = 0;

	for (int k = 0; k < n * f; k++)
		z[k] = zf[k] = (float) (unit_uniform(&s) - 0.3);
	for (int j = 0; j < n; j++)
	{
		wrow[j] = unit_rand(&s) % 3 == 0 ? 0.5 + unit_uniform(&s) * 4 : 0;
		if (wrow[j] > 0)
		{
			idx[nnz] = j;
			w[nnz++] = wrow[j];
		}
	}
	als_gram(z, n, f, gram, &core_no_interrupts);
	for (int r = 0; r < f; r++)
		for (int c = 0; c < f; c++)
		{
			double		g = 0;

			for (int j = 0; j < n; j++)
				g += z[j * f + r] * z[j * f + c];
			CHECK_NEAR(gram[r * f + c], g, 1e-12);
		}
	NormalSolve(f, n, z, wrow, 0.1, 5.0, ref);
	CHECK(als_solve_exact(f, gram, 0.1, 5.0, z, idx, w, nnz, x, scratch));
	for (int k = 0; k < f; k++)
		CHECK_NEAR(x[k], ref[k], 1e-10 * (1 + fabs(ref[k])));

	/* CG from zero: f steps solve an f x f system (up to rounding) */
	CHECK(als_cg_scratch_doubles(f) <= 512);
	memset(xcg, 0, sizeof(xcg));
	als_solve_cg(f, gram, 0.1, 5.0, zf, idx, w, nnz, f + 4, xcg, scratch);
	for (int k = 0; k < f; k++)
		CHECK_NEAR(xcg[k], ref[k], 1e-8 * (1 + fabs(ref[k])));
	/* one step from zero gets closer in the A-norm, but not there; warm start at the solution stays */
	memset(xcg1, 0, sizeof(xcg1));
	als_solve_cg(f, gram, 0.1, 5.0, zf, idx, w, nnz, 1, xcg1, scratch);
	{
		double		d = 0;

		for (int k = 0; k < f; k++)
			d += fabs(xcg1[k] - ref[k]);
		CHECK(d > 1e-6);
	}
	memcpy(xcg1, ref, sizeof(ref));
	als_solve_cg(f, gram, 0.1, 5.0, zf, idx, w, nnz, 3, xcg1, scratch);
	for (int k = 0; k < f; k++)
		CHECK_NEAR(xcg1[k], ref[k], 1e-9 * (1 + fabs(ref[k])));
	free(z);
}

/* the loss never increases, exact or CG, and its value is the written-out sum */
static void
test_als_loss_decreases(void)
{
	double		w[AU][AI];
	InteractionMatrix *m = AlsMatrix(w, 11, false);

	for (int cg = 0; cg <= 3; cg += 3)
	{
		AlsParams	p = Params(4, 12, cg);
		AlsModel   *model = NULL;
		CoreError	err;

		CHECK_EQ_INT(als_train(&unit_arena, m, &p, 2, &core_no_interrupts, &model, &err), CORE_OK);
		for (int it = 1; it < p.iterations; it++)
			CHECK(model->loss[it] <= model->loss[it - 1] * (1 + 1e-12));
		CHECK(model->loss[p.iterations - 1] < model->loss[0]);
		CHECK_NEAR(model->loss[p.iterations - 1],
				   NaiveLoss(4, w, model->x, model->y, p.regularization, p.alpha),
				   1e-10 * model->loss[0]);
	}
}

/* bit for bit the same whatever the threads and the order rows were added in */
static void
test_als_deterministic(void)
{
	double		w[AU][AI];
	InteractionMatrix *m1 = AlsMatrix(w, 5, false);
	InteractionMatrix *m2 = AlsMatrix(w, 5, true);

	for (int cg = 0; cg <= 2; cg += 2)
	{
		AlsParams	p = Params(5, 4, cg);
		AlsModel   *a = NULL,
				   *b = NULL,
				   *c = NULL;
		CoreError	err;

		CHECK_EQ_INT(als_train(&unit_arena, m1, &p, 1, &core_no_interrupts, &a, &err), CORE_OK);
		CHECK_EQ_INT(als_train(&unit_arena, m1, &p, 4, &core_no_interrupts, &b, &err), CORE_OK);
		CHECK_EQ_INT(als_train(&unit_arena, m2, &p, 3, &core_no_interrupts, &c, &err), CORE_OK);
		CHECK(memcmp(a->x, b->x, sizeof(double) * AU * 5) == 0);
		CHECK(memcmp(a->y, b->y, sizeof(double) * AI * 5) == 0);
		CHECK(memcmp(a->loss, b->loss, sizeof(double) * 4) == 0);
		CHECK(memcmp(a->x, c->x, sizeof(double) * AU * 5) == 0);
		CHECK(memcmp(a->y, c->y, sizeof(double) * AI * 5) == 0);
		CHECK(memcmp(a->loss, c->loss, sizeof(double) * 4) == 0);
		/* another seed, another model */
		p.seed = 43;
		CHECK_EQ_INT(als_train(&unit_arena, m1, &p, 1, &core_no_interrupts, &c, &err), CORE_OK);
		CHECK(memcmp(a->x, c->x, sizeof(double) * AU * 5) != 0);
	}
}

/*
 * conjugate gradient written out: `steps` steps from x on the explicit system
 * (Z'Z + sum_e alpha w_e z_e z_e' + lambda I) x = sum_e (1 + alpha w_e) z_e,
 * in long double, stopping early as the solver does
 */
static void
ExplicitCg(int f, const double *gram, double lambda, double alpha, const double *z,
		   const int32 *idx, const double *w, int64 n, int steps, double *x)
{
	long double *a = calloc((size_t) f * f, sizeof(long double)),
			   *r = calloc(f, sizeof(long double)),
			   *p = calloc(f, sizeof(long double)),
			   *ap = calloc(f, sizeof(long double)),
			   *xl = calloc(f, sizeof(long double)),
				rs = 0;

	for (int q = 0; q < f * f; q++)
		a[q] = gram[q];
	for (int k = 0; k < f; k++)
	{
		a[k * f + k] += lambda;
		xl[k] = x[k];
	}
	for (int64 e = 0; e < n; e++)
	{
		const double *ze = z + (size_t) idx[e] * f;

		for (int q = 0; q < f; q++)
		{
			for (int t = 0; t < f; t++)
				a[q * f + t] += alpha * w[e] * ze[q] * ze[t];
			r[q] += (1 + alpha * w[e]) * ze[q];
		}
	}
	for (int q = 0; q < f; q++)
	{
		for (int t = 0; t < f; t++)
			r[q] -= a[q * f + t] * xl[t];
		p[q] = r[q];
		rs += r[q] * r[q];
	}
	for (int it = 0; it < steps && !(rs < 1e-20); it++)
	{
		long double pap = 0,
					rsnew = 0,
					step;

		for (int q = 0; q < f; q++)
		{
			ap[q] = 0;
			for (int t = 0; t < f; t++)
				ap[q] += a[q * f + t] * p[t];
			pap += p[q] * ap[q];
		}
		if (!(pap > 0))
			break;
		step = rs / pap;
		for (int q = 0; q < f; q++)
		{
			xl[q] += step * p[q];
			r[q] -= step * ap[q];
			rsnew += r[q] * r[q];
		}
		if (rsnew < 1e-20)
			break;
		for (int q = 0; q < f; q++)
			p[q] = r[q] + rsnew / rs * p[q];
		rs = rsnew;
	}
	for (int k = 0; k < f; k++)
		x[k] = (double) xl[k];
	free(a);
	free(r);
	free(p);
	free(ap);
	free(xl);
}

/* every solved row rounded to float, as als_train stores them */
static void
RoundRows(double *v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		v[k] = (float) v[k];
}

/*
 * One CG iteration of training against ExplicitCg, at f = 16 (the solver's
 * blocked kernels: four pairs at a time, two dot products at once) and f = 20
 * (the pair-by-pair path), on rows with 4 .. 7 pairs (blocks and tails) and
 * four items of 9,000 users each, so that one group of eight items holds more
 * pairs than a worker's pack buffer: three are packed and the fourth gathered.
 */
static void
test_als_cg_training_vs_written_out_cg(void)
{
	for (int f = 16; f <= 20; f += 4)
	{
		CoreError	err;
		TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
		InteractionMatrix *m = NULL;
		uint64		s = 17;
		AlsParams	p = Params(f, 1, 2);
		AlsModel   *model = NULL;
		double	   *x0,
				   *y1,
				   *x1,
				   *gram = malloc(sizeof(double) * f * f);
		double		worst = 0;

		for (int u = 0; u < 9000; u++)
		{
			for (int i = 0; i < 4; i++)
				CHECK_EQ_INT(simcore_triples_add(tb, u, i, 1 + (double) (unit_rand(&s) % 4), &err), CORE_OK);
			for (int t = 0; t < (int) (unit_rand(&s) % 4); t++)
				CHECK_EQ_INT(simcore_triples_add(tb, u, 4 + (int64) (unit_rand(&s) % 200), 0.5, &err), CORE_OK);
		}
		CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, true, &core_no_interrupts, &m, &err), CORE_OK);
		CHECK(m->i_ptr[4] - m->i_ptr[0] == 36000);
		x0 = malloc(sizeof(double) * m->n_users * f);
		x1 = malloc(sizeof(double) * m->n_users * f);
		y1 = malloc(sizeof(double) * m->n_items * f);
		for (int u = 0; u < m->n_users; u++)
			for (int k = 0; k < f; k++)
				x0[u * f + k] = (float) als_initial_factor(p.seed, false, m->user_ids[u], k);
		for (int i = 0; i < m->n_items; i++)
			for (int k = 0; k < f; k++)
				y1[i * f + k] = (float) als_initial_factor(p.seed, true, m->item_ids[i], k);
		/* items given the users, then users given the new items, each warm-started */
		als_gram(x0, m->n_users, f, gram, &core_no_interrupts);
		for (int i = 0; i < m->n_items; i++)
			ExplicitCg(f, gram, p.regularization, p.alpha, x0, m->i_user + m->i_ptr[i], m->i_w + m->i_ptr[i],
					   m->i_ptr[i + 1] - m->i_ptr[i], p.cg_steps, y1 + i * f);
		RoundRows(y1, (size_t) m->n_items * f);
		memcpy(x1, x0, sizeof(double) * m->n_users * f);
		als_gram(y1, m->n_items, f, gram, &core_no_interrupts);
		for (int u = 0; u < m->n_users; u++)
			ExplicitCg(f, gram, p.regularization, p.alpha, y1, m->u_item + m->u_ptr[u], m->u_w + m->u_ptr[u],
					   m->u_ptr[u + 1] - m->u_ptr[u], p.cg_steps, x1 + u * f);
		RoundRows(x1, (size_t) m->n_users * f);

		CHECK_EQ_INT(als_train(&unit_arena, m, &p, 2, &core_no_interrupts, &model, &err), CORE_OK);
		for (size_t k = 0; k < (size_t) m->n_items * f; k++)
			worst = Max(worst, fabs(model->y[k] - y1[k]) / (fabs(y1[k]) + 1e-3));
		for (size_t k = 0; k < (size_t) m->n_users * f; k++)
			worst = Max(worst, fabs(model->x[k] - x1[k]) / (fabs(x1[k]) + 1e-3));
		CHECK(worst < 1e-5);
		if (!(worst < 1e-5))
			printf("    f = %d: worst relative difference from the written-out CG %.3g\n", f, worst);
		free(x0);
		free(x1);
		free(y1);
		free(gram);
	}
}

/* many users over many blocks, threads against one thread */
static void
test_als_threads_many_blocks(void)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	InteractionMatrix *m = NULL;
	uint64		s = 99;
	AlsParams	p = Params(8, 3, 3);
	AlsModel   *a = NULL,
			   *b = NULL;

	for (int u = 0; u < 700; u++)
		for (int t = 0; t < 6; t++)
			CHECK_EQ_INT(simcore_triples_add(tb, u, (int64) (unit_rand(&s) % 300), 1.0, &err), CORE_OK);
	CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, true, &core_no_interrupts, &m, &err), CORE_OK);
	CHECK_EQ_INT(als_train(&unit_arena, m, &p, 1, &core_no_interrupts, &a, &err), CORE_OK);
	CHECK_EQ_INT(als_train(&unit_arena, m, &p, 4, &core_no_interrupts, &b, &err), CORE_OK);
	CHECK(memcmp(a->x, b->x, sizeof(double) * m->n_users * 8) == 0);
	CHECK(memcmp(a->y, b->y, sizeof(double) * m->n_items * 8) == 0);
	CHECK(memcmp(a->loss, b->loss, sizeof(double) * 3) == 0);
	CHECK(als_memory_estimate(m, &p, 4) > 0);
}

static void
test_als_errors(void)
{
	double		w[AU][AI];
	InteractionMatrix *m = AlsMatrix(w, 5, false);
	AlsParams	p;
	AlsModel   *model = NULL;
	CoreError	err;

	p = Params(0, 1, 0);
	CHECK_EQ_INT(als_train(&unit_arena, m, &p, 1, NULL, &model, &err), CORE_INVALID);
	CHECK_STR(err.message, "factors must be between 1 and 1024, got 0");
	p = Params(2, 1, 0);
	p.regularization = 0;
	CHECK_EQ_INT(als_check_params(&p, &err), CORE_INVALID);
	p = Params(2, 1, 0);
	p.alpha = NAN;
	CHECK_EQ_INT(als_check_params(&p, &err), CORE_INVALID);
	p = Params(2, 0, 0);
	CHECK_EQ_INT(als_check_params(&p, &err), CORE_INVALID);
	p = Params(2, 1, -1);
	CHECK_EQ_INT(als_check_params(&p, &err), CORE_INVALID);
	CHECK_STR(err.message, "cg_steps must be between 0 and 1000, got -1");
	/* a weight <= 0 */
	p = Params(2, 1, 0);
	m->u_w[0] = 0;
	CHECK_EQ_INT(als_train(&unit_arena, m, &p, 1, NULL, &model, &err), CORE_INVALID);
	m->u_w[0] = 1;
	/* memory */
	unit_arena_fail_after(100);
	CHECK_EQ_INT(als_train(&unit_arena, m, &p, 1, NULL, &model, &err), CORE_NOMEM);
	unit_arena_fail_after(0);
}

void
als_suite(void)
{
	RUN(test_als_one_iteration_vs_normal_equations);
	RUN(test_als_cg_converges_to_exact);
	RUN(test_als_exact_tiled);
	RUN(test_als_cg_training_vs_written_out_cg);
	RUN(test_als_loss_decreases);
	RUN(test_als_deterministic);
	RUN(test_als_threads_many_blocks);
	RUN(test_als_errors);
}
