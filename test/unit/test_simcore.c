/*
 * test_simcore.c
 *	  The similarity core against a direct O(n²) computation in the test:
 *	  every metric on a small random matrix, duplicate rows summed, ties to
 *	  the smaller id, thread-count independence, interrupts, and the memory
 *	  budget.  EASE and RP3beta against hand-checked tiny cases (exact
 *	  inverses, closed forms) and against their definitions computed here in
 *	  long double (a Gauss–Jordan inverse, the RP3beta sum) on ~150 items.
 */
#include "unit.h"

#include <float.h>
#include <stdlib.h>

#include "simcore.h"

#define NU 14
#define NI 11

typedef struct Ref
{
	double		w[NU][NI];		/* summed weights */
	bool		has[NU][NI];
} Ref;

typedef struct RefNb
{
	int			j;
	double		sim;
	int			support;
} RefNb;

static int
CmpRefNb(const void *a, const void *b)
{
	const RefNb *x = a,
			   *y = b;

	if (x->sim != y->sim)
		return x->sim > y->sim ? -1 : 1;
	return x->j - y->j;
}

/* the metric's similarity of i to j from the dense reference, directly from the definitions */
static double
RefSim(const Ref *r, SimMetric metric, const SimParams *p, int i, int j, int *support)
{
	double		c[NU][NI];
	int			sup = 0,
				di = 0,
				dj = 0;
	double		dot = 0,
				ssi = 0,
				ssj = 0,
				sim;

	memset(c, 0, sizeof(c));
	for (int u = 0; u < NU; u++)
		for (int t = 0; t < NI; t++)
			c[u][t] = r->w[u][t];
	if (metric == SIM_ADJUSTED_COSINE)
		for (int u = 0; u < NU; u++)
		{
			double		s = 0;
			int			n = 0;

			for (int t = 0; t < NI; t++)
				if (r->has[u][t])
					s += r->w[u][t], n++;
			for (int t = 0; t < NI; t++)
				if (r->has[u][t])
					c[u][t] -= s / n;
		}
	if (metric == SIM_PEARSON)
		for (int t = 0; t < NI; t++)
		{
			double		s = 0;
			int			n = 0;

			for (int u = 0; u < NU; u++)
				if (r->has[u][t])
					s += r->w[u][t], n++;
			for (int u = 0; u < NU; u++)
				if (r->has[u][t])
					c[u][t] -= s / n;
		}
	if (metric == SIM_BM25)
	{
		double		len[NU],
					mean = 0,
					idf[NI];

		for (int u = 0; u < NU; u++)
		{
			len[u] = 0;
			for (int t = 0; t < NI; t++)
				len[u] += r->w[u][t];
			mean += len[u] / NU;
		}
		for (int t = 0; t < NI; t++)
		{
			int			n = 0;

			for (int u = 0; u < NU; u++)
				n += r->has[u][t];
			idf[t] = log((double) NU) - log(1.0 + n);
		}
		for (int u = 0; u < NU; u++)
		{
			double		norm = (1 - p->bm25_b) + p->bm25_b * len[u] / mean;

			for (int t = 0; t < NI; t++)
				if (r->has[u][t])
					c[u][t] = r->w[u][t] * (p->bm25_k1 + 1) / (p->bm25_k1 * norm + r->w[u][t]) * idf[t];
		}
	}
	for (int u = 0; u < NU; u++)
	{
		di += r->has[u][i];
		dj += r->has[u][j];
		if (r->has[u][i] && r->has[u][j])
		{
			sup++;
			dot += c[u][i] * c[u][j];
		}
		if (r->has[u][i])
			ssi += c[u][i] * c[u][i];
		if (r->has[u][j])
			ssj += c[u][j] * c[u][j];
	}
	*support = sup;
	switch (metric)
	{
		case SIM_JACCARD:
			sim = (double) sup / (di + dj - sup);
			break;
		case SIM_CONDITIONAL:
			sim = (double) sup / di;
			break;
		case SIM_BM25:
			sim = dot;
			break;
		default:
			sim = ssi * ssj > 0 ? dot / sqrt(ssi * ssj) : 0;
			sim = Min(sim, 1.0);
	}
	if (p->shrinkage > 0)
		sim *= sup / (sup + p->shrinkage);
	return sim;
}

/* random rows with duplicates: ids are item 100 + 7*t (so id order = index order), user 1000 - 3*u */
static void
RandomRows(uint64 seed, Ref *r, int64 (*rows)[2], double *w, int *nrows)
{
	uint64		rs = seed;
	int			n = 0;

	memset(r, 0, sizeof(*r));
	for (int u = 0; u < NU; u++)
		for (int t = 0; t < NI; t++)
		{
			int			copies;

			if (unit_rand(&rs) % 100 >= 45)
				continue;
			copies = 1 + (unit_rand(&rs) % 4 == 0);	/* a quarter duplicated */
			for (int c = 0; c < copies; c++)
			{
				rows[n][0] = 1000 - 3 * u;
				rows[n][1] = 100 + 7 * t;
				w[n] = (double) (1 + unit_rand(&rs) % 5) * (c == 0 ? 1 : 0.5);
				r->w[u][t] += w[n];
				r->has[u][t] = true;
				n++;
			}
		}
	*nrows = n;
}

static InteractionMatrix *
BuildFrom(int64 (*rows)[2], const double *w, int n, int order_seed)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	InteractionMatrix *m = NULL;
	int		   *perm = malloc(sizeof(int) * n);
	uint64		rs = (uint64) order_seed;

	for (int i = 0; i < n; i++)
		perm[i] = i;
	for (int i = n - 1; order_seed && i > 0; i--)
	{
		int			j = (int) (unit_rand(&rs) % (uint64) (i + 1)),
					t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	CHECK(tb != NULL);
	for (int i = 0; tb && i < n; i++)
		CHECK_EQ_INT(simcore_triples_add(tb, rows[perm[i]][0], rows[perm[i]][1], w[perm[i]], &err), CORE_OK);
	if (tb)
		CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, true, &core_no_interrupts, &m, &err), CORE_OK);
	free(perm);
	return m;
}

/* user index u of the reference is the user id 1000 - 3u: ascending ids reverse it */
static int
RefUser(const InteractionMatrix *m, int idx)
{
	return (int) ((1000 - m->user_ids[idx]) / 3);
}

static void
CompareMetric(const Ref *r, InteractionMatrix *m, SimMetric metric, int k, int min_support, double shrink)
{
	SimParams	p = {metric, k, min_support, shrink, 1.2, 0.75};
	NeighborLists *nl;
	CoreError	err;

	CHECK_EQ_INT(simcore_compute(&unit_arena, m, &p, 1, &core_no_interrupts, &nl, &err), CORE_OK);
	if (nl == NULL)
		return;
	for (int i = 0; i < NI; i++)
	{
		RefNb		cand[NI];
		int			nc = 0;

		for (int j = 0; j < NI; j++)
		{
			int			sup;
			double		s;

			if (j == i)
				continue;
			s = RefSim(r, metric, &p, i, j, &sup);
			if (sup >= min_support && sup > 0 && s > 0)
				cand[nc++] = (RefNb) {j, s, sup};
		}
		qsort(cand, nc, sizeof(RefNb), CmpRefNb);
		nc = Min(nc, k);
		CHECK_EQ_INT(nl->n_out[i], nc);
		for (int t = 0; t < Min(nc, nl->n_out[i]); t++)
		{
			int64		slot = (int64) i * nl->k_cap + t;

			if (nl->nb[slot] != cand[t].j)
				unit_fail(__FILE__, __LINE__, "%s item %d rank %d: neighbour %d, expected %d (sims %.17g / %.17g)",
						  sim_metric_name(metric), i, t, nl->nb[slot], cand[t].j, nl->sim[slot], cand[t].sim);
			CHECK_NEAR(nl->sim[slot], cand[t].sim, 1e-12);
			CHECK_EQ_INT(nl->support[slot], cand[t].support);
		}
	}
}

/* every metric vs the O(n²) definitions, with k cutting the lists, min_support and shrinkage */
static void
test_sim_metrics_vs_brute_force(void)
{
	static int64 rows[NU * NI * 2][2];
	static double w[NU * NI * 2];
	Ref			r;
	int			n;
	const SimMetric metrics[] = {SIM_COSINE, SIM_JACCARD, SIM_ADJUSTED_COSINE, SIM_PEARSON,
	SIM_CONDITIONAL, SIM_BM25};

	RandomRows(11, &r, rows, w, &n);
	for (int mi = 0; mi < lengthof(metrics); mi++)
	{
		const int	ks[] = {3, 50};

		for (int ki = 0; ki < 2; ki++)
		{
			/* the metric reweights the matrix in place: a fresh one each time */
			CompareMetric(&r, BuildFrom(rows, w, n, 0), metrics[mi], ks[ki], 1, 0);
			CompareMetric(&r, BuildFrom(rows, w, n, 0), metrics[mi], ks[ki], 2, 3.0);
		}
	}
}

