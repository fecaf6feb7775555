/*
 * test_pairsums.c
 *	  The distributed refresh's core (pairsums_core.c): random interactions
 *	  split by user into shards, each shard's pair sums encoded on its own,
 *	  merged, and compared bit for bit with simcore_compute over all the rows
 *	  in one matrix (the single-server refresh) — cosine over unit, integer,
 *	  signed and half weights with duplicate rows, jaccard and conditional,
 *	  with k, min_support and shrinkage varied.  Weights off every power-of-two
 *	  grid (tenths, ln(1 + k)) and integers whose norms pass 2^53 units merge
 *	  in fixed point, bit for bit one server's fixed-point sums; weights that
 *	  span 2^22 : 1 within an item must come back "not exact", a byte budget
 *	  too small must be CORE_LIMIT, and damaged states CORE_CORRUPT (or, with
 *	  the CRC forged, a result), never a crash (the harness runs under ASan/UBSan).
 */
#include "unit.h"

#include <stdlib.h>

#include "pairsums_core.h"
#include "simcore.h"

#define MAXROWS 6000

typedef enum WeightKind
{
	W_UNIT, W_INT, W_SIGNED, W_HALF, W_TENTH,
	W_GRIDS,					/* quarters in shard 0 of 4, integers elsewhere: grids differ by shard */
	W_LOG,						/* ln(1 + k): off every grid */
	W_LOG_SHARD0,				/* ln(1 + k) in shard 0 of 4, integers elsewhere: fixed and units states */
	W_BIG,						/* integers in [2^22, 2^23): on the grid, norms past 2^53 units together */
	W_WIDE						/* tenths and tenths times 2^-30: an item's weights span 2^30 : 1 */
} WeightKind;

static int
ShardOfUser(int64 user, int n_shards)
{
	return (int) ((uint64) user * 2654435761U % 1000003 % (uint64) n_shards);
}

typedef struct Rows
{
	int			n;
	int64		user[MAXROWS];
	int64		item[MAXROWS];
	double		w[MAXROWS];
} Rows;

static void
MakeRows(Rows *r, uint64 seed, int n, int users, int items, WeightKind kind)
{
	uint64		rs = seed;

	r->n = n;
	for (int t = 0; t < n; t++)
	{
		double		u = unit_uniform(&rs);

		r->user[t] = 7 + 5 * (int64) (unit_rand(&rs) % (uint64) users);
		/* popular items first: skewed, so lists and ties both occur */
		r->item[t] = 100 + 3 * (int64) ((double) items * u * u);
		switch (kind)
		{
			case W_UNIT:
				r->w[t] = 1.0;
				break;
			case W_INT:
				r->w[t] = (double) (1 + unit_rand(&rs) % 5);
				break;
			case W_SIGNED:
				r->w[t] = (double) ((int) (unit_rand(&rs) % 7) - 3);
				break;
			case W_HALF:
				r->w[t] = 0.5 * (double) (1 + unit_rand(&rs) % 10);
				break;
			case W_TENTH:
				r->w[t] = 0.1 * (double) (1 + unit_rand(&rs) % 10);
				break;
			case W_GRIDS:
				r->w[t] = (double) (1 + unit_rand(&rs) % 9) * (ShardOfUser(r->user[t], 4) == 0 ? 0.25 : 1.0);
				break;
			case W_LOG:
				r->w[t] = log(2.0 + (double) (unit_rand(&rs) % 40));
				break;
			case W_LOG_SHARD0:
				r->w[t] = ShardOfUser(r->user[t], 4) == 0 ? log(2.0 + (double) (unit_rand(&rs) % 40))
					: (double) (1 + unit_rand(&rs) % 5);
				break;
			case W_BIG:
				r->w[t] = (double) ((UINT64CONST(1) << 22) + unit_rand(&rs) % (UINT64CONST(1) << 22));
				break;
			case W_WIDE:
				r->w[t] = 0.1 * (double) (1 + unit_rand(&rs) % 10) * (unit_rand(&rs) % 2 ? 1.0 : 0x1p-30);
				break;
		}
	}
}

static InteractionMatrix *
Build(const Rows *r, int shard, int n_shards)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&unit_arena, (size_t) 1 << 30, "maintenance_work_mem", &err);
	InteractionMatrix *m = NULL;

	CHECK(tb != NULL);
	for (int t = 0; tb && t < r->n; t++)
		if (n_shards == 0 || ShardOfUser(r->user[t], n_shards) == shard)
			CHECK_EQ_INT(simcore_triples_add(tb, r->user[t], r->item[t], r->w[t], &err), CORE_OK);
	if (tb)
		CHECK_EQ_INT(simcore_matrix_build(&unit_arena, tb, true, &core_no_interrupts, &m, &err), CORE_OK);
	return m;
}

/* The shard's header facts, as the aggregate's transition records them. */
static PairSumsShard
ShardOf(const Rows *r, int shard, int n_shards, bool weighted)
{
	PairSumsShard sh;

	memset(&sh, 0, sizeof(sh));
	sh.weighted = weighted;
	sh.q = INT32_MAX;
	sh.port = (uint16) (9700 + shard % 2);
	sh.seconds = 0.25;
	for (int t = 0; t < r->n; t++)
	{
		if (ShardOfUser(r->user[t], n_shards) != shard)
			continue;
		sh.raw_rows++;
		sh.max_abs_raw = Max(sh.max_abs_raw, fabs(r->w[t]));
		if (r->w[t] != 0)
			sh.q = Min(sh.q, sim_weight_grid(r->w[t]));
	}
	if (sh.q == INT32_MAX)
		sh.q = 0;
	return sh;
}

typedef struct Encoded
{
	int			n;
	char	   *data[8];
	size_t		len[8];
} Encoded;

