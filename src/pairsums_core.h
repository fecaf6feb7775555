/*
 * pairsums_core.h
 *	  A refresh split over the shards of a distributed source: each shard's
 *	  partial pair sums as bytes, and their exact merge into neighbour lists.
 *
 * The item-item metrics that read only pair sums, co-occurrence counts and
 * item degrees (cosine, jaccard, conditional) decompose over users:
 * G[i][j] = Σ_u w(u,i)·w(u,j), and a source distributed by its user column
 * keeps each user's rows in one shard.  A shard encodes its rows of G and
 * the counts (pairsums_encode); the coordinator adds the shards' rows item
 * by item and selects the top k with the selection sim_compute runs
 * (pairsums_merge).  Nothing here touches the server: plain C (core.h),
 * unit-tested and fuzzed without one; pairsums.c is the aggregate around it.
 *
 * Exactness.  The merged lists must equal one server's bit for bit.  One
 * server adds a plain cosine's products in one of two ways (simcore.h,
 * sim_cosine_fixed).  On a power-of-two grid (every weight a multiple of 2^q,
 * every item's Σ w² below 2^53 units of 2^2q: unweighted sources, counts,
 * ratings, half-stars) it adds doubles, and every addition is exact.  Off
 * the grid (ln(1 + plays)) it adds the products of the scaled weights in
 * fixed point, units of 2^-96, which is exact and order-free when each
 * item's nonzero weights span less than 2^22 : 1.  A shard on its own grid
 * sends its sums as integers of units of 2^2q ("units"); a shard off it
 * sends fixed-point sums at its own items' scaling ("fixed").  The
 * coordinator adds units as integers while every state has units and the
 * grid's bounds hold over all of them (then one server added exact
 * doubles); otherwise it brings every sum to fixed point at the global
 * items' scaling (shifts by whole bits, each checked to lose nothing) and
 * adds those, provided every item's weights span less than 2^22 : 1 over
 * all the shards (then one server's fixed sums cut nothing either).  When
 * neither holds, the result says so (exact = false) and the caller reads
 * the rows instead.  Counts are integers and always exact, so jaccard and
 * conditional always merge.  Duplicate rows of a (user, item) are summed in
 * ascending order of their weights on every node, so their sums do not
 * depend on the rows' order either.
 *
 * Pearson centres each item's weights on its mean over every user, which
 * no shard knows alone: it takes two passes.  The first (item sums) sends
 * each item's users, smallest and largest weight and exact Σ w; the
 * coordinator turns them into the items' means (pairsums_item_means, one
 * server's sim_pearson_mean) and sends those back; the second centres each
 * shard's weights on them and sends a cosine's sums of the centred weights,
 * with each item's first-pass figures and the mean it used, so that the
 * merge checks the means are those of the states' own rows.
 *
 * Layout (integers little-endian; "v" an unsigned LEB128 varint, "z" a
 * zigzag varint; "V" and "Z" the same up to 128 bits; "X" an exact sum:
 * v (limbs << 1 | negative), then when limbs > 0 v the lowest nonzero limb
 * l and the magnitude's limbs l .. l + limbs - 1 as v):
 *   header: u32 magic 'MRPS' | u8 version 3 | u16 flags (1 weighted, 2 exact
 *     (units), 4 unit: weighted with every weight 1, q 0; the sums equal the
 *     counts and the norms the degrees, so neither is written below; 8 fixed;
 *     16 centred: weighted, every user's weights minus the user's mean, the
 *     header's q and max and every sum and norm those of the centred weights;
 *     32 lengths: BM25's first pass, no items and no rows; 64 bm25: weighted,
 *     BM25's terms t(u,i) = w(K1+1)/(K1 norm(u) + w) instead of the weights,
 *     the header's q and max those of the terms; 128 item sums: Pearson's
 *     first pass, items but no rows; 256 pearson: weighted, each item's
 *     weights minus its mean over every shard, the header's q and max and
 *     every sum and norm those of the centred weights)
 *     | u16 node port | i64 raw rows | i64 users | i64 distinct pairs
 *     | i32 items | i32 q (units; 0 when fixed) | f64 max |raw weight|
 *     | f64 cpu seconds | i64 row entries
 *   lengths and bm25 only: (bm25) f64 K1 | f64 B | f64 mean length; (both)
 *     the exact sum of the users' lengths (SimExactSum, normalised), its
 *     SIM_EXACT_LIMBS limbs as v, the last as z
 *   items (n times, ids ascending): id (i64 for the first, then v of the
 *     positive difference) | v users of the item | weighted and not unit:
 *     f64 max |w|, f64 min nonzero |w| (0: none), then Σ w² as v in units of
 *     2^2q, or (fixed) as V in units of 2^-96 of the item's scaled weights
 *     | item sums and pearson: f64 min w, f64 max w, X Σ w (of the weights as
 *     given) | pearson: f64 the mean its weights were centred on
 *   rows (n times, item order): v entries | entries times: v (j - previous
 *     j - 1, previous starting at -1; the item itself omitted) | v count
 *     | weighted and not unit: Σ w·w as z in units of 2^2q, or (fixed) as Z
 *     in units of 2^-96 of the two items' scaled weights
 *   u32 CRC-32C of every byte before it
 * A state whose CRC does not match is refused before anything else is read.
 */
