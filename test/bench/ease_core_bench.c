/*
 * ease_core_bench.c
 *	  Benchmarks of ease_core.c outside the server (run by ease_core.sh):
 *
 *	  stress [scale]  concurrent dgemm/dtrsm/dsyrk from 2 and 4 threads, each
 *	                  thread's results compared bit for bit with the same
 *	                  call made alone; shows whether the BLAS may be called
 *	                  from several threads at once.  Built twice: with
 *	                  ease_core.c (its pool lock interposes) and without
 *	                  (-DEASE_BENCH_RAW: the library as Debian ships it).
 *	  tiles N         ease_factor + ease_invert at size N for several tile
 *	                  sizes and inner dimensions, 1 and 2 threads.
 *	  time N [REPS [FILE]]  G + lambda I of a random sparse X (N items, 200 N
 *	                  interactions, lambda 250): ease_gram, ease_factor +
 *	                  ease_invert on 1 and 2 threads, LAPACK dpotrf + dpotri
 *	                  (serial) on the same matrix, the best of REPS runs
 *	                  (interleaved), their ratios, the longest time between
 *	                  two interrupt polls of the main thread, and the
 *	                  agreement of the results; FILE receives the full
 *	                  matrix (float64) for numpy.
 */
#include "core.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>

#ifndef EASE_BENCH_RAW
#include "ease_core.h"
#include "simcore.h"
#endif

static double
Now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64 rng_state = 42;

static double
Uniform(void)
{
	uint64		z = (rng_state += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return (double) ((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------- stress: concurrent BLAS calls against lone ones ---------- */

typedef struct StressArg
{
	int			op,
				n,
				iters;
	double	   *a,
			   *b,
			   *c,
			   *ref;
	long		mismatches;
} StressArg;

static const char *const op_names[] = {"dgemm", "dtrsm", "dsyrk"};

static void
StressOp(int op, int n, const double *a, const double *b, double *c)
{
	if (op == 0)
	{
		memset(c, 0, sizeof(double) * n * n);
		cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
	}
	else if (op == 1)
	{
		memcpy(c, b, sizeof(double) * n * n);
		cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, n, n,
					1.0, a, n, c, n);
	}
	else
	{
		memcpy(c, b, sizeof(double) * n * n);
		cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, n, -1.0, a, n, 1.0, c, n);
	}
}

static void *
StressThread(void *p)
{
	StressArg  *s = (StressArg *) p;

	for (int it = 0; it < s->iters; it++)
	{
		StressOp(s->op, s->n, s->a, s->b, s->c);
		if (memcmp(s->c, s->ref, sizeof(double) * s->n * s->n) != 0)
			s->mismatches++;
	}
	return NULL;
}

static int
Stress(double scale)
{
	static const int sizes[] = {8, 32, 64, 128, 256};
	long		total = 0;

#ifdef EASE_BENCH_RAW
	printf("stress: OpenBLAS as linked (no pool lock), %s\n", openblas_get_config());
#else
	printf("stress: with ease_core.c's pool lock (ease_blas_concurrent() = %s), %s\n",
		   ease_blas_concurrent() ? "true" : "false", openblas_get_config());
#endif
	for (int op = 0; op < 3; op++)
		for (int si = 0; si < (int) lengthof(sizes); si++)
			for (int nt = 2; nt <= 4; nt += 2)
			{
				int			n = sizes[si];
				StressArg	s[4];
				pthread_t	tid[4];
				long		bad = 0;
				/* about the same arithmetic per case: many more small calls */
				int			iters = (int) (scale * 2e9 / ((double) n * n * n + 2e3)) + 1;
				double		t0 = Now();

				for (int t = 0; t < nt; t++)
				{
					s[t].op = op;
					s[t].n = n;
					s[t].iters = iters;
					s[t].mismatches = 0;
					s[t].a = malloc(sizeof(double) * n * n);
					s[t].b = malloc(sizeof(double) * n * n);
					s[t].c = malloc(sizeof(double) * n * n);
					s[t].ref = malloc(sizeof(double) * n * n);
					for (int i = 0; i < n * n; i++)
					{
						s[t].a[i] = Uniform() - 0.5;
						s[t].b[i] = Uniform();
					}
					for (int i = 0; i < n; i++)
						s[t].a[i * n + i] += n;		/* a well-conditioned triangle */
					StressOp(op, n, s[t].a, s[t].b, s[t].ref);	/* alone */
				}
				for (int t = 0; t < nt; t++)
					pthread_create(&tid[t], NULL, StressThread, &s[t]);
				for (int t = 0; t < nt; t++)
				{
					pthread_join(tid[t], NULL);
					bad += s[t].mismatches;
					free(s[t].a);
					free(s[t].b);
					free(s[t].c);
					free(s[t].ref);
				}
				printf("  %s n=%-3d threads=%d calls=%-8ld results differing from the lone call: %ld  (%.1f s)\n",
					   op_names[op], n, nt, (long) iters * nt, bad, Now() - t0);
				fflush(stdout);
				total += bad;
			}
	printf("stress total mismatches: %ld\n", total);
	return 0;
}

#ifndef EASE_BENCH_RAW

/* ---------- the matrix ---------- */

/* G + lambda I of a random sparse X: n items, 10 n users with 20 items each, popularity skewed */
static InteractionMatrix *
RandomInteractions(int32 n)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&core_malloc_alloc, (size_t) 1 << 34, "memory", &err);
	InteractionMatrix *m;

	for (int64 u = 0; u < (int64) 10 * n; u++)
		for (int t = 0; t < 20; t++)
		{
			double		x = Uniform();

			simcore_triples_add(tb, u, (int64) (n * x * x), 1.0, &err);
		}
	if (simcore_matrix_build(&core_malloc_alloc, tb, true, &core_no_interrupts, &m, &err) != CORE_OK)
	{
		fprintf(stderr, "matrix_build: %s\n", err.message);
		exit(1);
	}
	return m;
}