/*
 * each shard's state; centred: adjusted cosine's (weighted, centred by user
 * on the shard); with (given): BM25's passes with its options, or Pearson's
 * (item sums, or centred on its means)
 */
static void
EncodeShardsWith(const Rows *r, int n_shards, bool weighted, bool centred, const PairSumsShard *bm25,
				 Encoded *e)
{
	CoreError	err;

	e->n = n_shards;
	for (int s = 0; s < n_shards; s++)
	{
		InteractionMatrix *m = Build(r, s, n_shards);
		PairSumsShard sh = ShardOf(r, s, n_shards, weighted);

		sh.centred = centred;
		if (bm25)
		{
			sh.lengths = bm25->lengths;
			sh.bm25 = bm25->bm25;
			sh.bm25_k1 = bm25->bm25_k1;
			sh.bm25_b = bm25->bm25_b;
			sh.mean_length = bm25->mean_length;
			sh.item_sums = bm25->item_sums;
			sh.pearson = bm25->pearson;
			sh.n_means = bm25->n_means;
			sh.mean_ids = bm25->mean_ids;
			sh.means = bm25->means;
		}

		e->data[s] = NULL;
		e->len[s] = 0;
		if (m == NULL)
			continue;
		CHECK_EQ_INT(pairsums_encode(&unit_arena, m, &sh, (size_t) 1 << 28, &core_no_interrupts,
									 &e->data[s], &e->len[s], &err), CORE_OK);
	}
}

static void
EncodeShardsAs(const Rows *r, int n_shards, bool weighted, bool centred, Encoded *e)
{
	EncodeShardsWith(r, n_shards, weighted, centred, NULL, e);
}

static void
EncodeShards(const Rows *r, int n_shards, bool weighted, Encoded *e)
{
	EncodeShardsAs(r, n_shards, weighted, false, e);
}

/* BM25's first pass over the shards: the mean length */
static double
MeanLengthOf(const Rows *r, int n_shards)
{
	PairSumsShard first;
	Encoded		e;
	CoreError	err;
	double		mean = NAN;
	int64		users;

	memset(&first, 0, sizeof(first));
	first.lengths = true;
	EncodeShardsWith(r, n_shards, false, false, &first, &e);
	CHECK_EQ_INT(pairsums_mean_length((const char *const *) e.data, e.len, e.n, &mean, &users, &err), CORE_OK);
	return mean;
}

/* Pearson's first pass over the shards of r: the items' means, decoded into *second */
static void
PearsonMeansOf(const Rows *r, int n_shards, PairSumsShard *second)
{
	PairSumsShard first;
	Encoded		e;
	CoreError	err;
	char	   *blob = NULL;
	size_t		len = 0;
	int64	   *ids = NULL;
	double	   *means = NULL;
	int32		n = 0;

	memset(&first, 0, sizeof(first));
	first.item_sums = true;
	EncodeShardsWith(r, n_shards, false, false, &first, &e);
	CHECK_EQ_INT(pairsums_item_means(&unit_arena, (const char *const *) e.data, e.len, e.n, &core_no_interrupts,
									 &blob, &len, &err), CORE_OK);
	CHECK_EQ_INT(pairsums_means_decode(&unit_arena, blob, len, &ids, &means, &n, &err), CORE_OK);
	memset(second, 0, sizeof(*second));
	second->pearson = true;
	second->n_means = n;
	second->mean_ids = ids;
	second->means = means;
}

/* the states p is merged from: centred for adjusted cosine; bm25's and pearson's two passes */
static void
EncodeFor(const Rows *r, int n_shards, const SimParams *p, Encoded *e)
{
	if (p->metric == SIM_PEARSON)
	{
		PairSumsShard second;

		PearsonMeansOf(r, n_shards, &second);
		EncodeShardsWith(r, n_shards, true, false, &second, e);
		return;
	}
	if (p->metric == SIM_BM25)
	{
		PairSumsShard second;

		memset(&second, 0, sizeof(second));
		second.bm25 = true;
		second.bm25_k1 = p->bm25_k1;
		second.bm25_b = p->bm25_b;
		second.mean_length = MeanLengthOf(r, n_shards);
		EncodeShardsWith(r, n_shards, true, false, &second, e);
		return;
	}
	EncodeShardsAs(r, n_shards, SIM_IS_COSINE(p->metric), p->metric == SIM_ADJUSTED_COSINE, e);
}

/* merged lists == one server's lists, every bit */
static void
CompareMerged(const Rows *r, int n_shards, const SimParams *p)
{
	InteractionMatrix *whole = Build(r, 0, 0);
	NeighborLists *ref = NULL;
	Encoded		e;
	PairSumsResult res;
	CoreError	err;
	int			bad = 0;

	CHECK(whole != NULL);
	if (whole == NULL)
		return;
	EncodeFor(r, n_shards, p, &e);
	CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, p,
								&core_no_interrupts, &res, &err), CORE_OK);
	CHECK(res.exact);
	CHECK_EQ_INT(res.raw_rows, r->n);
	CHECK_EQ_INT(res.nnz, whole->nnz);
	CHECK_EQ_INT(res.users, whole->n_users);
	CHECK_EQ_INT(res.n_items, whole->n_items);
	CHECK_EQ_INT(res.n_nodes, n_shards > 1 ? 2 : 1);
	CHECK_NEAR(res.shard_seconds_sum, 0.25 * n_shards, 1e-12);
	CHECK_EQ_INT(simcore_compute(&unit_arena, whole, p, 1, &core_no_interrupts, &ref, &err), CORE_OK);
	if (ref == NULL || !res.exact || res.lists == NULL || res.n_items != whole->n_items)
		return;
	CHECK(memcmp(res.item_ids, whole->item_ids, sizeof(int64) * res.n_items) == 0);
	CHECK_EQ_INT(res.lists->pairs, ref->pairs);
	for (int32 i = 0; i < ref->n_items && bad < 5; i++)
	{
		if (res.lists->n_out[i] != ref->n_out[i])
		{
			unit_fail(__FILE__, __LINE__, "%s: item %d has %d neighbours merged, %d on one server",
					  sim_metric_name(p->metric), i, res.lists->n_out[i], ref->n_out[i]);
			bad++;
			continue;
		}
		for (int32 t = 0; t < ref->n_out[i]; t++)
		{
			size_t		a = (size_t) i * res.lists->k_cap + t,
						b = (size_t) i * ref->k_cap + t;

			if (res.lists->nb[a] != ref->nb[b] || res.lists->support[a] != ref->support[b] ||
				memcmp(&res.lists->sim[a], &ref->sim[b], sizeof(double)) != 0)
			{
				unit_fail(__FILE__, __LINE__, "%s: item %d rank %d: merged (%d, %.17g, %d), one server (%d, %.17g, %d)",
						  sim_metric_name(p->metric), i, t, res.lists->nb[a], res.lists->sim[a],
						  res.lists->support[a], ref->nb[b], ref->sim[b], ref->support[b]);
				bad++;
				break;
			}
		}
	}
}

