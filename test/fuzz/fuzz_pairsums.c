// FUZZ_LIBS: -L/usr/lib/x86_64-linux-gnu/openblas-serial -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-serial -lopenblas -lm
/*
 * fuzz_pairsums.c
 *	  The distributed refresh's merge (pairsums_core.c) on arbitrary bytes,
 *	  and differentially on arbitrary interactions.  Byte 0 picks the mode
 *	  and byte 1 the metric and k (when byte 1 / 24 is odd, cosine becomes
 *	  adjusted cosine, its states centred by user, jaccard BM25, its
 *	  states made in two passes: the users' lengths, then the terms, and
 *	  conditional Pearson, in two passes: the items' means, then the
 *	  weights centred on them).
 *	  - raw (byte 0 even): the rest is cut into 1-3 states, each given a
 *	    valid CRC unless bit 1 of byte 0 is set (then the CRC check is what
 *	    is fuzzed), and merged: an error or a result (CORE_INVALID only for
 *	    states of another kind than the metric merges: centred by user or
 *	    item, uncentred, BM25 terms, lengths, item sums, or BM25 states that
 *	    disagree), and a result's lists
 *	    must be well formed (ids ascending, neighbours in range and not the
 *	    item itself, finite similarities, supports >= 1).
 *	  - differential (byte 0 odd): the rest is (user, item, weight) triples,
 *	    weights multiples of 1/4 (negative and zero included; with bit 1 of
 *	    byte 0 set, times ln 3: off every grid, so merged in fixed point),
 *	    split by user into 1-3 shards, each encoded, merged, and compared bit
 *	    for bit with simcore_compute over all the rows: they must be equal,
 *	    always.
 */
#include "core.h"

#include <math.h>
#include <string.h>

#include "pairsums_core.h"
#include "simcore.h"
#include "fuzz_common.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
CheckLists(const PairSumsResult *res)
{
	const NeighborLists *nl = res->lists;

	for (int32 i = 1; i < res->n_items; i++)
		FUZZ_CHECK(res->item_ids[i] > res->item_ids[i - 1]);
	FUZZ_CHECK(nl != NULL && nl->n_items == res->n_items);
	for (int32 i = 0; i < nl->n_items; i++)
	{
		FUZZ_CHECK(nl->n_out[i] >= 0 && nl->n_out[i] <= nl->k_cap);
		for (int32 t = 0; t < nl->n_out[i]; t++)
		{
			size_t		at = (size_t) i * nl->k_cap + t;

			FUZZ_CHECK(nl->nb[at] >= 0 && nl->nb[at] < nl->n_items && nl->nb[at] != i);
			FUZZ_CHECK(isfinite(nl->sim[at]));
			FUZZ_CHECK(nl->support[at] >= 1);
		}
	}
}

static bool off_grid;			/* the differential run's weights times ln 3 */

static double
WeightOf(uint8_t b)
{
	return (double) (int8) b / 4.0 * (off_grid ? 1.0986122886681098 : 1.0);
}

static InteractionMatrix *
Build(FuzzArena *ar, const uint8_t *t, size_t n, int shard, int n_shards)
{
	CoreError	err;
	TripleBuffer *tb = simcore_triples_create(&ar->alloc, (size_t) 64 << 20, "maintenance_work_mem", &err);
	InteractionMatrix *m = NULL;

	FUZZ_CHECK(tb != NULL);
	for (size_t r = 0; r < n; r++)
	{
		int64		user = t[3 * r] % 16;

		if (n_shards > 0 && (int) (user % n_shards) != shard)
			continue;
		FUZZ_CHECK(simcore_triples_add(tb, user, t[3 * r + 1] % 24, WeightOf(t[3 * r + 2]), &err) == CORE_OK);
	}
	FUZZ_CHECK(simcore_matrix_build(&ar->alloc, tb, true, &core_no_interrupts, &m, &err) == CORE_OK);
	return m;
}