#ifndef MEDIA_RECO_PAIRSUMS_CORE_H
#define MEDIA_RECO_PAIRSUMS_CORE_H

#include "core.h"

#include "simcore.h"

#define PAIRSUMS_MAGIC		0x5350524dU	/* "MRPS" */
#define PAIRSUMS_VERSION	3
#define PAIRSUMS_WEIGHTED	1
#define PAIRSUMS_EXACT		2
#define PAIRSUMS_UNIT		4	/* weighted, every weight 1: no sums or norms written */
#define PAIRSUMS_FIXED		8	/* weighted, off its grid: fixed-point sums */
#define PAIRSUMS_CENTRED	16	/* weighted, each user's weights minus the user's mean (adjusted cosine) */
#define PAIRSUMS_LENGTHS	32	/* BM25's first pass: the users' lengths only, no items */
#define PAIRSUMS_BM25		64	/* weighted, BM25's terms (k1, b, mean length and the lengths after the header) */
#define PAIRSUMS_ITEMSUMS	128 /* Pearson's first pass: each item's users, min, max and exact Σ w; no rows */
#define PAIRSUMS_PEARSON	256 /* weighted, each item's weights minus its mean over every shard */
#define PAIRSUMS_HEADER		65
#define PAIRSUMS_SECONDS_AT 49	/* the header's f64 cpu seconds */

/*
 * The metrics whose lists merge from per-user pair sums, counts and degrees
 * (every check of a metric against pair sums asks this one).
 */
static inline bool
pairsums_metric_merged(SimMetric m)
{
	return m == SIM_COSINE || m == SIM_ADJUSTED_COSINE || m == SIM_PEARSON || m == SIM_JACCARD ||
		m == SIM_CONDITIONAL || m == SIM_BM25;
}

/* What the shard's reader saw before the matrix was built. */
typedef struct PairSumsShard
{
	bool		weighted;		/* the metric reads the sums (cosine) */
	bool		centred;		/* weighted, centred by user first (adjusted cosine) */
	bool		lengths;		/* BM25's first pass: the users' lengths only */
	bool		bm25;			/* weighted, BM25's terms from the options below */
	double		bm25_k1;
	double		bm25_b;
	double		mean_length;	/* from the first pass over every shard (pairsums_mean_length) */
	bool		item_sums;		/* Pearson's first pass: the items' sums only */
	bool		pearson;		/* weighted, centred on the means below */
	int32		n_means;		/* the items' means over every shard (pairsums_means_decode) */
	const int64 *mean_ids;		/* [n_means], ascending */
	const double *means;		/* [n_means] */
	int64		raw_rows;		/* rows read, duplicates included */
	double		max_abs_raw;	/* largest |weight| of a row */
	int32		q;				/* every row's weight is a multiple of 2^q (0: none nonzero) */
	double		seconds;		/* CPU seconds of the shard's work, for the report */
	uint16		port;			/* the node's port, for the per-node report */
} PairSumsShard;

/*
 * Encode m (built from the shard's rows, m's own weights, unscaled) into a
 * fresh buffer from a (*out, *len).  With sh->centred, m's weights are first
 * centred by user in place (simcore_center_users), as one server centres
 * them for adjusted cosine: a user's rows are all in one shard, so the
 * centred weights are one server's bit for bit, and the grid rule and the
 * sums below are theirs.  With sh->bm25 the weights become BM25's terms
 * (simcore_bm25_terms with sh's options and the global mean length) the
 * same way; with sh->lengths only the users' exact total length is written.
 * With sh->item_sums only the items' first-pass figures are written; with
 * sh->pearson each item's weights are centred on its mean in sh->means
 * (an item without one on its mean over m: see ShardMeans).  Fixed-point sums scale m's weights in
 * place (simcore_cosine_scale).  CORE_LIMIT when it would exceed max_bytes.
 * Polls hooks.  Main thread.
 */
extern CoreStatus pairsums_encode(const CoreAlloc *a, InteractionMatrix *m,
								  const PairSumsShard *sh, size_t max_bytes,
								  const CoreInterrupts *hooks, char **out, size_t *len,
								  CoreError *err);