/* ---------- polls ---------- */

static double last_poll,
			max_gap;
static long n_polls;

static bool
TimingPending(void)
{
	double		t = Now();

	if (t - last_poll > max_gap)
		max_gap = t - last_poll;
	last_poll = t;
	n_polls++;
	return false;
}

static const CoreInterrupts timing_hooks = {TimingPending, NULL};

static void
StartPolls(void)
{
	max_gap = 0;
	n_polls = 0;
	last_poll = Now();
}

/* the gap to the end of the phase counts too */
static double
EndPolls(void)
{
	TimingPending();
	return max_gap;
}

static void
Check(CoreStatus st, const CoreError *err, const char *what)
{
	if (st != CORE_OK)
	{
		fprintf(stderr, "%s: %s (%s)\n", what, err->message, err->detail);
		exit(1);
	}
}

extern void dpotrf_(const char *uplo, const blasint *n, double *a, const blasint *lda,
					blasint *info, size_t uplo_len);
extern void dpotri_(const char *uplo, const blasint *n, double *a, const blasint *lda,
					blasint *info, size_t uplo_len);

/* ease_factor + ease_invert of a copy of g on nthreads; seconds, and the poll gaps */
static double last_factor_seconds;

static double
RunEase(const double *g, double *a, int32 n, int nthreads, double *gap_factor,
		double *gap_invert, long *polls)
{
	CoreError	err;
	double		t0;

	memcpy(a, g, sizeof(double) * n * n);
	t0 = Now();
	StartPolls();
	Check(ease_factor(&core_malloc_alloc, a, n, nthreads, &timing_hooks, &err), &err, "ease_factor");
	*gap_factor = EndPolls();
	*polls = n_polls;
	last_factor_seconds = Now() - t0;
	StartPolls();
	Check(ease_invert(&core_malloc_alloc, a, n, nthreads, &timing_hooks, &err), &err, "ease_invert");
	*gap_invert = EndPolls();
	*polls += n_polls;
	return Now() - t0;
}