static void
Differential(FuzzArena *ar, const uint8_t *t, size_t n, int n_shards, const SimParams *p)
{
	char	   *states[3];
	size_t		lens[3];
	PairSumsResult res;
	NeighborLists *ref;
	InteractionMatrix *whole;
	CoreError	err;

	double		mean = 0;
	CoreStatus	st;
	int64	   *mean_ids = NULL;
	double	   *means = NULL;
	int32		n_means = 0;

	if (p->metric == SIM_BM25)
	{
		/* the first pass: each shard's users' lengths, their mean */
		int64		users;

		for (int s = 0; s < n_shards; s++)
		{
			PairSumsShard sh;

			memset(&sh, 0, sizeof(sh));
			sh.lengths = true;
			for (size_t r = 0; r < n; r++)
				sh.raw_rows += (int) ((t[3 * r] % 16) % n_shards) == s;
			FUZZ_CHECK(pairsums_encode(&ar->alloc, Build(ar, t, n, s, n_shards), &sh, (size_t) 64 << 20,
									   &core_no_interrupts, &states[s], &lens[s], &err) == CORE_OK);
		}
		FUZZ_CHECK(pairsums_mean_length((const char *const *) states, lens, n_shards, &mean, &users, &err) == CORE_OK);
	}
	if (p->metric == SIM_PEARSON)
	{
		/* the first pass: each shard's items' sums, their means */
		char	   *blob;
		size_t		blen;

		for (int s = 0; s < n_shards; s++)
		{
			PairSumsShard sh;

			memset(&sh, 0, sizeof(sh));
			sh.item_sums = true;
			for (size_t r = 0; r < n; r++)
				sh.raw_rows += (int) ((t[3 * r] % 16) % n_shards) == s;
			FUZZ_CHECK(pairsums_encode(&ar->alloc, Build(ar, t, n, s, n_shards), &sh, (size_t) 64 << 20,
									   &core_no_interrupts, &states[s], &lens[s], &err) == CORE_OK);
		}
		FUZZ_CHECK(pairsums_item_means(&ar->alloc, (const char *const *) states, lens, n_shards, &core_no_interrupts,
									   &blob, &blen, &err) == CORE_OK);
		FUZZ_CHECK(pairsums_means_decode(&ar->alloc, blob, blen, &mean_ids, &means, &n_means, &err) == CORE_OK);
	}
	for (int s = 0; s < n_shards; s++)
	{
		InteractionMatrix *m = Build(ar, t, n, s, n_shards);
		PairSumsShard sh;

		memset(&sh, 0, sizeof(sh));
		sh.weighted = SIM_IS_COSINE(p->metric) || p->metric == SIM_BM25;
		sh.centred = p->metric == SIM_ADJUSTED_COSINE;
		sh.bm25 = p->metric == SIM_BM25;
		sh.bm25_k1 = p->bm25_k1;
		sh.bm25_b = p->bm25_b;
		sh.mean_length = mean;
		sh.pearson = p->metric == SIM_PEARSON;
		sh.n_means = n_means;
		sh.mean_ids = mean_ids;
		sh.means = means;
		sh.q = INT32_MAX;
		for (size_t r = 0; r < n; r++)
		{
			double		w = WeightOf(t[3 * r + 2]);

			if ((int) ((t[3 * r] % 16) % n_shards) != s)
				continue;
			sh.raw_rows++;
			sh.max_abs_raw = fmax(sh.max_abs_raw, fabs(w));
			if (w != 0 && sim_weight_grid(w) < sh.q)
				sh.q = sim_weight_grid(w);
		}
		if (sh.q == INT32_MAX)
			sh.q = 0;
		st = pairsums_encode(&ar->alloc, m, &sh, (size_t) 64 << 20, &core_no_interrupts,
							 &states[s], &lens[s], &err);
		if (st == CORE_RANGE && p->metric == SIM_BM25)
		{
			/* a term not finite (K1·norm(u) + w = 0): one server, with the same terms, refuses too */
			whole = Build(ar, t, n, 0, 0);
			FUZZ_CHECK(simcore_compute(&ar->alloc, whole, p, 1, &core_no_interrupts, &ref, &err) == CORE_RANGE);
			return;
		}
		FUZZ_CHECK(st == CORE_OK);
	}
	FUZZ_CHECK(pairsums_merge(&ar->alloc, (const char *const *) states, lens, n_shards, p,
							  &core_no_interrupts, &res, &err) == CORE_OK);
	/*
	 * Off the grid, duplicates such as 3c/4 - c/2 - c/4 leave a rounding
	 * residue beside whole weights: an item spanning 2^22 : 1, refused; so
	 * can centred weights (by user or item) and BM25's terms (a term of 1/4 beside one near
	 * K1 + 1 for a user of a tiny length)
	 */
	if ((off_grid || p->metric == SIM_ADJUSTED_COSINE || p->metric == SIM_PEARSON || p->metric == SIM_BM25) &&
		!res.exact)
	{
		FUZZ_CHECK(strstr(res.why, "span") != NULL);
		return;
	}
	FUZZ_CHECK(res.exact);
	CheckLists(&res);
	whole = Build(ar, t, n, 0, 0);
	FUZZ_CHECK(simcore_compute(&ar->alloc, whole, p, 1, &core_no_interrupts, &ref, &err) == CORE_OK);
	FUZZ_CHECK(whole->n_items == res.n_items && ref->pairs == res.lists->pairs);
	FUZZ_CHECK(whole->n_items == 0 || memcmp(whole->item_ids, res.item_ids, sizeof(int64) * whole->n_items) == 0);
	for (int32 i = 0; i < ref->n_items; i++)
	{
		FUZZ_CHECK(ref->n_out[i] == res.lists->n_out[i]);
		for (int32 r = 0; r < ref->n_out[i]; r++)
		{
			size_t		a = (size_t) i * ref->k_cap + r,
						b = (size_t) i * res.lists->k_cap + r;

			FUZZ_CHECK(ref->nb[a] == res.lists->nb[b]);
			FUZZ_CHECK(ref->support[a] == res.lists->support[b]);
			FUZZ_CHECK(memcmp(&ref->sim[a], &res.lists->sim[b], sizeof(double)) == 0);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	ar;
	CoreError	err;
	SimParams	p;
	PairSumsResult res;
	const uint8_t *rest = data + 2;
	size_t		len;
	int			n_states;

	if (size < 2)
		return 0;
	len = size - 2;
	memset(&p, 0, sizeof(p));
	p.metric = data[1] % 3 == 0 ? SIM_COSINE : data[1] % 3 == 1 ? SIM_JACCARD : SIM_CONDITIONAL;
	if (p.metric == SIM_COSINE && (data[1] / 24) % 2 == 1)
		p.metric = SIM_ADJUSTED_COSINE;
	if (p.metric == SIM_JACCARD && (data[1] / 24) % 2 == 1)
		p.metric = SIM_BM25;
	if (p.metric == SIM_CONDITIONAL && (data[1] / 24) % 2 == 1)
		p.metric = SIM_PEARSON;
	p.k = 1 + (data[1] / 3) % 8;
	p.min_support = 1 + (data[1] >> 6);
	p.shrinkage = (data[0] & 4) ? 2.5 : 0;
	p.bm25_k1 = (data[0] & 4) ? 0 : 1.2;	/* K1 = 0: every term 1 */
	p.bm25_b = 0.75;
	n_states = 1 + (data[0] >> 3) % 3;
	fuzz_arena_init(&ar);
	off_grid = (data[0] & 2) != 0;
	if (data[0] & 1)
	{
		if (len / 3 <= 150)
			Differential(&ar, rest, len / 3, n_states, &p);
	}
	else
	{
		const char *states[3];
		size_t		lens[3];
		size_t		chunk = len / n_states;
		CoreStatus	st;

		for (int s = 0; s < n_states; s++)
		{
			size_t		l = s == n_states - 1 ? len - chunk * s : chunk;
			char	   *copy = ar.alloc.alloc(ar.alloc.ctx, Max(l, 1));

			FUZZ_CHECK(copy != NULL);
			memcpy(copy, rest + chunk * s, l);
			if (!(data[0] & 2) && l >= PAIRSUMS_HEADER + 4)
			{
				/* keep the seconds field as it is: only the CRC is forged */
				double		secs;

				memcpy(&secs, copy + PAIRSUMS_SECONDS_AT, sizeof(secs));
				pairsums_set_seconds(copy, l, secs);
			}
			states[s] = copy;
			lens[s] = l;
		}
		st = pairsums_merge(&ar.alloc, states, lens, n_states, &p, &core_no_interrupts, &res, &err);
		FUZZ_CHECK(st == CORE_OK || st == CORE_CORRUPT || st == CORE_LIMIT || st == CORE_NOMEM ||
				   (st == CORE_INVALID && (SIM_IS_COSINE(p.metric) || p.metric == SIM_BM25) &&
					(strstr(err.message, "holds the sums of") != NULL || strstr(err.message, "BM25") != NULL ||
					 strstr(err.message, "lengths") != NULL || strstr(err.message, "items' sums") != NULL)));
		if (st == CORE_OK && res.exact)
			CheckLists(&res);
	}
	fuzz_arena_reset(&ar);
	return 0;
}