/* duplicate (user, item) rows are summed, whatever their order; ids renumbered ascending */
static void
test_sim_duplicates_summed(void)
{
	static int64 rows[NU * NI * 2][2];
	static double w[NU * NI * 2];
	Ref			r;
	int			n,
				pairs = 0;
	InteractionMatrix *m,
			   *m2;

	RandomRows(5, &r, rows, w, &n);
	m = BuildFrom(rows, w, n, 0);
	m2 = BuildFrom(rows, w, n, 99);	/* the same rows shuffled */
	if (m == NULL || m2 == NULL)
		return;
	for (int u = 0; u < NU; u++)
		for (int t = 0; t < NI; t++)
			pairs += r.has[u][t];
	CHECK_EQ_INT(m->raw_rows, n);
	CHECK_EQ_INT(m->nnz, pairs);
	CHECK(n > pairs);			/* the data has duplicates */
	for (int i = 1; i < m->n_items; i++)
		CHECK(m->item_ids[i - 1] < m->item_ids[i]);
	for (int u = 0; u < m->n_users; u++)
		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
		{
			int			ru = RefUser(m, u),
						rt = (int) ((m->item_ids[m->u_item[a]] - 100) / 7);

			CHECK(r.has[ru][rt]);
			CHECK(m->u_w[a] == r.w[ru][rt]);
			if (a > m->u_ptr[u])
				CHECK(m->u_item[a - 1] < m->u_item[a]);
		}
	CHECK_EQ_INT(m2->nnz, m->nnz);
	CHECK(memcmp(m->u_w, m2->u_w, sizeof(double) * m->nnz) == 0);
	CHECK(memcmp(m->i_w, m2->i_w, sizeof(double) * m->nnz) == 0);
	CHECK(memcmp(m->i_user, m2->i_user, sizeof(int32) * m->nnz) == 0);
}

/* equal similarities are ranked by the smaller item id, whatever the order the rows came in */
static void
test_sim_ties_smaller_index(void)
{
	/* item 7 co-occurs once with each of items 50, 10, 40, 20, 30 (all jaccard 1/2), added in that order */
	const int64 others[] = {50, 10, 40, 20, 30};
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	InteractionMatrix *m;
	NeighborLists *nl;
	SimParams	p = {SIM_JACCARD, 2, 1, 0, 1.2, 0.75};
	int			i7 = -1;

	for (int t = 0; t < 5; t++)
	{
		simcore_triples_add(tb, 100 - t, others[t], 1, &err);
		simcore_triples_add(tb, 100 - t, 7, 1, &err);
		simcore_triples_add(tb, 200 + t, others[t], 1, &err);
	}
	CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, true, &core_no_interrupts, &m, &err), CORE_OK);
	CHECK_EQ_INT(simcore_compute(&unit_arena, m, &p, 1, &core_no_interrupts, &nl, &err), CORE_OK);
	for (int i = 0; i < m->n_items; i++)
		if (m->item_ids[i] == 7)
			i7 = i;
	CHECK_EQ_INT(i7, 0);
	CHECK_EQ_INT(nl->n_out[i7 < 0 ? 0 : i7], 2);
	if (i7 != 0 || nl->n_out[0] != 2)
		return;					/* the neighbour slots below would not be filled */
	CHECK_EQ_INT(m->item_ids[nl->nb[0]], 10);
	CHECK_EQ_INT(m->item_ids[nl->nb[1]], 20);
	CHECK_NEAR(nl->sim[0], 1.0 / 6.0, 0);	/* |U(7)| = 5, |U(10)| = 2, support 1 */
}

static int	polls,
			pending_left;
static bool
CountingPending(void)
{
	polls++;
	return pending_left > 0;
}
static void
CountingProcess(void)
{
	pending_left--;				/* returns: the run resumes */
}

/* the result does not depend on the thread count; interrupts are polled and a returning one resumes the run */
static void
test_sim_threads_and_interrupts(void)
{
	static int64 rows[NU * NI * 2][2];
	static double w[NU * NI * 2];
	const CoreInterrupts hooks = {CountingPending, CountingProcess};
	Ref			r;
	int			n;
	SimParams	p = {SIM_COSINE, 4, 1, 0, 1.2, 0.75};
	NeighborLists *a,
			   *b;
	CoreError	err;

	RandomRows(3, &r, rows, w, &n);
	CHECK_EQ_INT(simcore_compute(&unit_arena, BuildFrom(rows, w, n, 0), &p, 1, &core_no_interrupts, &a, &err), CORE_OK);
	/* 3 threads: the split of tasks varies, the result must not */
	CHECK_EQ_INT(simcore_compute(&unit_arena, BuildFrom(rows, w, n, 0), &p, 3, &core_no_interrupts, &b, &err), CORE_OK);
	CHECK(memcmp(a->n_out, b->n_out, sizeof(int32) * NI) == 0);
	CHECK(memcmp(a->nb, b->nb, sizeof(int32) * NI * a->k_cap) == 0);
	CHECK(memcmp(a->sim, b->sim, sizeof(double) * NI * a->k_cap) == 0);

	/*
	 * one thread, so the polls are deterministic: at least a poll before
	 * each of the 3 tasks (of 4 items) and one per pending interrupt, each
	 * processed, after which the run resumes with a task before polling
	 * again (the reweighting phases poll too)
	 */
	polls = 0;
	pending_left = 2;
	CHECK_EQ_INT(simcore_compute(&unit_arena, BuildFrom(rows, w, n, 0), &p, 1, &hooks, &b, &err), CORE_OK);
	CHECK(polls >= 4);
	CHECK_EQ_INT(pending_left, 0);
	CHECK(memcmp(a->nb, b->nb, sizeof(int32) * NI * a->k_cap) == 0);
	CHECK(memcmp(a->sim, b->sim, sizeof(double) * NI * a->k_cap) == 0);

	/* matrix_build polls too */
	{
		TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
		InteractionMatrix *m;

		for (int i = 0; i < 20000; i++)
			simcore_triples_add(tb, i % 97, i % 89, 1, &err);
		polls = 0;
		pending_left = 0;
		CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, false, &hooks, &m, &err), CORE_OK);
		CHECK(polls > 0);
		CHECK(m->i_ptr == NULL);
		CHECK_EQ_INT(m->nnz, 97 * 89 < 20000 ? 97 * 89 : 20000);
	}
}

/* the budget: the server's case (300 x 300 rows at 1 MB) gives today's message, detail and hint */
static void
test_sim_memory_budget(void)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, 1024 * 1024, "maintenance_work_mem", &err);
	CoreStatus	st = CORE_OK;

	for (int u = 1; u <= 300 && st == CORE_OK; u++)
		for (int i = 1; i <= 300 && st == CORE_OK; i++)
			st = simcore_triples_add(tb, u, i, 1, &err);
	CHECK_EQ_INT(st, CORE_LIMIT);
	CHECK_STR(err.message, "interaction data does not fit in maintenance_work_mem");
	CHECK_STR(err.detail, "After 32768 rows the interaction matrix needs about 2 MB; the limit is 1 MB.");
	CHECK_STR(err.hint, "Raise maintenance_work_mem (for example SET maintenance_work_mem = '4MB') and retry.");

	/*
	 * The charge by hand, at the flush of rows n+1 .. n+8192: (n + 8192) x 28
	 * bytes of rows, 48 bytes per distinct id (600), and per id map a direct
	 * array grown by doubling to 512 slots (2 KB), 1024 ids (8 KB) and an
	 * empty 2048-slot hash (32 KB): 114816 bytes besides the rows.  At a
	 * limit of 1250000 bytes, n = 24576 needs 1032320 (fits) and n = 32768
	 * needs 1261696 (does not).
	 */
	tb = simcore_triples_create(&unit_arena, 1250000, "maintenance_work_mem", &err);
	st = CORE_OK;
	for (int u = 1; u <= 300 && st == CORE_OK; u++)
		for (int i = 1; i <= 300 && st == CORE_OK; i++)
			st = simcore_triples_add(tb, u, i, 1, &err);
	CHECK_EQ_INT(st, CORE_LIMIT);
	CHECK_STR(err.detail, "After 32768 rows the interaction matrix needs about 2 MB; the limit is 1 MB.");
	tb = simcore_triples_create(&unit_arena, 1262000, "maintenance_work_mem", &err);
	st = CORE_OK;
	for (int u = 1; u <= 300 && st == CORE_OK; u++)
		for (int i = 1; i <= 300 && st == CORE_OK; i++)
			st = simcore_triples_add(tb, u, i, 1, &err);
	CHECK_EQ_INT(st, CORE_LIMIT);
	CHECK_STR(err.detail, "After 40960 rows the interaction matrix needs about 2 MB; the limit is 1 MB.");

	/* hashed ids (negative, huge) are charged too */
	tb = simcore_triples_create(&unit_arena, 4 * 1024 * 1024, "work_mem", &err);
	st = CORE_OK;
	for (int64 r = 0; r < 1000000 && st == CORE_OK; r++)
		st = simcore_triples_add(tb, -r, (int64) 1 << 40 | r, 1, &err);
	CHECK_EQ_INT(st, CORE_LIMIT);
	CHECK_STR(err.message, "interaction data does not fit in work_mem");

	/* an allocator that fails is CORE_NOMEM, not a crash */
	tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	unit_arena_fail_after(600000);
	st = CORE_OK;
	for (int64 r = 0; r < 1000000 && st == CORE_OK; r++)
		st = simcore_triples_add(tb, r, r, 1, &err);
	CHECK_EQ_INT(st, CORE_NOMEM);
	unit_arena_fail_after(0);
}

