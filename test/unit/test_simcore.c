/*
 * test_simcore.c
 *	  The similarity core against a direct O(n²) computation in the test:
 *	  every metric on a small random matrix, duplicate rows summed, ties to
 *	  the smaller id, thread-count independence, interrupts, and the memory
 *	  budget.
 */
#include "unit.h"

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

void
simcore_suite(void)
{
	RUN(test_sim_metrics_vs_brute_force);
	RUN(test_sim_duplicates_summed);
	RUN(test_sim_ties_smaller_index);
	RUN(test_sim_threads_and_interrupts);
	RUN(test_sim_memory_budget);
	RUN(test_sim_hashed_ids);
}
