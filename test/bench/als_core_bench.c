/*
 * als_core_bench.c
 *	  The ALS core (src/als_core.c) outside the server: seconds per
 *	  iteration on a generated matrix, so that solver changes can be timed
 *	  side by side without an install.  Driven by test/bench/als_core.sh.
 *
 *   als_core_bench USERS ITEMS ROWS FACTORS CG_STEPS ITERATIONS THREADS
 *
 * The matrix imitates media_reco.synthetic_interactions: users' activity
 * Pareto(1.5) capped at 50x its mean, items drawn by 1/rank popularity,
 * weight 1 per row (duplicates summed).  Prints one line per iteration and
 * a summary line "median s/iteration", plus the final loss and a checksum
 * of the factors (to see whether two builds compute the same thing).
 */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "als_core.h"
#include "simcore.h"

static uint64
Next(uint64 *s)
{
	uint64		z = (*s += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static double
Uniform(uint64 *s)
{
	return (double) (Next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static int32
SampleCum(const double *cum, int32 n, double u)
{
	double		target = u * cum[n - 1];
	int32		lo = 0,
				hi = n - 1;

	while (lo < hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (cum[mid] <= target)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static double times[ALS_MAX_ITERATIONS];

static void
Progress(void *arg, int iteration, double loss, double seconds)
{
	(void) arg;
	times[iteration - 1] = seconds;
	printf("iteration %d: loss %.6e, %.3f s\n", iteration, loss, seconds);
	fflush(stdout);
}

static int
CmpD(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	int32		n_users,
				n_items,
				threads;
	int64		rows;
	AlsParams	p;
	AlsProgress prog = {Progress, NULL};
	CoreError	err;
	TripleBuffer *tb;
	InteractionMatrix *m = NULL;
	AlsModel   *model = NULL;
	double	   *ucum,
			   *icum;
	uint64		s = 42;
	double		sum = 0;

	if (argc != 8)
	{
		fprintf(stderr, "usage: %s USERS ITEMS ROWS FACTORS CG_STEPS ITERATIONS THREADS\n", argv[0]);
		return 2;
	}
	n_users = atoi(argv[1]);
	n_items = atoi(argv[2]);
	rows = atoll(argv[3]);
	memset(&p, 0, sizeof(p));
	p.factors = atoi(argv[4]);
	p.cg_steps = atoi(argv[5]);
	p.iterations = atoi(argv[6]);
	threads = atoi(argv[7]);
	p.regularization = 30;
	p.alpha = 2;
	p.seed = 0;
	p.progress = &prog;
	if (n_users < 1 || n_items < 1 || rows < 1 || p.iterations < 1 || p.iterations > ALS_MAX_ITERATIONS)
		return 2;

	ucum = malloc(sizeof(double) * n_users);
	icum = malloc(sizeof(double) * n_items);
	for (int32 u = 0; u < n_users; u++)
	{
		double		x = pow(1.0 - Uniform(&s), -1.0 / 1.5);

		ucum[u] = (u ? ucum[u - 1] : 0) + (x < 150 ? x : 150);
	}
	for (int32 i = 0; i < n_items; i++)
		icum[i] = (i ? icum[i - 1] : 0) + 1.0 / (i + 1);
	tb = simcore_triples_create(&core_malloc_alloc, (size_t) 1 << 36, "memory", &err);
	for (int64 r = 0; r < rows; r++)
	{
		int32		u = SampleCum(ucum, n_users, Uniform(&s));
		/* a fixed permutation of the ranks, so popular ids are spread out */
		int32		i = (int32) (((int64) SampleCum(icum, n_items, Uniform(&s)) * 7919) % n_items);

		if (simcore_triples_add(tb, u, i, 1.0, &err) != CORE_OK)
		{
			fprintf(stderr, "triples: %s\n", err.message);
			return 1;
		}
	}
	if (simcore_matrix_build(&core_malloc_alloc, tb, true, &core_no_interrupts, &m, &err) != CORE_OK)
	{
		fprintf(stderr, "matrix: %s\n", err.message);
		return 1;
	}
	printf("matrix: %d users, %d items, %lld pairs; factors %d, cg_steps %d, threads %d\n",
		   m->n_users, m->n_items, (long long) m->nnz, p.factors, p.cg_steps, threads);
	if (als_train(&core_malloc_alloc, m, &p, threads, &core_no_interrupts, &model, &err) != CORE_OK)
	{
		fprintf(stderr, "train: %s\n", err.message);
		return 1;
	}
	for (size_t k = 0; k < (size_t) m->n_users * p.factors; k++)
		sum += model->x[k];
	for (size_t k = 0; k < (size_t) m->n_items * p.factors; k++)
		sum += model->y[k];
	qsort(times, p.iterations, sizeof(double), CmpD);
	printf("median %.3f s/iteration; final loss %.9e; factor sum %.9e\n",
		   times[p.iterations / 2], model->loss[p.iterations - 1], sum);
	return 0;
}