/* the hashed id path gives the same matrix as the direct one (ids shifted beyond the direct array) */
static void
test_sim_hashed_ids(void)
{
	CoreError	err;
	TripleBuffer *a = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "m", &err),
			   *b = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "m", &err);
	InteractionMatrix *ma,
			   *mb;
	uint64		rs = 1;

	for (int r = 0; r < 30000; r++)
	{
		int64		u = (int64) (unit_rand(&rs) % 5000),
					i = (int64) (unit_rand(&rs) % 3000);
		double		w = 1 + (double) (unit_rand(&rs) % 3);

		simcore_triples_add(a, u, i, w, &err);
		simcore_triples_add(b, u - ((int64) 1 << 50), -i - 1, w, &err);
	}
	CHECK_EQ_INT(simcore_matrix_build(&unit_arena, a, true, &core_no_interrupts, &ma, &err), CORE_OK);
	CHECK_EQ_INT(simcore_matrix_build(&unit_arena, b, true, &core_no_interrupts, &mb, &err), CORE_OK);
	CHECK_EQ_INT(ma->n_users, mb->n_users);
	CHECK_EQ_INT(ma->n_items, mb->n_items);
	CHECK_EQ_INT(ma->nnz, mb->nnz);
	for (int u = 0; u < ma->n_users; u++)
		CHECK_EQ_INT(ma->user_ids[u] - ((int64) 1 << 50), mb->user_ids[u]);
	/* items reversed: -i - 1 ascending is i descending */
	for (int i = 0; i < ma->n_items; i++)
		CHECK_EQ_INT(-ma->item_ids[i] - 1, mb->item_ids[ma->n_items - 1 - i]);
	CHECK(memcmp(ma->u_ptr, mb->u_ptr, sizeof(int64) * (ma->n_users + 1)) == 0);
}

/* ---------- EASE and RP3beta ---------- */

/*
 * A dense user x item reference of summed weights, built into a matrix with
 * user id u + 1 and item id 10 (i + 1), so index order is id order, and rows
 * added last user first (the core's order must not depend on it).
 */
typedef struct Dense
{
	int			nu,
				ni;
	double	   *w;				/* [nu * ni], summed weights */
	bool	   *has;			/* [nu * ni] */
} Dense;

#define DW(d, u, i) ((d)->w[(size_t) (u) * (d)->ni + (i)])
#define DH(d, u, i) ((d)->has[(size_t) (u) * (d)->ni + (i)])

static void
DenseInit(Dense *d, int nu, int ni)
{
	d->nu = nu;
	d->ni = ni;
	d->w = calloc((size_t) nu * ni, sizeof(double));
	d->has = calloc((size_t) nu * ni, sizeof(bool));
}

static void
DenseFree(Dense *d)
{
	free(d->w);
	free(d->has);
}

static void
DenseSet(Dense *d, int u, int i, double w)
{
	DW(d, u, i) = w;
	DH(d, u, i) = true;
}

/* the matrix of d; a weight w with `split` set is added as two rows 0.25 w and 0.75 w */
static InteractionMatrix *
DenseBuild(const Dense *d, bool split)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	InteractionMatrix *m = NULL;

	for (int u = d->nu - 1; u >= 0; u--)
		for (int i = d->ni - 1; i >= 0; i--)
		{
			if (!DH(d, u, i))
				continue;
			if (split && (u + i) % 3 == 0)
			{
				CHECK_EQ_INT(simcore_triples_add(tb, u + 1, 10 * (i + 1), 0.25 * DW(d, u, i), &err), CORE_OK);
				CHECK_EQ_INT(simcore_triples_add(tb, u + 1, 10 * (i + 1), 0.75 * DW(d, u, i), &err), CORE_OK);
			}
			else
				CHECK_EQ_INT(simcore_triples_add(tb, u + 1, 10 * (i + 1), DW(d, u, i), &err), CORE_OK);
		}
	CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, true, &core_no_interrupts, &m, &err), CORE_OK);
	return m;
}

static int
DenseSupport(const Dense *d, int i, int j)
{
	int			n = 0;

	for (int u = 0; u < d->nu; u++)
		n += DH(d, u, i) && DH(d, u, j);
	return n;
}

/*
 * EASE by the definition, in long double: G + λI over the covered items
 * (covered NULL: all), inverted by Gauss–Jordan with partial pivoting,
 * B[i][j] = -P[i][j] / P[j][j] into ref[i * ni + j]; NAN where i == j or an
 * item is not covered.
 */
static void
RefEase(const Dense *d, double lambda, const bool *covered, double *ref)
{
	int			ni = d->ni,
				n = 0;
	int		   *idx = malloc(sizeof(int) * ni);
	long double *g,
			   *inv;

	for (int i = 0; i < ni; i++)
		if (covered == NULL || covered[i])
			idx[n++] = i;
	g = calloc((size_t) n * n, sizeof(long double));
	inv = calloc((size_t) n * n, sizeof(long double));
	for (int r = 0; r < n; r++)
	{
		for (int c = 0; c < n; c++)
			for (int u = 0; u < d->nu; u++)
				g[r * n + c] += (long double) DW(d, u, idx[r]) * DW(d, u, idx[c]);
		g[r * n + r] += lambda;
		inv[r * n + r] = 1;
	}
	for (int c = 0; c < n; c++)
	{
		int			piv = c;
		long double f;

		for (int r = c + 1; r < n; r++)
			if (fabsl(g[r * n + c]) > fabsl(g[piv * n + c]))
				piv = r;
		for (int t = 0; t < n; t++)
		{
			long double x = g[c * n + t],
						y = inv[c * n + t];

			g[c * n + t] = g[piv * n + t];
			inv[c * n + t] = inv[piv * n + t];
			g[piv * n + t] = x;
			inv[piv * n + t] = y;
		}
		f = g[c * n + c];
		for (int t = 0; t < n; t++)
		{
			g[c * n + t] /= f;
			inv[c * n + t] /= f;
		}
		for (int r = 0; r < n; r++)
		{
			if (r == c || g[r * n + c] == 0)
				continue;
			f = g[r * n + c];
			for (int t = 0; t < n; t++)
			{
				g[r * n + t] -= f * g[c * n + t];
				inv[r * n + t] -= f * inv[c * n + t];
			}
		}
	}
	for (int t = 0; t < ni * ni; t++)
		ref[t] = NAN;
	for (int r = 0; r < n; r++)
		for (int c = 0; c < n; c++)
			if (r != c)
				ref[idx[r] * ni + idx[c]] = (double) (-inv[r * n + c] / inv[c * n + c]);
	free(idx);
	free(g);
	free(inv);
}