static void
test_pairsums_equal_one_server(void)
{
	static Rows r;
	const WeightKind kinds[] = {W_UNIT, W_INT, W_SIGNED, W_HALF, W_GRIDS};

	for (int kd = 0; kd < 5; kd++)
		for (int shards = 1; shards <= 4; shards += 3)
		{
			SimParams	p = {SIM_COSINE, 7, 1, 0, 1.2, 0.75};

			MakeRows(&r, 11 + kd, 4000, 300, 80, kinds[kd]);
			CompareMerged(&r, shards, &p);
			p.min_support = 3;
			p.shrinkage = 10;
			CompareMerged(&r, shards, &p);
		}
	MakeRows(&r, 99, 5000, 400, 120, W_INT);
	for (int shards = 2; shards <= 5; shards += 3)
	{
		SimParams	pj = {SIM_JACCARD, 5, 2, 0, 1.2, 0.75};
		SimParams	pc = {SIM_CONDITIONAL, 9, 1, 3.5, 1.2, 0.75};
		SimParams	pk = {SIM_COSINE, 200, 1, 0, 1.2, 0.75};	/* k beyond the items */

		CompareMerged(&r, shards, &pj);
		CompareMerged(&r, shards, &pc);
		CompareMerged(&r, shards, &pk);
	}
	unit_arena_reset();
}

/*
 * distinct (user, item) pairs of weight 1 (users of shard 0 of 4 get 1/2 when
 * halves): the unit states that write no sums, alone or scaled to another
 * state's finer grid
 */
static void
MakeDistinct(Rows *r, uint64 seed, bool halves)
{
	uint64		rs = seed;

	r->n = 0;
	for (int64 u = 0; u < 240; u++)
		for (int64 i = 0; i < 70 && r->n < MAXROWS; i++)
			if (unit_rand(&rs) % 100 < (uint64) (i < 10 ? 60 : 15))
			{
				r->user[r->n] = 7 + 5 * u;
				r->item[r->n] = 100 + 3 * i;
				r->w[r->n] = halves && ShardOfUser(r->user[r->n], 4) == 0 ? 0.5 : 1.0;
				r->n++;
			}
}

static void
test_pairsums_unit_weights(void)
{
	static Rows r;
	Encoded		e;
	CoreError	err;
	PairSumsHeader h;
	SimParams	p = {SIM_COSINE, 6, 1, 0, 1.2, 0.75};
	SimParams	ps = {SIM_COSINE, 6, 2, 4.0, 1.2, 0.75};

	for (int halves = 0; halves <= 1; halves++)
	{
		MakeDistinct(&r, 21 + halves, halves);
		EncodeShards(&r, 4, true, &e);
		for (int sh = 0; sh < 4; sh++)
		{
			CHECK_EQ_INT(pairsums_header(e.data[sh], e.len[sh], &h, &err), CORE_OK);
			/* shard 0 has halves in the second round: not unit, a finer grid */
			CHECK_EQ_INT((h.flags & PAIRSUMS_UNIT) != 0, !(halves && sh == 0));
		}
		CompareMerged(&r, 4, &p);
		CompareMerged(&r, 4, &ps);
	}
	unit_arena_reset();
}

/* the flags every nonempty state of e carries, and'ed, and or'ed */
static void
StateFlags(const Encoded *e, int *all, int *any)
{
	CoreError	err;

	*all = 0xFF;
	*any = 0;
	for (int s = 0; s < e->n; s++)
	{
		PairSumsHeader h;

		if (e->data[s] == NULL)
			continue;
		CHECK_EQ_INT(pairsums_header(e->data[s], e->len[s], &h, &err), CORE_OK);
		*all &= h.flags;
		*any |= h.flags;
	}
}

/* the merge of r's shards: exact (and fixed as given) or not */
static void
MergeOf(const Rows *r, int n_shards, const SimParams *p, PairSumsResult *res)
{
	Encoded		e;
	CoreError	err;

	EncodeFor(r, n_shards, p, &e);
	CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, p,
								&core_no_interrupts, res, &err), CORE_OK);
}

/*
 * Off the grid: one server adds in fixed point (sim_cosine_fixed), the shards
 * send fixed-point sums, and the merge equals one server bit for bit, also
 * with on-grid shards among them and for integers whose norms pass 2^53
 * units only over all the shards; one server's fixed-point cosines are
 * within 1e-14 of a long-double computation.  Weights spanning 2^22 : 1 in
 * an item cannot be merged; their counts can.
 */