/* best (least) of the repetitions */
static void
Best(double *best, double t)
{
	if (*best == 0 || t < *best)
		*best = t;
}

static int
Time(int32 n, const char *dump, int reps)
{
	InteractionMatrix *m = RandomInteractions(n);
	int32	   *sub,
				ns;
	size_t		bytes;
	double	   *g,
			   *a1,
			   *a2;
	CoreError	err;
	double		t0,
				t_gram[3] = {0},
				t_ease[3] = {0},
				t_factor[3] = {0},
				gap[3] = {0},
				t_lapack = 0,
				t_potrf = 0,
				worst = 0,
				scale = 0;
	long		polls[3] = {0};
	blasint		nb = n,
				info;
	bool		same = true;

	Check(ease_select_items(&core_malloc_alloc, m, 0, &sub, &ns, &err), &err, "select");
	if (ns != n || !ease_matrix_bytes(n, &bytes))
	{
		fprintf(stderr, "only %d of %d items drawn\n", ns, n);
		return 1;
	}
	g = malloc(bytes);
	a1 = malloc(bytes);
	a2 = malloc(bytes);
	printf("n=%d: %lld interactions, %lld users, lambda 250, tile %d, inner %d, pool lock %s; best of %d\n",
		   n, (long long) m->nnz, (long long) m->n_users, EASE_TILE, EASE_INNER,
		   ease_blas_concurrent() ? "in effect" : "NOT in effect (BLAS tasks on one thread)", reps);
	for (int rep = 0; rep < reps; rep++)
		for (int t = 1; t <= 2; t++)
		{
			memset(g, 0, bytes);
			t0 = Now();
			Check(ease_gram(m, sub, n, 250.0, g, t, &core_no_interrupts, &err), &err, "ease_gram");
			Best(&t_gram[t], Now() - t0);
		}
	for (int c = 0; c < n; c++)
		for (int r = 0; r < c; r++)
			g[(size_t) c * n + r] = g[(size_t) r * n + c];	/* full, for LAPACK and numpy */
	if (dump)
	{
		FILE	   *f = fopen(dump, "wb");

		if (f == NULL || fwrite(g, sizeof(double), (size_t) n * n, f) != (size_t) n * n || fclose(f) != 0)
		{
			fprintf(stderr, "cannot write %s\n", dump);
			return 1;
		}
	}

	/* interleaved, so a change of the machine's load hits all three alike */
	for (int rep = 0; rep < reps; rep++)
	{
		for (int t = 1; t <= 2; t++)
		{
			double		gf,
						gi,
						e = RunEase(g, t == 1 ? a1 : a2, n, t, &gf, &gi, &polls[t]);

			Best(&t_ease[t], e);
			Best(&t_factor[t], last_factor_seconds);
			gap[t] = Max(gap[t], Max(gf, gi));
		}
		for (int c = 0; c < n && same; c++)
			same = memcmp(a1 + (size_t) c * n + c, a2 + (size_t) c * n + c, sizeof(double) * (n - c)) == 0;
		memcpy(a2, g, bytes);
		t0 = Now();
		dpotrf_("L", &nb, a2, &nb, &info, 1);
		Best(&t_potrf, Now() - t0);
		dpotri_("L", &nb, a2, &nb, &info, 1);
		Best(&t_lapack, Now() - t0);
	}
	for (int c = 0; c < n; c++)
		for (int r = c; r < n; r++)
		{
			double		d = fabs(a1[(size_t) c * n + r] - a2[(size_t) c * n + r]);

			worst = d > worst ? d : worst;
			scale = fabs(a2[(size_t) c * n + r]) > scale ? fabs(a2[(size_t) c * n + r]) : scale;
		}
	for (int t = 1; t <= 2; t++)
		printf("  ease_factor + ease_invert, %d thread%s: %8.3f s (factor %.3f s), longest poll gap %.1f ms (%ld polls)\n",
			   t, t == 1 ? " " : "s", t_ease[t], t_factor[t], gap[t] * 1e3, polls[t]);
	printf("  LAPACK dpotrf + dpotri (serial OpenBLAS): %8.3f s (dpotrf %.3f s)\n", t_lapack, t_potrf);
	printf("  ease_gram: %.3f s on 1 thread, %.3f s on 2\n", t_gram[1], t_gram[2]);
	printf("  LAPACK / ease: %.2f on 1 thread, %.2f on 2 threads; 2 threads / 1 thread speed-up %.2f\n",
		   t_lapack / t_ease[1], t_lapack / t_ease[2], t_ease[1] / t_ease[2]);
	printf("  1 and 2 threads give identical bytes: %s; max |ease - LAPACK| / max |P| = %.2g\n",
		   same ? "yes" : "NO", worst / scale);
	printf("result n=%d ease1=%.4f ease2=%.4f lapack=%.4f gram1=%.4f gram2=%.4f\n",
		   n, t_ease[1], t_ease[2], t_lapack, t_gram[1], t_gram[2]);
	fflush(stdout);
	return same ? 0 : 1;
}