/* RP3beta by the definition, in long double, over the dense weights; NAN on the diagonal */
static void
RefRp3(const Dense *d, double alpha, double beta, double *ref)
{
	int			ni = d->ni;
	long double *s = calloc(ni, sizeof(long double)),
			   *t = calloc(d->nu, sizeof(long double));

	for (int u = 0; u < d->nu; u++)
		for (int i = 0; i < ni; i++)
		{
			s[i] += DW(d, u, i);
			t[u] += DW(d, u, i);
		}
	for (int i = 0; i < ni; i++)
		for (int j = 0; j < ni; j++)
		{
			long double w = 0;

			if (i == j)
			{
				ref[i * ni + j] = NAN;
				continue;
			}
			for (int u = 0; u < d->nu; u++)
				if (DW(d, u, i) > 0 && DW(d, u, j) > 0)
					w += powl(DW(d, u, i) / s[i], alpha) * powl(DW(d, u, j) / t[u], alpha);
			ref[i * ni + j] = w > 0 ? (double) (w / powl(s[j], beta)) : 0.0;
		}
	free(s);
	free(t);
}

/*
 * The lists against a reference: for every item, the candidates are the j
 * with a non-NAN reference, support >= min_support (>= 1) and a positive
 * shrunk similarity, best first with ties to the smaller j.  The list must
 * have the expected length; rank by rank its similarity must match the
 * expected one within rel_tol (relative), the neighbour it names must have
 * that reference value and support, and the list must be in order (ties
 * by the smaller index, exactly).  Near-ties may swap between neighbours
 * whose reference values agree within the tolerance.
 */
static void
CheckLists(const char *what, const NeighborLists *nl, const Dense *d, const double *ref, int k,
		   int min_support, double shrink, double rel_tol)
{
	int			ni = d->ni;
	RefNb	   *cand = malloc(sizeof(RefNb) * ni);

	CHECK_EQ_INT(nl->n_items, ni);
	for (int i = 0; i < ni && nl->n_items == ni; i++)
	{
		int			nc = 0;

		for (int j = 0; j < ni; j++)
		{
			int			sup = DenseSupport(d, i, j);
			double		sim = ref[i * ni + j];

			if (isnan(sim) || sup < Max(1, min_support))
				continue;
			if (shrink > 0)
				sim *= sup / (sup + shrink);
			if (sim > 0)
				cand[nc++] = (RefNb) {j, sim, sup};
		}
		qsort(cand, nc, sizeof(RefNb), CmpRefNb);
		nc = Min(nc, k);
		if (nl->n_out[i] != nc)
			unit_fail(__FILE__, __LINE__, "%s: item %d has %d neighbours, expected %d", what, i, nl->n_out[i], nc);
		for (int t = 0; t < Min(nc, nl->n_out[i]); t++)
		{
			int64		slot = (int64) i * nl->k_cap + t;
			int			j = nl->nb[slot];
			double		got = nl->sim[slot];
			double		want_j;
			int			sup_j;

			if (!(fabs(got - cand[t].sim) <= rel_tol * fabs(cand[t].sim) + 1e-300))
				unit_fail(__FILE__, __LINE__, "%s: item %d rank %d: similarity %.17g, expected %.17g (neighbour %d, expected %d)",
						  what, i, t, got, cand[t].sim, j, cand[t].j);
			if (j < 0 || j >= ni || j == i)
			{
				unit_fail(__FILE__, __LINE__, "%s: item %d rank %d: neighbour %d", what, i, t, j);
				continue;
			}
			sup_j = DenseSupport(d, i, j);
			want_j = ref[i * ni + j] * (shrink > 0 ? sup_j / (sup_j + shrink) : 1.0);
			if (!(fabs(got - want_j) <= rel_tol * fabs(want_j)) || sup_j < min_support)
				unit_fail(__FILE__, __LINE__, "%s: item %d rank %d: neighbour %d has similarity %.17g, its reference is %.17g (support %d)",
						  what, i, t, j, got, want_j, sup_j);
			CHECK_EQ_INT(nl->support[slot], sup_j);
			if (t > 0 && !(nl->sim[slot - 1] > got || (nl->sim[slot - 1] == got && nl->nb[slot - 1] < j)))
				unit_fail(__FILE__, __LINE__, "%s: item %d ranks %d and %d out of order", what, i, t - 1, t);
		}
	}
	free(cand);
}

static SimParams
Rp3Params(double alpha, double beta, int k, int min_support, double shrink)
{
	SimParams	p = {SIM_RP3BETA, k, min_support, shrink, 1.2, 0.75};

	p.rp3_alpha = alpha;
	p.rp3_beta = beta;
	return p;
}

static SimParams
EaseParams(double lambda, int k, int min_support, double shrink, int32 max_items)
{
	SimParams	p = {SIM_EASE, k, min_support, shrink, 1.2, 0.75};

	p.ease_lambda = lambda;
	p.max_items = max_items;
	return p;
}

static NeighborLists *
Compute(InteractionMatrix *m, const SimParams *p, int nthreads)
{
	NeighborLists *nl = NULL;
	CoreError	err;
	CoreStatus	st;

	if (m == NULL)
		return NULL;
	st = simcore_compute(&unit_arena, m, p, nthreads, &core_no_interrupts, &nl, &err);
	if (st != CORE_OK)
		unit_fail(__FILE__, __LINE__, "simcore_compute(%s): %s", sim_metric_name(p->metric), err.message);
	return nl;
}

/* the neighbour of item i at rank t, its similarity and support, or -1 */
static int
Nb(const NeighborLists *nl, int i, int t, double *sim, int *sup)
{
	int64		slot = (int64) i * nl->k_cap + t;

	if (t >= nl->n_out[i])
		return -1;
	if (sim)
		*sim = nl->sim[slot];
	if (sup)
		*sup = nl->support[slot];
	return nl->nb[slot];
}

/*
 * Three items A, B, C; users {A, B}, {A, B, C}, {B, C}, weight 1.  s = (2, 3,
 * 2), t = (2, 3, 2).  With α = 1, β = 0.5:
 *   W[A][B] = (1/2·1/2 + 1/2·1/3) / √3 = (5/12) / √3	W[A][C] = (1/2·1/3) / √2
 *   W[B][A] = (1/3·1/2 + 1/3·1/3) / √2 = W[B][C]		(a tie: A first)
 *   W[C][A] = (1/2·1/3) / √2,  W[C][B] = (5/12) / √3
 * With α = 2, β = 0: W[A][B] = 1/16 + 1/36, W[B][A] = 1/36 + 1/81.
 */
static void
test_rp3beta_hand(void)
{
	Dense		d;
	SimParams	p = Rp3Params(1.0, 0.5, 5, 1, 0);
	NeighborLists *nl;
	double		sim;
	int			sup;

	DenseInit(&d, 3, 3);
	DenseSet(&d, 0, 0, 1);
	DenseSet(&d, 0, 1, 1);
	DenseSet(&d, 1, 0, 1);
	DenseSet(&d, 1, 1, 1);
	DenseSet(&d, 1, 2, 1);
	DenseSet(&d, 2, 1, 1);
	DenseSet(&d, 2, 2, 1);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	CHECK_EQ_INT(nl->n_out[0], 2);
	CHECK_EQ_INT(Nb(nl, 0, 0, &sim, &sup), 1);
	CHECK_NEAR(sim, (5.0 / 12) / sqrt(3), 1e-16);
	CHECK_EQ_INT(sup, 2);
	CHECK_EQ_INT(Nb(nl, 0, 1, &sim, &sup), 2);
	CHECK_NEAR(sim, (1.0 / 6) / sqrt(2), 1e-16);
	CHECK_EQ_INT(sup, 1);
	CHECK_EQ_INT(Nb(nl, 1, 0, &sim, NULL), 0);
	CHECK_NEAR(sim, (5.0 / 18) / sqrt(2), 1e-16);
	CHECK_EQ_INT(Nb(nl, 1, 1, &sim, NULL), 2);
	CHECK_NEAR(sim, (5.0 / 18) / sqrt(2), 1e-16);
	CHECK(nl->sim[nl->k_cap] == nl->sim[nl->k_cap + 1]);	/* an exact tie */
	CHECK_EQ_INT(Nb(nl, 2, 0, &sim, NULL), 1);
	CHECK_NEAR(sim, (5.0 / 12) / sqrt(3), 1e-16);
	CHECK_EQ_INT(Nb(nl, 2, 1, &sim, NULL), 0);
	CHECK_NEAR(sim, (1.0 / 6) / sqrt(2), 1e-16);
	CHECK_EQ_INT(nl->pairs, 6);

	/* k = 1 keeps the smaller of the tied A and C; α = 2, β = 0 */
	p = Rp3Params(2.0, 0, 1, 1, 0);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	CHECK_EQ_INT(Nb(nl, 0, 0, &sim, NULL), 1);
	CHECK_NEAR(sim, 1.0 / 16 + 1.0 / 36, 1e-16);
	CHECK_EQ_INT(Nb(nl, 1, 0, &sim, NULL), 0);
	CHECK_NEAR(sim, 1.0 / 36 + 1.0 / 81, 1e-16);

	/* shrinkage 2 scales by support / (support + 2); min_support 2 drops A-C */
	p = Rp3Params(1.0, 0.5, 5, 2, 2.0);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	CHECK_EQ_INT(nl->n_out[0], 1);
	CHECK_EQ_INT(Nb(nl, 0, 0, &sim, NULL), 1);
	CHECK_NEAR(sim, (5.0 / 12) / sqrt(3) * 0.5, 1e-16);
	CHECK_EQ_INT(nl->n_out[1], 2);
	CHECK_EQ_INT(nl->n_out[2], 1);
	DenseFree(&d);
}