static void
test_pairsums_off_grid(void)
{
	static Rows r;
	Encoded		e;
	PairSumsResult res;
	CoreError	err;
	SimParams	p = {SIM_COSINE, 5, 1, 0, 1.2, 0.75};
	SimParams	pj = {SIM_JACCARD, 5, 1, 0, 1.2, 0.75};
	int			all,
				any;
	const WeightKind kinds[] = {W_TENTH, W_LOG, W_LOG_SHARD0};

	for (int kd = 0; kd < 3; kd++)
		for (int shards = 2; shards <= 4; shards += 2)
		{
			InteractionMatrix *whole;

			MakeRows(&r, 40 + kd, 3000, 250, 60, kinds[kd]);
			whole = Build(&r, 0, 0);
			CHECK(whole && sim_cosine_fixed(whole, &p));
			EncodeShards(&r, shards, true, &e);
			StateFlags(&e, &all, &any);
			CHECK((any & PAIRSUMS_FIXED) != 0);
			/* integers outside shard 0 of 4 (and so of 2): units states beside the fixed one */
			CHECK_EQ_INT((any & PAIRSUMS_EXACT) != 0, kinds[kd] == W_LOG_SHARD0);
			CompareMerged(&r, shards, &p);
			p.min_support = 2;
			p.shrinkage = 4;
			CompareMerged(&r, shards, &p);
			p.min_support = 1;
			p.shrinkage = 0;
			MergeOf(&r, shards, &p, &res);
			CHECK(res.exact && res.fixed);
			unit_arena_reset();
		}

	/* integers whose norms reach 2^53 units only together: units states, a fixed merge */
	MakeRows(&r, 77, 1500, 300, 20, W_BIG);
	{
		InteractionMatrix *whole = Build(&r, 0, 0);

		CHECK(whole && sim_cosine_fixed(whole, &p));
		EncodeShards(&r, 4, true, &e);
		StateFlags(&e, &all, &any);
		CHECK((all & PAIRSUMS_EXACT) != 0);
		CHECK((any & PAIRSUMS_FIXED) == 0);
		CompareMerged(&r, 4, &p);
		MergeOf(&r, 4, &p, &res);
		CHECK(res.exact && res.fixed);
	}
	unit_arena_reset();

	/* one server's fixed-point cosine against long double */
	MakeRows(&r, 5, 2000, 200, 50, W_LOG);
	{
		InteractionMatrix *whole = Build(&r, 0, 0);
		NeighborLists *ref = NULL;
		SimParams	pk = {SIM_COSINE, 49, 1, 0, 1.2, 0.75};
		double		worst = 0;

		CHECK(whole != NULL);
		/* sums from the unscaled weights, before simcore_compute scales them */
		{
			int32		n = whole->n_items;
			long double *dot = calloc((size_t) n * n, sizeof(long double));

			CHECK(dot != NULL);
			for (int32 u = 0; dot && u < whole->n_users; u++)
				for (int64 a = whole->u_ptr[u]; a < whole->u_ptr[u + 1]; a++)
					for (int64 b = whole->u_ptr[u]; b < whole->u_ptr[u + 1]; b++)
						dot[(size_t) whole->u_item[a] * n + whole->u_item[b]] +=
							(long double) whole->u_w[a] * whole->u_w[b];
			CHECK_EQ_INT(simcore_compute(&unit_arena, whole, &pk, 2, &core_no_interrupts, &ref, &err), CORE_OK);
			for (int32 i = 0; dot && ref && i < n; i++)
				for (int32 t = 0; t < ref->n_out[i]; t++)
				{
					int32		j = ref->nb[(size_t) i * ref->k_cap + t];
					long double want = dot[(size_t) i * n + j] /
						sqrtl(dot[(size_t) i * n + i] * dot[(size_t) j * n + j]);

					worst = Max(worst, (double) fabsl(ref->sim[(size_t) i * ref->k_cap + t] - want) / (double) want);
				}
			CHECK(ref != NULL && ref->pairs > 100);
			CHECK(worst < 1e-14);
			free(dot);
		}
	}
	unit_arena_reset();

	/* an item's weights spanning 2^30 : 1: its products would be cut, so no merge */
	MakeRows(&r, 5, 2000, 200, 50, W_WIDE);
	EncodeShards(&r, 3, true, &e);
	CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
								&core_no_interrupts, &res, &err), CORE_OK);
	CHECK(!res.exact);
	CHECK(res.lists == NULL);
	CHECK(strstr(res.why, "span") != NULL);
	CHECK_EQ_INT(res.raw_rows, 2000);
	/* ... but their counts are integers: jaccard merges */
	CompareMerged(&r, 3, &pj);
	/* rp3beta is not a function of pair sums */
	p.metric = SIM_RP3BETA;
	p.rp3_alpha = 1;
	CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
								&core_no_interrupts, &res, &err), CORE_INVALID);
	unit_arena_reset();
}

/*
 * Adjusted cosine: each shard centres its users' weights (a user's rows are
 * all in one shard), and the merge equals one server bit for bit, in fixed
 * point for ratings (the means leave off-grid residues), in units where the
 * centred weights stay on a grid (every user's mean a whole number); one
 * server's fixed-point adjusted cosines are within 1e-14 of long double over
 * the same centred weights.  Centred states merge only as adjusted cosine,
 * uncentred ones only as the others; the counts of either serve jaccard.
 */