/* Overwrite the CPU seconds in an encoded state's header (and its CRC); len the state's. */
extern void pairsums_set_seconds(char *state, size_t len, double seconds);

/* One shard's header, checked (CORE_CORRUPT otherwise); len the whole state's. */
typedef struct PairSumsHeader
{
	uint16		flags;
	uint16		port;
	int64		raw_rows;
	int64		users;
	int64		nnz;
	int32		n_items;
	int32		q;
	double		max_abs_raw;
	double		seconds;
	int64		entries;
	/* lengths and bm25 states */
	double		bm25_k1;
	double		bm25_b;
	double		mean_length;
	SimExactSum lengths;
	size_t		body;			/* where the items start */
} PairSumsHeader;

extern CoreStatus pairsums_header(const char *data, size_t len, PairSumsHeader *h, CoreError *err);

#define PAIRSUMS_MAX_NODES 64

typedef struct PairSumsResult
{
	bool		exact;			/* false: nothing below the counts is set */
	bool		fixed;			/* the sums were merged in fixed point (off the weights' grid) */
	char		why[160];		/* when not exact */
	int64		raw_rows;
	int64		users;
	int64		nnz;
	int32		n_items;
	int64	   *item_ids;		/* [n_items], ascending */
	NeighborLists *lists;		/* indexes into item_ids */
	int			n_states;
	double		shard_seconds_sum;
	double		shard_seconds_max;
	int			n_nodes;		/* distinct ports, at most PAIRSUMS_MAX_NODES */
	uint16		node_port[PAIRSUMS_MAX_NODES];
	double		node_seconds[PAIRSUMS_MAX_NODES];
	int64		entries;		/* row entries received */
	double		bm25_k1;		/* bm25: the states' options */
	double		bm25_b;
	double		mean_length;
} PairSumsResult;

/*
 * Merge n shards' states (each checked as it is read: CORE_CORRUPT, with
 * what is wrong) into top-k lists for p (cosine, adjusted cosine, jaccard,
 * conditional; others CORE_INVALID), exactly as sim_compute over all the
 * shards' rows in one matrix.  Adjusted cosine needs centred states, cosine
 * uncentred ones (CORE_INVALID otherwise); the counts of either serve
 * jaccard and conditional.  BM25 needs bm25 states that agree on their
 * options and whose mean length is their users' (CORE_INVALID otherwise);
 * its idf comes from the merged degrees and users, its options from the
 * states (out->bm25_k1, bm25_b, mean_length), not from p.  Pearson needs
 * pearson states; when an item's mean over the states' own first-pass
 * figures is not the one its weights were centred on (rows changed between
 * the passes, means of another first pass), out->exact is false and says
 * which item.  The states must come from disjoint sets of users.  Memory:
 * the lists plus about 40 bytes per item and 16 per item per state.  Polls
 * hooks.  Main thread.
 */
/*
 * BM25's first pass: the mean history length over n states (lengths or
 * bm25 states of disjoint users; CORE_CORRUPT when damaged, CORE_INVALID
 * for other kinds), as one server computes it (sim_bm25_mean_length).
 */
extern CoreStatus pairsums_mean_length(const char *const *states, const size_t *lens, int n,
									   double *mean_length, int64 *users, CoreError *err);

/*
 * Pearson's first pass: the items' means over n states (item sums or
 * pearson states of disjoint users; CORE_CORRUPT when damaged, CORE_INVALID
 * for other kinds), each as one server computes it (sim_pearson_mean of the
 * merged figures), encoded for the second pass into a fresh buffer from a
 * (*out, *len):
 *   u32 magic 'MRPM' | u8 version 1 | u32 items | items (ids ascending): id
 *   (i64 for the first, then v of the positive difference) | f64 mean
 *   | u32 CRC-32C of every byte before it
 * Polls hooks.  Main thread.
 */
#define PAIRSUMS_MEANS_MAGIC 0x4d50524dU	/* "MRPM" */

extern CoreStatus pairsums_item_means(const CoreAlloc *a, const char *const *states, const size_t *lens, int n,
									  const CoreInterrupts *hooks, char **out, size_t *len, CoreError *err);

/* the means' ids and values, checked (CORE_CORRUPT otherwise), in fresh arrays from a */
extern CoreStatus pairsums_means_decode(const CoreAlloc *a, const char *data, size_t len, int64 **ids,
										double **means, int32 *n, CoreError *err);

extern CoreStatus pairsums_merge(const CoreAlloc *a, const char *const *states, const size_t *lens,
								 int n, const SimParams *p, const CoreInterrupts *hooks,
								 PairSumsResult *out, CoreError *err);

#endif