/* ease_factor + ease_invert for several tilings */
static int
Tiles(int32 n)
{
	static const int tilings[][2] = {{128, 128}, {128, 256}, {192, 192}, {192, 384}, {256, 256},
	{256, 512}, {320, 320}, {384, 384}};
	size_t		bytes;
	double	   *g,
			   *a,
			   *full;
	double		gf,
				gi;
	long		polls;

	if (!ease_matrix_bytes(n, &bytes))
		return 1;
	g = malloc(bytes);
	a = malloc(bytes);
	full = malloc(bytes);
	/* a random SPD matrix: R R' / n + I, R uniform */
	for (size_t i = 0; i < (size_t) n * n; i++)
		full[i] = Uniform() - 0.5;
	cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, n, 1.0 / n, full, n, 0.0, g, n);
	for (int i = 0; i < n; i++)
		g[(size_t) i * n + i] += 1.0;
	printf("tilings at n=%d (seconds for ease_factor + ease_invert, best of 2)\n", n);
	for (int t = 0; t < (int) lengthof(tilings); t++)
	{
		double		best[3] = {0},
					gap = 0;

		ease_set_tiling(tilings[t][0], tilings[t][1]);
		for (int rep = 0; rep < 2; rep++)
			for (int th = 1; th <= 2; th++)
			{
				Best(&best[th], RunEase(g, a, n, th, &gf, &gi, &polls));
				gap = Max(gap, Max(gf, gi));
			}
		printf("  tile %3d inner %3d: 1 thread %7.3f s, 2 threads %7.3f s, longest poll gap %.1f ms\n",
			   tilings[t][0], tilings[t][1], best[1], best[2], gap * 1e3);
		fflush(stdout);
	}
	ease_set_tiling(0, 0);
	return 0;
}
#endif							/* !EASE_BENCH_RAW */

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "stress") == 0)
		return Stress(argc >= 3 ? atof(argv[2]) : 1.0);
#ifndef EASE_BENCH_RAW
	if (argc >= 3 && strcmp(argv[1], "time") == 0)
		return Time(atoi(argv[2]), argc >= 5 ? argv[4] : NULL, argc >= 4 ? Max(atoi(argv[3]), 1) : 1);
	if (argc >= 3 && strcmp(argv[1], "tiles") == 0)
		return Tiles(atoi(argv[2]));
#endif
	fprintf(stderr, "usage: %s stress [scale] | time N [REPS [FILE]] | tiles N\n", argv[0]);
	return 2;
}