static void
test_pairsums_adjusted(void)
{
	static Rows r;
	Encoded		e;
	PairSumsResult res;
	CoreError	err;
	int			all,
				any;
	const WeightKind kinds[] = {W_INT, W_UNIT, W_SIGNED, W_HALF, W_LOG};

	for (int kd = 0; kd < 5; kd++)
		for (int shards = 1; shards <= 4; shards += 3)
		{
			SimParams	p = {SIM_ADJUSTED_COSINE, 7, 1, 0, 1.2, 0.75};

			MakeRows(&r, 60 + kd, 4000, 300, 80, kinds[kd]);
			CompareMerged(&r, shards, &p);
			p.min_support = 3;
			p.shrinkage = 10;
			CompareMerged(&r, shards, &p);
			EncodeFor(&r, shards, &p, &e);
			StateFlags(&e, &all, &any);
			CHECK((all & PAIRSUMS_CENTRED) != 0);
			if (kinds[kd] == W_INT)
			{
				MergeOf(&r, shards, &p, &res);
				CHECK(res.exact && res.fixed);
				CHECK((any & PAIRSUMS_FIXED) != 0);
			}
			unit_arena_reset();
		}

	/* users rating 1, 3, 1, 3 (means 2, centred weights ±1) and 2, 6 (±2): on the grid, in units */
	{
		SimParams	p = {SIM_ADJUSTED_COSINE, 6, 1, 0, 1.2, 0.75};
		uint64		rs = 5;

		r.n = 0;
		for (int64 u = 0; u < 300; u++)
		{
			int			len = u % 2 ? 4 : 2;

			for (int t = 0; t < len; t++)
			{
				r.user[r.n] = 11 + 7 * u;
				r.item[r.n] = 100 + 3 * (int64) ((unit_rand(&rs) % 10) * 5 + t);	/* distinct within a user */
				r.w[r.n] = u % 2 ? (t % 2 ? 3.0 : 1.0) : (t % 2 ? 6.0 : 2.0);
				r.n++;
			}
		}
		EncodeFor(&r, 3, &p, &e);
		StateFlags(&e, &all, &any);
		CHECK((all & PAIRSUMS_EXACT) != 0);
		CHECK((any & PAIRSUMS_FIXED) == 0);
		CompareMerged(&r, 3, &p);
		MergeOf(&r, 3, &p, &res);
		CHECK(res.exact && !res.fixed);
		unit_arena_reset();
	}

	/* one server's fixed-point adjusted cosine against long double over the same centred weights */
	MakeRows(&r, 8, 2000, 200, 50, W_INT);
	{
		InteractionMatrix *centred = Build(&r, 0, 0);
		InteractionMatrix *whole = Build(&r, 0, 0);
		NeighborLists *ref = NULL;
		SimParams	pk = {SIM_ADJUSTED_COSINE, 49, 1, 0, 1.2, 0.75};
		double		worst = 0;
		int32		n = centred ? centred->n_items : 0;
		long double *dot = calloc((size_t) Max(n, 1) * Max(n, 1), sizeof(long double));

		CHECK(centred && whole && dot);
		CHECK_EQ_INT(simcore_center_users(&unit_arena, &core_no_interrupts, centred, &err), CORE_OK);
		CHECK(sim_weights_off_grid(centred));
		for (int32 u = 0; dot && u < centred->n_users; u++)
			for (int64 a = centred->u_ptr[u]; a < centred->u_ptr[u + 1]; a++)
				for (int64 b = centred->u_ptr[u]; b < centred->u_ptr[u + 1]; b++)
					dot[(size_t) centred->u_item[a] * n + centred->u_item[b]] +=
						(long double) centred->u_w[a] * centred->u_w[b];
		CHECK_EQ_INT(simcore_compute(&unit_arena, whole, &pk, 2, &core_no_interrupts, &ref, &err), CORE_OK);
		for (int32 i = 0; dot && ref && i < n; i++)
			for (int32 t = 0; t < ref->n_out[i]; t++)
			{
				int32		j = ref->nb[(size_t) i * ref->k_cap + t];
				long double want = dot[(size_t) i * n + j] /
					sqrtl(dot[(size_t) i * n + i] * dot[(size_t) j * n + j]);

				worst = Max(worst, (double) fabsl(ref->sim[(size_t) i * ref->k_cap + t] - want));
			}
		CHECK(ref != NULL && ref->pairs > 100);
		CHECK(worst < 1e-14);
		free(dot);
	}
	unit_arena_reset();

	/* centred states are adjusted cosine's only; uncentred ones not its */
	MakeRows(&r, 9, 3000, 250, 60, W_INT);
	{
		SimParams	pa = {SIM_ADJUSTED_COSINE, 5, 1, 0, 1.2, 0.75};
		SimParams	pc = {SIM_COSINE, 5, 1, 0, 1.2, 0.75};
		SimParams	pj = {SIM_JACCARD, 5, 1, 0, 1.2, 0.75};
		SimParams	pp = {SIM_PEARSON, 5, 1, 0, 1.2, 0.75};
		Encoded		plain;

		EncodeFor(&r, 3, &pa, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &pc,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "centred") != NULL);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &pp,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		EncodeFor(&r, 3, &pc, &plain);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) plain.data, plain.len, plain.n, &pa,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "the weights as given") != NULL);
		/* a centred state beside an uncentred one */
		plain.data[1] = e.data[1];
		plain.len[1] = e.len[1];
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) plain.data, plain.len, plain.n, &pa,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		/* the counts of centred states are the counts */
		{
			InteractionMatrix *whole = Build(&r, 0, 0);
			NeighborLists *ref = NULL;

			CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &pj,
										&core_no_interrupts, &res, &err), CORE_OK);
			CHECK_EQ_INT(simcore_compute(&unit_arena, whole, &pj, 1, &core_no_interrupts, &ref, &err), CORE_OK);
			CHECK(res.lists && ref && res.lists->pairs == ref->pairs && ref->pairs > 100);
			for (int32 i = 0; res.lists && ref && i < ref->n_items; i++)
			{
				CHECK_EQ_INT(res.lists->n_out[i], ref->n_out[i]);
				for (int32 t = 0; t < Min(res.lists->n_out[i], ref->n_out[i]); t++)
					CHECK(res.lists->nb[(size_t) i * res.lists->k_cap + t] == ref->nb[(size_t) i * ref->k_cap + t] &&
						  res.lists->sim[(size_t) i * res.lists->k_cap + t] == ref->sim[(size_t) i * ref->k_cap + t]);
			}
		}
	}
	unit_arena_reset();
}