/*
 * One user with weights 1, 2, 3 (t = 6, s(i) = w(i)): W[i][j] =
 * (w_j / 6)^α / w_j^β, whatever i.  An item whose weights are all 0 and a
 * user whose weights are all 0 contribute nothing (no NaN); a single item
 * and an empty matrix have no neighbours.
 */
static void
test_rp3beta_single_and_zero(void)
{
	Dense		d;
	SimParams	p = Rp3Params(1.5, 0.5, 5, 1, 0);
	NeighborLists *nl;
	double		sim;

	DenseInit(&d, 1, 3);
	DenseSet(&d, 0, 0, 1);
	DenseSet(&d, 0, 1, 2);
	DenseSet(&d, 0, 2, 3);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	for (int i = 0; i < 3; i++)
	{
		int			t = 0;

		CHECK_EQ_INT(nl->n_out[i], 2);
		for (int j = 2; j >= 0; j--)
		{
			if (j == i)
				continue;
			CHECK_EQ_INT(Nb(nl, i, t, &sim, NULL), j);
			CHECK_NEAR(sim, pow((j + 1) / 6.0, 1.5) / sqrt(j + 1), 1e-15);
			t++;
		}
	}
	DenseFree(&d);

	/* item 2 has weight 0 everywhere; user 2's weights are 0 */
	DenseInit(&d, 3, 3);
	DenseSet(&d, 0, 0, 1);
	DenseSet(&d, 0, 1, 1);
	DenseSet(&d, 0, 2, 0);
	DenseSet(&d, 1, 0, 2);
	DenseSet(&d, 1, 2, 0);
	DenseSet(&d, 2, 0, 0);
	DenseSet(&d, 2, 1, 0);
	p = Rp3Params(1.0, 1.0, 5, 1, 0);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	/* s = (3, 1, 0), t = (2, 2, 0): W[0][1] = (1/3)(1/2) / 1, W[1][0] = (1/1)(1/2) / 3 */
	CHECK_EQ_INT(nl->n_out[0], 1);
	CHECK_EQ_INT(Nb(nl, 0, 0, &sim, NULL), 1);
	CHECK_NEAR(sim, 1.0 / 6, 1e-16);
	CHECK_EQ_INT(nl->n_out[1], 1);
	CHECK_EQ_INT(Nb(nl, 1, 0, &sim, NULL), 0);
	CHECK_NEAR(sim, 1.0 / 6, 1e-16);
	CHECK_EQ_INT(nl->n_out[2], 0);
	for (int t = 0; t < nl->n_items * nl->k_cap; t++)
		CHECK(!isnan(nl->sim[t]));
	DenseFree(&d);

	/* a single item; no rows at all */
	DenseInit(&d, 2, 1);
	DenseSet(&d, 0, 0, 1);
	DenseSet(&d, 1, 0, 4);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	CHECK(nl != NULL && nl->n_items == 1 && nl->n_out[0] == 0 && nl->pairs == 0);
	DenseFree(&d);
	DenseInit(&d, 0, 0);
	nl = Compute(DenseBuild(&d, false), &p, 2);
	CHECK(nl != NULL && nl->n_items == 0 && nl->pairs == 0);
	DenseFree(&d);
}

/* a negative weight is CORE_RANGE naming rp3beta, the user, the item and the weight; bad options are CORE_INVALID */
static void
test_rp3beta_ease_errors(void)
{
	Dense		d;
	SimParams	p = Rp3Params(1.0, 0.5, 5, 1, 0);
	NeighborLists *nl;
	CoreError	err;

	DenseInit(&d, 2, 3);
	DenseSet(&d, 0, 0, 1);
	DenseSet(&d, 0, 1, 2);
	DenseSet(&d, 1, 1, 1);
	DenseSet(&d, 1, 2, -0.5);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_RANGE);
	CHECK(nl == NULL);
	CHECK_STR(err.message, "rp3beta needs weights >= 0");
	CHECK_STR(err.detail, "The weight of user 2 for item 30 is -0.5.");
	CHECK(strstr(err.hint, "negative weights") != NULL);

	/* EASE takes any finite weights */
	p = EaseParams(1.0, 5, 1, 0, 0);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_OK);

	/* the options */
	p = Rp3Params(0, 0.5, 5, 1, 0);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_INVALID);
	CHECK_STR(err.message, "rp3_alpha must be a finite number > 0, got 0");
	p = Rp3Params(INFINITY, 0.5, 5, 1, 0);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_INVALID);
	CHECK_STR(err.message, "rp3_alpha must be a finite number > 0, got Infinity");
	p = Rp3Params(1, -0.1, 5, 1, 0);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_INVALID);
	CHECK_STR(err.message, "rp3_beta must be a finite number >= 0, got -0.1");
	p = Rp3Params(1, NAN, 5, 1, 0);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_INVALID);
	CHECK_STR(err.message, "rp3_beta must be a finite number >= 0, got NaN");
	p = EaseParams(0, 5, 1, 0, 0);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_INVALID);
	CHECK_STR(err.message, "ease_lambda must be a finite number > 0, got 0");
	p = EaseParams(NAN, 5, 1, 0, 0);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_INVALID);
	DenseFree(&d);

	/* a tiny total weight under a large beta would overflow: an error, not an infinite similarity */
	DenseInit(&d, 2, 2);
	DenseSet(&d, 0, 0, 1);
	DenseSet(&d, 0, 1, 1e-200);
	DenseSet(&d, 1, 1, 1e-200);
	p = Rp3Params(1, 2, 5, 1, 0);
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_RANGE);
	CHECK_STR(err.message, "an rp3beta similarity to item 20 is out of range");
	p = Rp3Params(1, 1, 5, 1, 0);	/* 1 / 2e-200 fits */
	CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, false), &p, 1, &core_no_interrupts, &nl, &err), CORE_OK);
	DenseFree(&d);

	/* an allocator running dry mid-EASE is CORE_NOMEM, not a crash */
	DenseInit(&d, 30, 40);
	for (int u = 0; u < 30; u++)
		for (int i = 0; i < 40; i++)
			if ((u * 7 + i * 3) % 5 == 0)
				DenseSet(&d, u, i, 1);
	{
		InteractionMatrix *m = DenseBuild(&d, false);

		p = EaseParams(1.0, 5, 1, 0, 0);
		unit_arena_fail_after(8000);
		CHECK_EQ_INT(simcore_compute(&unit_arena, m, &p, 1, &core_no_interrupts, &nl, &err), CORE_NOMEM);
		unit_arena_fail_after(0);
	}
	DenseFree(&d);
}

/*
 * A random matrix of nu x ni, item popularities spread out, weights in
 * (0, 4] (binary: 1) with some exact zeros; every item has a user.
 */
static void
RandomDense(Dense *d, int nu, int ni, uint64 seed, bool binary)
{
	uint64		rs = seed;

	DenseInit(d, nu, ni);
	for (int i = 0; i < ni; i++)
	{
		double		pop = 0.01 + 0.12 * unit_uniform(&rs) * unit_uniform(&rs);
		bool		any = false;

		for (int u = 0; u < nu || !any; u++)
			if (u >= nu || unit_uniform(&rs) < pop)
			{
				int			uu = u < nu ? u : (int) (unit_rand(&rs) % nu);

				DenseSet(d, uu, i, binary ? 1.0 : (unit_rand(&rs) % 16 == 0 ? 0.0 : 0.25 * (1 + unit_rand(&rs) % 16)));
				any = true;
			}
	}
}

/* RP3beta against the definition on ~150 items, for several α, β, k, min_support and shrinkage */
static void
test_rp3beta_vs_brute_force(void)
{
	const struct
	{
		double		alpha,
					beta;
		int			k,
					min_support;
		double		shrink;
		bool		binary;
	}			cases[] = {
		{1.0, 0.5, 10, 1, 0, false},
		{1.0, 0.5, 100, 1, 0, true},
		{0.5, 0.0, 20, 2, 3.0, false},
		{2.0, 1.5, 5, 1, 10.0, false},
		{0.8, 0.3, 200, 3, 0, true},
	};

	for (int c = 0; c < lengthof(cases); c++)
	{
		Dense		d;
		double	   *ref;
		SimParams	p = Rp3Params(cases[c].alpha, cases[c].beta, cases[c].k, cases[c].min_support, cases[c].shrink);
		NeighborLists *nl;
		char		what[64];

		RandomDense(&d, 400, 150, 1000 + c, cases[c].binary);
		ref = malloc(sizeof(double) * d.ni * d.ni);
		RefRp3(&d, cases[c].alpha, cases[c].beta, ref);
		nl = Compute(DenseBuild(&d, true), &p, 2);
		snprintf(what, sizeof(what), "rp3beta case %d", c);
		if (nl)
			CheckLists(what, nl, &d, ref, cases[c].k, cases[c].min_support, cases[c].shrink, 1e-12);
		free(ref);
		DenseFree(&d);
	}
}

/*
 * Three items with G + I = L L', L = [[2,0,0],[1,2,0],[1,0,2]] (λ = 1,
 * users {0,1,2}, {0,1}, {0,2}, {1}, {1}, {2}, {2}): every step of any
 * Cholesky and inverse is exact in binary, and
 *   P = L^-T L^-1 = [[3/8, -1/8, -1/8], [-1/8, 1/4, 0], [-1/8, 0, 1/4]],
 *   B[0][1] = B[0][2] = 1/2 (a tie), B[1][0] = B[2][0] = 1/3,
 *   B[1][2] = B[2][1] = 0 (support 1, but not positive).
 */
static void
test_ease_hand(void)
{
	Dense		d;
	SimParams	p = EaseParams(1.0, 5, 1, 0, 0);
	NeighborLists *nl;
	double		sim;
	int			sup;
	const int	rows[][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {2, 0}, {2, 2}, {3, 1}, {4, 1}, {5, 2}, {6, 2}};

	DenseInit(&d, 7, 3);
	for (int r = 0; r < lengthof(rows); r++)
		DenseSet(&d, rows[r][0], rows[r][1], 1);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	CHECK_EQ_INT(nl->n_out[0], 2);
	CHECK_EQ_INT(Nb(nl, 0, 0, &sim, &sup), 1);
	CHECK(sim == 0.5);
	CHECK_EQ_INT(sup, 2);
	CHECK_EQ_INT(Nb(nl, 0, 1, &sim, &sup), 2);
	CHECK(sim == 0.5);
	CHECK_EQ_INT(sup, 2);
	CHECK_EQ_INT(nl->n_out[1], 1);
	CHECK_EQ_INT(Nb(nl, 1, 0, &sim, &sup), 0);
	CHECK(sim == 1.0 / 3.0);
	CHECK_EQ_INT(sup, 2);
	CHECK_EQ_INT(nl->n_out[2], 1);
	CHECK_EQ_INT(Nb(nl, 2, 0, &sim, NULL), 0);
	CHECK(sim == 1.0 / 3.0);
	CHECK_EQ_INT(nl->pairs, 4);

	/* k = 1: the tie goes to the smaller id */
	p.k = 1;
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	CHECK_EQ_INT(nl->n_out[0], 1);
	CHECK_EQ_INT(Nb(nl, 0, 0, NULL, NULL), 1);

	/* shrinkage 2: x 2/4 each */
	p = EaseParams(1.0, 5, 1, 2.0, 0);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	CHECK_EQ_INT(Nb(nl, 0, 0, &sim, NULL), 1);
	CHECK(sim == 0.25);
	CHECK_EQ_INT(Nb(nl, 1, 0, &sim, NULL), 0);
	CHECK(sim == 1.0 / 3.0 * 0.5);
	DenseFree(&d);
}

/*
 * One user with weights x = (1, 2, 3), λ = 2: P = (1/λ)(I - x x' / (λ + |x|²)),
 * so B[i][j] = x_i x_j / (λ + |x|² - x_j²) = x_i x_j / (16 - x_j²).
 * Four weighted items over four users against the Gauss–Jordan reference,
 * with min_support 2.  A single item has no neighbours.
 */
static void
test_ease_single_user_weighted(void)
{
	Dense		d;
	SimParams	p = EaseParams(2.0, 5, 1, 0, 0);
	NeighborLists *nl;
	double		sim;
	double		ref[16];

	DenseInit(&d, 1, 3);
	for (int i = 0; i < 3; i++)
		DenseSet(&d, 0, i, i + 1);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl == NULL)
		return;
	/* item 0: 3/7 (item 2), 2/12; item 1: 6/7, 2/15; item 2: 6/12, 3/15 */
	CHECK_EQ_INT(Nb(nl, 0, 0, &sim, NULL), 2);
	CHECK_NEAR(sim, 3.0 / 7, 1e-15);
	CHECK_EQ_INT(Nb(nl, 0, 1, &sim, NULL), 1);
	CHECK_NEAR(sim, 2.0 / 12, 1e-15);
	CHECK_EQ_INT(Nb(nl, 1, 0, &sim, NULL), 2);
	CHECK_NEAR(sim, 6.0 / 7, 1e-15);
	CHECK_EQ_INT(Nb(nl, 1, 1, &sim, NULL), 0);
	CHECK_NEAR(sim, 2.0 / 15, 1e-15);
	CHECK_EQ_INT(Nb(nl, 2, 0, &sim, NULL), 1);
	CHECK_NEAR(sim, 6.0 / 12, 1e-15);
	CHECK_EQ_INT(Nb(nl, 2, 1, &sim, NULL), 0);
	CHECK_NEAR(sim, 3.0 / 15, 1e-15);
	DenseFree(&d);

	DenseInit(&d, 4, 4);
	DenseSet(&d, 0, 0, 3);
	DenseSet(&d, 0, 1, 1);
	DenseSet(&d, 0, 3, 2);
	DenseSet(&d, 1, 0, 1);
	DenseSet(&d, 1, 1, 2);
	DenseSet(&d, 1, 2, 5);
	DenseSet(&d, 2, 1, 1);
	DenseSet(&d, 2, 2, 1);
	DenseSet(&d, 2, 3, 4);
	DenseSet(&d, 3, 0, 2);
	DenseSet(&d, 3, 3, 1);
	RefEase(&d, 2.5, NULL, ref);
	for (int ms = 1; ms <= 2; ms++)
	{
		p = EaseParams(2.5, 3, ms, 0, 0);
		nl = Compute(DenseBuild(&d, ms == 2), &p, 1);
		if (nl)
			CheckLists("ease 4 items", nl, &d, ref, 3, ms, 0, 1e-12);
	}
	DenseFree(&d);

	DenseInit(&d, 3, 1);
	DenseSet(&d, 0, 0, 1);
	DenseSet(&d, 2, 0, 2);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	CHECK(nl != NULL && nl->n_out[0] == 0 && nl->pairs == 0);
	DenseFree(&d);
	DenseInit(&d, 0, 0);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	CHECK(nl != NULL && nl->n_items == 0);
	DenseFree(&d);
}

/*
 * max_items 3 of degrees (3, 5, 3, 5, 1) keeps items 1 and 3 (5 users) and
 * item 0, the smaller of the two with 3; items 2 and 4 get no neighbours and
 * are nobody's, the others are EASE over the three alone.  max_items >= the
 * item count is all of them; max_items 1 leaves no neighbours at all.
 */