/*
 * BM25: a first pass of lengths states gives the mean length, as one server
 * computes it; the second pass's term states merge bit for bit into one
 * server's lists, for k1 and b varied, duplicates, ratings and logs, and
 * K1 = 0 (every term 1: unit states).  States of another mean length, of
 * mixed options, or of the first pass alone, are refused.
 */
static void
test_pairsums_bm25(void)
{
	static Rows r;
	Encoded		e;
	PairSumsResult res;
	CoreError	err;
	const WeightKind kinds[] = {W_INT, W_UNIT, W_HALF, W_LOG};

	for (int kd = 0; kd < 4; kd++)
		for (int shards = 1; shards <= 4; shards += 3)
		{
			SimParams	p = {SIM_BM25, 7, 1, 0, 100, 0.8};

			MakeRows(&r, 80 + kd, 4000, 300, 80, kinds[kd]);
			CompareMerged(&r, shards, &p);
			p.bm25_k1 = 1.2;
			p.bm25_b = 0.75;
			p.min_support = 2;
			p.shrinkage = 3;
			CompareMerged(&r, shards, &p);
			p.bm25_k1 = 0;		/* every nonzero term 1 */
			CompareMerged(&r, shards, &p);
			unit_arena_reset();
		}
	/* the first pass's mean is one server's: Σ len(u) / N over the whole matrix */
	MakeRows(&r, 90, 3000, 250, 60, W_LOG);
	{
		InteractionMatrix *whole = Build(&r, 0, 0);
		SimExactSum all;
		double		mean = MeanLengthOf(&r, 3);
		double		plain = 0;

		CHECK_EQ_INT(simcore_user_lengths(whole, &all, &err), CORE_OK);
		CHECK(mean == sim_bm25_mean_length(&all, whole->n_users));
		for (int32 u = 0; u < whole->n_users; u++)
			for (int64 a = whole->u_ptr[u]; a < whole->u_ptr[u + 1]; a++)
				plain += whole->u_w[a];
		CHECK_NEAR(mean, plain / whole->n_users, 1e-12 * mean);
	}
	/* a user's length beyond double precision: one server and a shard's first pass both refuse */
	{
		Rows	   *big = calloc(1, sizeof(Rows));
		InteractionMatrix *m;
		NeighborLists *ref = NULL;
		SimParams	p = {SIM_BM25, 5, 1, 0, 100, 0.8};
		PairSumsShard first;
		char	   *buf;
		size_t		len;

		CHECK(big != NULL);
		big->n = 3;
		big->user[0] = big->user[1] = big->user[2] = 7;
		big->item[0] = 100, big->item[1] = 103, big->item[2] = 106;
		big->w[0] = big->w[1] = 1e308;
		big->w[2] = 1;
		m = Build(big, 0, 0);
		CHECK_EQ_INT(simcore_compute(&unit_arena, m, &p, 1, &core_no_interrupts, &ref, &err), CORE_RANGE);
		memset(&first, 0, sizeof(first));
		first.lengths = true;
		first.raw_rows = 3;
		m = Build(big, 0, 0);
		CHECK_EQ_INT(pairsums_encode(&unit_arena, m, &first, (size_t) 1 << 20, &core_no_interrupts, &buf, &len, &err),
					 CORE_RANGE);
		free(big);
	}
	/* refusals: another mean length; first-pass states merged; a cosine merge of bm25 states */
	{
		SimParams	p = {SIM_BM25, 5, 1, 0, 100, 0.8};
		SimParams	pc = {SIM_COSINE, 5, 1, 0, 100, 0.8};
		PairSumsShard second,
					first;
		Encoded		other;

		memset(&second, 0, sizeof(second));
		second.bm25 = true;
		second.bm25_k1 = 100;
		second.bm25_b = 0.8;
		second.mean_length = nextafter(MeanLengthOf(&r, 3), 0);
		EncodeShardsWith(&r, 3, true, false, &second, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "mean length") != NULL);
		second.mean_length = MeanLengthOf(&r, 3);
		EncodeShardsWith(&r, 3, true, false, &second, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_OK);
		CHECK(res.exact && res.bm25_k1 == 100 && res.bm25_b == 0.8 && res.mean_length == second.mean_length);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &pc,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "BM25 terms") != NULL);
		/* mixed options: state 2 with another k1 */
		second.bm25_k1 = 50;
		EncodeShardsWith(&r, 3, true, false, &second, &other);
		e.data[1] = other.data[1];
		e.len[1] = other.len[1];
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "other BM25 options") != NULL);
		/* first-pass states cannot be merged; weighted states hold no lengths */
		memset(&first, 0, sizeof(first));
		first.lengths = true;
		EncodeShardsWith(&r, 3, false, false, &first, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "lengths") != NULL);
		EncodeShards(&r, 3, true, &e);
		{
			double		mean;
			int64		users;

			CHECK_EQ_INT(pairsums_mean_length((const char *const *) e.data, e.len, e.n, &mean, &users, &err),
						 CORE_INVALID);
		}
		/* cosine states merged as bm25 */
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_INVALID);
	}
	unit_arena_reset();
}