static void
test_ease_max_items(void)
{
	Dense		d;
	const int	deg[5] = {3, 5, 3, 5, 1};
	bool		covered[5] = {true, true, false, true, false};
	double		ref[25];
	SimParams	p = EaseParams(1.5, 4, 1, 0, 3);
	NeighborLists *nl;
	uint64		rs = 7;

	DenseInit(&d, 6, 5);
	for (int i = 0; i < 5; i++)
		for (int u = 0; u < deg[i]; u++)
			DenseSet(&d, (u + i) % 6, i, 1 + unit_rand(&rs) % 3);
	RefEase(&d, 1.5, covered, ref);
	CHECK_EQ_INT(sim_dense_items(DenseBuild(&d, false), &p), 3);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	if (nl)
	{
		CheckLists("ease max_items 3", nl, &d, ref, 4, 1, 0, 1e-12);
		CHECK_EQ_INT(nl->n_out[2], 0);
		CHECK_EQ_INT(nl->n_out[4], 0);
		CHECK(nl->k_cap == 2);
		for (int i = 0; i < 5; i++)
			for (int t = 0; t < nl->n_out[i]; t++)
				CHECK(covered[nl->nb[(int64) i * nl->k_cap + t]]);
	}
	RefEase(&d, 1.5, NULL, ref);
	for (int mi = 0; mi <= 6; mi += 5)
	{
		p = EaseParams(1.5, 4, 1, 0, mi);
		nl = Compute(DenseBuild(&d, false), &p, 1);
		if (nl)
			CheckLists("ease max_items all", nl, &d, ref, 4, 1, 0, 1e-12);
	}
	p = EaseParams(1.5, 4, 1, 0, 1);
	nl = Compute(DenseBuild(&d, false), &p, 1);
	CHECK(nl != NULL && nl->pairs == 0);
	DenseFree(&d);
}

/* the max_items items with the most users, ties by the smaller index, by selection */
static void
MostPopular(const Dense *d, int max_items, bool *covered)
{
	for (int i = 0; i < d->ni; i++)
		covered[i] = false;
	for (int t = 0; t < max_items; t++)
	{
		int			best = -1,
					best_deg = -1;

		for (int i = 0; i < d->ni; i++)
		{
			int			deg = 0;

			for (int u = 0; u < d->nu; u++)
				deg += DH(d, u, i);
			if (!covered[i] && deg > best_deg)
				best = i, best_deg = deg;
		}
		covered[best] = true;
	}
}

/*
 * EASE against the Gauss–Jordan definition on ~150 items, for several λ, k,
 * min_support, shrinkage and max_items
 */
static void
test_ease_vs_brute_force(void)
{
	const struct
	{
		double		lambda;
		int			k,
					min_support;
		double		shrink;
		bool		binary;
		int			max_items;
	}			cases[] = {
		{1.0, 10, 1, 0, false, 0},
		{10.0, 50, 1, 0, true, 0},
		{250.0, 200, 1, 0, true, 0},
		{5.0, 20, 2, 3.0, false, 0},
		{50.0, 5, 3, 10.0, false, 0},
		{20.0, 30, 1, 0, true, 100},
	};

	for (int c = 0; c < lengthof(cases); c++)
	{
		Dense		d;
		double	   *ref;
		SimParams	p = EaseParams(cases[c].lambda, cases[c].k, cases[c].min_support, cases[c].shrink,
								   cases[c].max_items);
		NeighborLists *nl;
		char		what[64];
		bool		covered[150];

		RandomDense(&d, 400, 150, 2000 + c, cases[c].binary);
		ref = malloc(sizeof(double) * d.ni * d.ni);
		MostPopular(&d, cases[c].max_items > 0 ? cases[c].max_items : d.ni, covered);
		RefEase(&d, cases[c].lambda, covered, ref);
		nl = Compute(DenseBuild(&d, true), &p, 2);
		snprintf(what, sizeof(what), "ease case %d", c);
		if (nl)
			CheckLists(what, nl, &d, ref, cases[c].k, cases[c].min_support, cases[c].shrink, 1e-9);
		free(ref);
		DenseFree(&d);
	}
}

static bool
SameLists(const NeighborLists *a, const NeighborLists *b)
{
	size_t		n;

	if (a == NULL || b == NULL || a->n_items != b->n_items || a->k_cap != b->k_cap || a->pairs != b->pairs)
		return false;
	n = (size_t) a->n_items * a->k_cap;
	return memcmp(a->n_out, b->n_out, sizeof(int32) * a->n_items) == 0 &&
		memcmp(a->nb, b->nb, sizeof(int32) * n) == 0 &&
		memcmp(a->sim, b->sim, sizeof(double) * n) == 0 &&
		memcmp(a->support, b->support, sizeof(int32) * n) == 0;
}

/*
 * 1 and 3 threads give the same lists bit for bit, for both metrics; so does
 * a run whose interrupts are polled and processed (the run resumes; one
 * thread, so that the polls are deterministic).
 */
static void
test_ease_rp3beta_threads(void)
{
	const CoreInterrupts hooks = {CountingPending, CountingProcess};
	Dense		d;
	SimParams	ps[2];

	ps[0] = EaseParams(20.0, 15, 2, 1.0, 120);
	ps[1] = Rp3Params(0.9, 0.4, 15, 2, 1.0);
	RandomDense(&d, 300, 140, 77, false);
	for (int t = 0; t < 2; t++)
	{
		NeighborLists *a = Compute(DenseBuild(&d, true), &ps[t], 1),
				   *b = Compute(DenseBuild(&d, true), &ps[t], 3),
				   *c = NULL;
		CoreError	err;

		CHECK(a != NULL && a->pairs > 100);
		CHECK(SameLists(a, b));
		polls = 0;
		pending_left = 2;
		CHECK_EQ_INT(simcore_compute(&unit_arena, DenseBuild(&d, true), &ps[t], 1, &hooks, &c, &err), CORE_OK);
		CHECK_EQ_INT(pending_left, 0);
		CHECK(polls > 2);
		CHECK(SameLists(a, c));
	}
	DenseFree(&d);
}

typedef struct PhaseLog
{
	int			n;
	char		name[8][16];
	double		seconds[8];
	size_t		bytes[8];
} PhaseLog;

static void
LogPhase(void *arg, const char *phase, double seconds, size_t bytes)
{
	PhaseLog   *log = arg;

	if (log->n < 8)
	{
		snprintf(log->name[log->n], sizeof(log->name[0]), "%s", phase);
		log->seconds[log->n] = seconds;
		log->bytes[log->n] = bytes;
	}
	log->n++;
}

/*
 * EASE reports its four phases in order, each holding at least the dense
 * matrix and at most the memory estimate, which covers the dense matrix
 * that sim_dense_bytes gives (0 for the other metrics); the matrix is
 * released at the end; the names parse.
 */
static void
test_ease_progress_and_sizes(void)
{
	Dense		d;
	PhaseLog	log;
	SimProgress prog = {LogPhase, &log};
	SimParams	p = EaseParams(10.0, 10, 1, 0, 0);
	InteractionMatrix *m;
	NeighborLists *nl;
	size_t		dense = 100 * 100 * sizeof(double),
				est_all,
				held;
	SimMetric	metric;
	const char *const names[] = {"gram", "factor", "invert", "select"};

	RandomDense(&d, 200, 100, 5, true);
	m = DenseBuild(&d, false);
	if (m == NULL)
		return;
	CHECK_EQ_INT(sim_dense_items(m, &p), 100);
	CHECK_EQ_INT(sim_dense_bytes(m, &p), dense);
	est_all = sim_memory_estimate(m, &p, 2);
	CHECK(est_all > dense);
	p.max_items = 50;
	CHECK_EQ_INT(sim_dense_bytes(m, &p), dense / 4);
	CHECK(est_all - sim_memory_estimate(m, &p, 2) >= dense - dense / 4);
	p.max_items = 0;
	{
		SimParams	q = Rp3Params(1, 0.5, 10, 1, 0);

		CHECK_EQ_INT(sim_dense_bytes(m, &q), 0);
		CHECK_EQ_INT(sim_dense_items(m, &q), 0);
		CHECK(sim_memory_estimate(m, &q, 2) < dense);
	}

	memset(&log, 0, sizeof(log));
	p.progress = &prog;
	held = unit_arena_live();
	nl = Compute(m, &p, 2);
	CHECK(nl != NULL);
	/* the dense matrix and the scratch are released; the lists stay */
	CHECK(unit_arena_live() - held < dense / 4);
	CHECK_EQ_INT(log.n, 4);
	for (int t = 0; t < Min(log.n, 4); t++)
	{
		CHECK_STR(log.name[t], names[t]);
		CHECK(log.seconds[t] >= 0 && log.seconds[t] < 60);
		CHECK(log.bytes[t] >= dense);
		CHECK(log.bytes[t] <= est_all);	/* the estimate covers the peak */
	}
	DenseFree(&d);

	CHECK_STR(sim_metric_name(SIM_EASE), "ease");
	CHECK_STR(sim_metric_name(SIM_RP3BETA), "rp3beta");
	CHECK(sim_metric_parse("ease", &metric) && metric == SIM_EASE);
	CHECK(sim_metric_parse("rp3beta", &metric) && metric == SIM_RP3BETA);
	CHECK(!sim_metric_parse("rp3", &metric));
}