static void
test_pairsums_pearson(void)
{
	static Rows r,
				other;
	Encoded		e;
	PairSumsResult res;
	CoreError	err;
	const WeightKind kinds[] = {W_INT, W_HALF, W_SIGNED, W_LOG, W_TENTH};

	for (int kd = 0; kd < 5; kd++)
		for (int shards = 1; shards <= 4; shards += 3)
		{
			SimParams	p = {SIM_PEARSON, 7, 1, 0, 100, 0.8};

			MakeRows(&r, 120 + kd, 4000, 300, 80, kinds[kd]);
			CompareMerged(&r, shards, &p);
			p.min_support = 3;
			p.shrinkage = 4;
			CompareMerged(&r, shards, &p);
			p.k = 200;			/* beyond the items: every positive pair */
			CompareMerged(&r, shards, &p);
			unit_arena_reset();
		}
	/* the first pass's means are one server's, and within 1e-12 of a plain mean */
	MakeRows(&r, 130, 3000, 250, 60, W_LOG);
	{
		InteractionMatrix *whole = Build(&r, 0, 0);
		PairSumsShard second;
		double	   *mean = calloc(whole->n_items, sizeof(double));
		int			bad = 0;

		PearsonMeansOf(&r, 3, &second);
		CHECK_EQ_INT(second.n_means, whole->n_items);
		simcore_item_means(whole, &core_no_interrupts, mean);
		for (int32 i = 0; i < whole->n_items && i < second.n_means && bad < 3; i++)
		{
			double		plain = 0;

			for (int64 a = whole->i_ptr[i]; a < whole->i_ptr[i + 1]; a++)
				plain += whole->i_w[a];
			plain /= (double) (whole->i_ptr[i + 1] - whole->i_ptr[i]);
			if (second.mean_ids[i] != whole->item_ids[i] ||
				memcmp(&second.means[i], &mean[i], sizeof(double)) != 0 ||
				fabs(second.means[i] - plain) > 1e-12 * fabs(plain))
			{
				unit_fail(__FILE__, __LINE__, "item %d: merged mean %.17g, one server %.17g, plain %.17g",
						  i, second.means[i], mean[i], plain);
				bad++;
			}
		}
		free(mean);
	}
	/* items whose weights are all equal: exact zeros, as one server centres them; sums past DBL_MAX */
	{
		Rows	   *c = calloc(1, sizeof(Rows));
		InteractionMatrix *whole;
		PairSumsShard second;
		SimParams	p = {SIM_PEARSON, 5, 1, 0, 100, 0.8};

		CHECK(c != NULL);
		for (int t = 0; t < 40; t++)
		{
			c->user[c->n] = 7 + 5 * t;
			c->item[c->n] = 100;
			c->w[c->n++] = 0.1;			/* constant: its mean 0.1 exactly, not 40 * 0.1 / 40 */
			c->user[c->n] = 7 + 5 * t;
			c->item[c->n] = 103;
			c->w[c->n++] = (t % 3 + 1) * 0.5e308;	/* Σ w beyond DBL_MAX */
			c->user[c->n] = 7 + 5 * t;
			c->item[c->n] = 106;
			c->w[c->n++] = (double) (t % 5);
		}
		PearsonMeansOf(c, 3, &second);
		CHECK_EQ_INT(second.n_means, 3);
		CHECK(second.means[0] == 0.1);
		CHECK_NEAR(second.means[1], (14 * 0.5 + 13 * 1.0 + 13 * 1.5) / 40 * 1e308, 1e-12 * 1e308);
		CHECK(second.means[2] == 2.0);	/* 0..4, eight users each (zeros are rows too) */
		whole = Build(c, 0, 0);
		{
			double		mean[3];

			simcore_item_means(whole, &core_no_interrupts, mean);
			CHECK(memcmp(mean, second.means, sizeof(mean)) == 0);
		}
		CompareMerged(c, 3, &p);
		free(c);
	}
	/* refusals: means of other rows; an item without a mean; first-pass states; other kinds */
	{
		SimParams	p = {SIM_PEARSON, 5, 1, 0, 100, 0.8};
		SimParams	pc = {SIM_COSINE, 5, 1, 0, 100, 0.8};
		SimParams	pa = {SIM_ADJUSTED_COSINE, 5, 1, 0, 100, 0.8};
		SimParams	pj = {SIM_JACCARD, 5, 1, 0, 100, 0.8};
		PairSumsShard second,
					first;
		InteractionMatrix *m;

		MakeRows(&r, 140, 3000, 250, 60, W_INT);
		other = r;
		other.w[17] += 1;		/* one row changed between the passes */
		PearsonMeansOf(&other, 3, &second);
		EncodeShardsWith(&r, 3, true, false, &second, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_OK);
		CHECK(!res.exact);
		CHECK(strstr(res.why, "was centred on") != NULL);
		/* the counts of pearson states still serve jaccard */
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &pj,
									&core_no_interrupts, &res, &err), CORE_OK);
		CHECK(res.exact);
		/*
		 * an item the means lack (rows of a new item between the passes) is
		 * centred on its shard's own mean: exact, one server's lists, when
		 * one shard holds all its users; not exact when several do
		 */
		other = r;
		for (int t = 0; t < other.n; t++)
			if (other.item[t] == r.item[0])
				other.item[t] = r.item[0] + 1000000;
		PearsonMeansOf(&other, 2, &second);
		EncodeShardsWith(&r, 1, true, false, &second, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_OK);
		CHECK(res.exact);
		m = Build(&r, 0, 0);
		{
			NeighborLists *ref = NULL;

			CHECK_EQ_INT(simcore_compute(&unit_arena, m, &p, 1, &core_no_interrupts, &ref, &err), CORE_OK);
			bool		same = ref != NULL && res.exact && res.lists->pairs == ref->pairs &&
				res.lists->k_cap == ref->k_cap;

			for (int32 i = 0; same && i < ref->n_items; i++)
				same = res.lists->n_out[i] == ref->n_out[i] &&
					memcmp(res.lists->sim + (size_t) i * ref->k_cap, ref->sim + (size_t) i * ref->k_cap,
						   sizeof(double) * ref->n_out[i]) == 0 &&
					memcmp(res.lists->nb + (size_t) i * ref->k_cap, ref->nb + (size_t) i * ref->k_cap,
						   sizeof(int32) * ref->n_out[i]) == 0;
			CHECK(same);
		}
		EncodeShardsWith(&r, 3, true, false, &second, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_OK);
		CHECK(!res.exact);
		CHECK(strstr(res.why, "was centred on") != NULL);
		/* first-pass states merged; pearson states as cosine and adjusted cosine; cosine states as pearson */
		memset(&first, 0, sizeof(first));
		first.item_sums = true;
		EncodeShardsWith(&r, 3, false, false, &first, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "items' sums") != NULL);
		EncodeFor(&r, 3, &p, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &pc,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "centred by item") != NULL);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &pa,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		/* the second pass's states give the same means as the first */
		{
			char	   *blob;
			size_t		bl;
			int64	   *ids;
			double	   *means;
			int32		n;

			CHECK_EQ_INT(pairsums_item_means(&unit_arena, (const char *const *) e.data, e.len, e.n,
											 &core_no_interrupts, &blob, &bl, &err), CORE_OK);
			CHECK_EQ_INT(pairsums_means_decode(&unit_arena, blob, bl, &ids, &means, &n, &err), CORE_OK);
			PearsonMeansOf(&r, 3, &second);
			CHECK_EQ_INT(n, second.n_means);
			CHECK(n == second.n_means && memcmp(means, second.means, sizeof(double) * n) == 0);
			/* every flipped byte of the means refused */
			for (size_t at = 0; at < bl; at++)
			{
				blob[at] ^= 0x21;
				CHECK_EQ_INT(pairsums_means_decode(&unit_arena, blob, bl, &ids, &means, &n, &err), CORE_CORRUPT);
				blob[at] ^= 0x21;
			}
			CHECK_EQ_INT(pairsums_means_decode(&unit_arena, blob, bl - 1, &ids, &means, &n, &err), CORE_CORRUPT);
		}
		EncodeShards(&r, 3, true, &e);
		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, e.len, e.n, &p,
									&core_no_interrupts, &res, &err), CORE_INVALID);
		CHECK(strstr(err.message, "the weights as given") != NULL);
		{
			char	   *blob;
			size_t		bl;

			CHECK_EQ_INT(pairsums_item_means(&unit_arena, (const char *const *) e.data, e.len, e.n,
											 &core_no_interrupts, &blob, &bl, &err), CORE_INVALID);
		}
	}
	unit_arena_reset();
}

static void
test_pairsums_limits_and_damage(void)
{
	static Rows r;
	Encoded		e;
	PairSumsResult res;
	CoreError	err;
	SimParams	p = {SIM_COSINE, 5, 1, 0, 1.2, 0.75};
	InteractionMatrix *m;
	PairSumsShard sh;
	char	   *buf;
	size_t		len;
	uint64		rs = 77;
	int			corrupt = 0;

	MakeRows(&r, 3, 3000, 250, 60, W_INT);
	m = Build(&r, 0, 1);
	sh = ShardOf(&r, 0, 1, true);
	CHECK_EQ_INT(pairsums_encode(&unit_arena, m, &sh, 4096, &core_no_interrupts, &buf, &len, &err), CORE_LIMIT);
	CHECK(strstr(err.message, "4096 bytes") != NULL);

	EncodeShards(&r, 2, true, &e);
	/* not a state at all; a truncated one */
	{
		const char *junk = "hello";
		size_t		jl = 5;

		CHECK_EQ_INT(pairsums_merge(&unit_arena, &junk, &jl, 1, &p, &core_no_interrupts, &res, &err), CORE_CORRUPT);
	}
	for (size_t cut = PAIRSUMS_HEADER; cut < e.len[0]; cut += 1 + e.len[0] / 40)
	{
		size_t		lens[2] = {cut, e.len[1]};

		CHECK_EQ_INT(pairsums_merge(&unit_arena, (const char *const *) e.data, lens, 2, &p,
									&core_no_interrupts, &res, &err), CORE_CORRUPT);
	}
	/*
	 * flipped bytes: the CRC refuses every one; with the CRC recomputed
	 * (pairsums_set_seconds), the merge's own checks see them: an error or
	 * a result, never a crash or a read past the end
	 */
	for (int trial = 0; trial < 600; trial++)
	{
		char	   *copy = malloc(e.len[1]);
		const char *states[2] = {e.data[0], copy};
		size_t		at;
		CoreStatus	st;

		memcpy(copy, e.data[1], e.len[1]);
		for (int f = 0; f < 1 + trial % 3; f++)
		{
			at = (size_t) (unit_rand(&rs) % e.len[1]);
			copy[at] ^= (char) (1 + unit_rand(&rs) % 255);
		}
		if (trial % 2 == 1)
			pairsums_set_seconds(copy, e.len[1], 0.25);
		st = pairsums_merge(&unit_arena, states, e.len, 2, &p, &core_no_interrupts, &res, &err);
		if (trial % 2 == 0)
			CHECK_EQ_INT(st, CORE_CORRUPT);
		else
		{
			CHECK(st == CORE_OK || st == CORE_CORRUPT || st == CORE_LIMIT);
			corrupt += st == CORE_CORRUPT;
		}
		free(copy);
		unit_arena_reset();
		EncodeShards(&r, 2, true, &e);
	}
	CHECK(corrupt > 100);
	unit_arena_reset();
}

void
pairsums_suite(void)
{
	RUN(test_pairsums_equal_one_server);
	RUN(test_pairsums_unit_weights);
	RUN(test_pairsums_off_grid);
	RUN(test_pairsums_adjusted);
	RUN(test_pairsums_bm25);
	RUN(test_pairsums_pearson);
	RUN(test_pairsums_limits_and_damage);
}