/*
 * Exact sums (sim_exact_*): order-free, exact under cancellation and for
 * subnormals, rounded once to nearest (a sum of two doubles is their IEEE
 * sum, ties to even included), and the merge of parts equals the whole;
 * checked against 128-bit integer sums of values on a 2^-60 grid.
 */
static void
test_sim_exact_sum(void)
{
	SimExactSum s,
				t,
				parts[3];
	uint64		rs = 12345;
	static double v[10000];
	__int128	exact = 0;
	int			bad = 0;

	/* cancellation: 1e300 + 1 - 1e300 in every order */
	{
		const double x[3] = {1e300, 1.0, -1e300};
		const int	ord[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

		for (int o = 0; o < 6; o++)
		{
			sim_exact_init(&s);
			for (int k = 0; k < 3; k++)
				sim_exact_add(&s, x[ord[o][k]]);
			CHECK(sim_exact_value(&s) == 1.0);
		}
	}
	/* subnormals, zero, a negative total */
	sim_exact_init(&s);
	CHECK(sim_exact_value(&s) == 0.0);
	sim_exact_add(&s, 3 * 0x1p-1074);
	sim_exact_add(&s, -0x1p-1074);
	CHECK(sim_exact_value(&s) == 0x1p-1073);
	sim_exact_add(&s, -5.5);
	CHECK(sim_exact_value(&s) == -5.5 + 0x1p-1073 || sim_exact_value(&s) == -5.5);
	sim_exact_init(&s);
	sim_exact_add(&s, -0x1p1023);
	sim_exact_add(&s, -0x1p1023 * 0.5);
	CHECK(sim_exact_value(&s) == -0x1p1023 * 1.5);
	/* beyond every double: infinite, also when the top limb holds more than 32 bits */
	sim_exact_init(&s);
	for (int k = 0; k < 4; k++)
		sim_exact_add(&s, 0x1.fffffffffffffp1023);
	CHECK(isinf(sim_exact_value(&s)) && sim_exact_value(&s) > 0);
	sim_exact_init(&s);
	s.limb[SIM_EXACT_LIMBS - 1] = -((int64) 1 << 40);
	CHECK(isinf(sim_exact_value(&s)) && sim_exact_value(&s) < 0);
	/* two doubles: exactly their IEEE sum (one correct rounding), 0.1 + 0.2 included */
	sim_exact_init(&s);
	sim_exact_add(&s, 0.1);
	sim_exact_add(&s, 0.2);
	CHECK(sim_exact_value(&s) == 0.1 + 0.2);
	/* just above a tie, the deciding bit 200 places down: rounds up, as IEEE addition does */
	sim_exact_init(&s);
	sim_exact_add(&s, 1.0);
	sim_exact_add(&s, 0x1p-53);
	CHECK(sim_exact_value(&s) == 1.0);	/* an exact tie: to even */
	sim_exact_add(&s, 0x1p-200);
	CHECK(sim_exact_value(&s) == 1.0 + 0x1p-52);
	for (int r = 0; r < 20000 && bad < 3; r++)
	{
		double		a = ldexp(unit_uniform(&rs) - 0.5, (int) (unit_rand(&rs) % 120) - 60),
					b = ldexp(unit_uniform(&rs) - 0.5, (int) (unit_rand(&rs) % 120) - 60);

		sim_exact_init(&s);
		sim_exact_add(&s, a);
		sim_exact_add(&s, b);
		if (sim_exact_value(&s) != a + b)
		{
			unit_fail(__FILE__, __LINE__, "%.17g + %.17g: exact sum %.17g, IEEE %.17g", a, b,
					  sim_exact_value(&s), a + b);
			bad++;
		}
	}
	/* many values on a 2^-60 grid: against a 128-bit integer sum, in any order and in parts */
	for (int k = 0; k < 10000; k++)
	{
		int64		units = (int64) (unit_rand(&rs) >> 12) - ((int64) 1 << 51);	/* 52 bits, signed */

		v[k] = ldexp((double) units, (int) (unit_rand(&rs) % 40) - 60);
		exact += (__int128) ldexp(v[k], 60);
	}
	sim_exact_init(&s);
	sim_exact_init(&t);
	for (int p = 0; p < 3; p++)
		sim_exact_init(&parts[p]);
	for (int k = 0; k < 10000; k++)
	{
		sim_exact_add(&s, v[k]);
		sim_exact_add(&t, v[9999 - k]);
		sim_exact_add(&parts[k % 3], v[k]);
	}
	sim_exact_merge(&parts[0], &parts[1]);
	sim_exact_merge(&parts[0], &parts[2]);
	CHECK(sim_exact_value(&s) == ldexp((double) exact, -60));
	CHECK(sim_exact_value(&t) == sim_exact_value(&s));
	CHECK(sim_exact_value(&parts[0]) == sim_exact_value(&s));
	sim_exact_normalize(&s);
	sim_exact_normalize(&parts[0]);
	CHECK(memcmp(s.limb, parts[0].limb, sizeof(s.limb)) == 0);
}

/*
 * Time decay's 0.5^x from basic IEEE operations: exact powers of two at
 * integer x, within 2 ulps of the C library's pow() over ages of 0 to 1,000
 * half-lives and future times to -20 (counted in units in the last place),
 * against values written to 17 digits (correctly rounded, from 60-digit
 * arithmetic), non-increasing over steps of 1/1024 (it may rise an ulp just
 * past a multiple of 1/64, where the table takes over), and the limits.
 */
static void
test_sim_pow_half(void)
{
	uint64		rs = 5;
	double		worst = 0;
	double		prev = INFINITY;

	for (int k = -30; k <= 1074; k++)
		if (sim_pow_half((double) k) != ldexp(1.0, -k))
		{
			unit_fail(__FILE__, __LINE__, "0.5^%d is not exactly 2^-%d", k, k);
			break;
		}
	for (int t = 0; t < 200000; t++)
	{
		double		x = t % 3 == 0 ? 60 * unit_uniform(&rs) : t % 3 == 1 ? -20 * unit_uniform(&rs) : 1000 * unit_uniform(&rs);
		double		a = sim_pow_half(x),
					b = pow(0.5, x);

		if (b > 0 && isfinite(b))
		{
			int64		ia,
						ib;

			memcpy(&ia, &a, sizeof(a));
			memcpy(&ib, &b, sizeof(b));
			worst = Max(worst, (double) (ia > ib ? ia - ib : ib - ia));
		}
	}
	CHECK(worst <= 2.0);
	CHECK(sim_pow_half(0.5) == 0x1.6a09e667f3bcdp-1);	/* 1/sqrt(2) */
	CHECK_NEAR(sim_pow_half(1.0 / 3), 0.7937005259840998, 2 * DBL_EPSILON);
	CHECK_NEAR(sim_pow_half(10.3), 7.932152308166362e-4, 2 * DBL_EPSILON * 7.9e-4);
	CHECK_NEAR(sim_pow_half(-0.75), 1.6817928305074290, 2 * DBL_EPSILON * 1.7);
	for (double x = 0; x < 3; x += 1.0 / 1024)
	{
		double		v = sim_pow_half(x);

		CHECK(v <= prev);
		prev = v;
	}
	CHECK(sim_pow_half(2000) == 0 && isinf(sim_pow_half(-2000)) && isnan(sim_pow_half(NAN)));
	CHECK(sim_pow_half(1074) == ldexp(1.0, -1074) && sim_pow_half(1076) == 0);
}

void
simcore_suite(void)
{
	RUN(test_sim_metrics_vs_brute_force);
	RUN(test_sim_duplicates_summed);
	RUN(test_sim_ties_smaller_index);
	RUN(test_sim_threads_and_interrupts);
	RUN(test_sim_memory_budget);
	RUN(test_sim_hashed_ids);
	RUN(test_rp3beta_hand);
	RUN(test_rp3beta_single_and_zero);
	RUN(test_rp3beta_ease_errors);
	RUN(test_rp3beta_vs_brute_force);
	RUN(test_ease_hand);
	RUN(test_ease_single_user_weighted);
	RUN(test_ease_max_items);
	RUN(test_ease_vs_brute_force);
	RUN(test_ease_rp3beta_threads);
	RUN(test_ease_progress_and_sizes);
	RUN(test_sim_exact_sum);
	RUN(test_sim_pow_half);
}
