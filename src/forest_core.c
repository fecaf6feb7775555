/*
 * forest_core.c
 *	  Random forests: exact-split CART trees grown on helper threads.
 *
 * Preparation (main thread).  The rows are put in a canonical order (by
 * label, then features), so the model does not depend on the order in which
 * an aggregate or a scan delivered them.  Each feature is sorted once and
 * replaced by the rank of its value among the feature's distinct values
 * ("codes", column-major, UINT32_MAX for a missing value).  A split between
 * two consecutive codes is a split between two consecutive distinct values:
 * the exact search scikit-learn and ranger do, not a binned approximation.
 *
 * Growing (one task per tree, any thread).  The tree's rows are drawn with
 * the tree's own random stream (seeded from the seed and the tree number,
 * so the thread that grows it does not matter).  Bootstrap counts become row
 * weights, as in scikit-learn.  Nodes are expanded depth-first from an
 * explicit stack.  At a node, features are drawn without replacement until
 * max_features of them have been found non-constant; for each, the node's
 * rows are grouped by code into bins, either by counting into a code-indexed
 * table (when the feature has few distinct values relative to the node) or
 * by a radix sort of (code, row) keys, and the bins are scanned left to right
 * with Gini (classification) or variance (regression) as the criterion.
 * Rows with a missing value are tried on each side of every threshold, and
 * "non-missing | missing" is a candidate split of its own; when a node had
 * no missing value for the chosen feature, missing values later follow the
 * larger child.
 *
 * The helpers run pure C: the tree buffers they grow come from malloc and
 * are charged to a shared byte budget; the main thread frees them on every
 * exit path.  Out-of-bag scores are computed afterwards, in tree order per
 * row, so they too are independent of the thread count.
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "arrays.h"
#include "core_pg.h"
#include "forest_core.h"
#include "model_blob_pg.h"
#include "training_core.h"

#define CODE_MISSING UINT32_MAX
#define OOB_BLOCK 512

typedef struct TreeBuild
{
	ForestNode *nodes;
	int32		n_nodes;
	int32		cap_nodes;
	double	   *values;
	int32		n_leaves;
	int32		cap_leaves;
	double	   *importance;		/* [nf] weighted impurity decrease */
	uint64	   *inbag;			/* bitmap over rows; NULL when all rows are in */
} TreeBuild;

typedef struct StackEntry
{
	int32		start;
	int32		end;
	int32		node;
	int32		depth;
} StackEntry;

typedef struct TrainScratch
{
	int32	   *cnt;			/* [n] draws per row */
	int32	   *idx;			/* [n] the tree's rows, grouped by node */
	double	   *w;				/* [n] row weight in the current tree */
	uint64	   *keys;			/* [n] */
	uint64	   *tmp;			/* [n] */
	double	   *stats;			/* [maxq * S] per-bin statistics */
	int32	   *bin_n;			/* [maxq] rows per bin */
	uint32	   *bin_code;		/* [maxq] */
	int32	   *perm;			/* [nf] */
	StackEntry *stack;			/* [n + 1] */
	double	   *vec;			/* [6 * S] node, missing, total, left, right, best */
	double	   *oob;			/* [OOB_BLOCK * vw] */
} TrainScratch;

typedef struct TrainShared
{
	const ForestParams *p;
	int32		n;
	int32		nf;
	int32		nc;				/* classes; 0 for regression */
	int32		S;				/* statistics per bin: nc, or (Σw, Σw·ys, Σw·y) */
	int32		vw;				/* leaf value width: nc or 1 */
	int32		mtry;
	int32		maxq;
	const uint32 *codes;		/* [nf * n] */
	const int32 *nq;			/* [nf] distinct values per feature */
	double	  **uvals;			/* [nf][nq] ascending distinct values */
	const int32 *ycls;			/* [n] class index (classification) */
	const double *y;			/* [n] label in canonical order */
	const double *ys;			/* [n] regression: the label centred and scaled, for split scores */
	int			yexp;			/* regression: ys = y * 2^-yexp - mean */
	const double *cw;			/* [nc] class weights, or NULL */
	const double *x;			/* caller's row-major matrix */
	const int32 *ord;			/* canonical position -> caller's row */
	TreeBuild  *trees;
	TrainScratch *scratch;
	double	   *oob_acc;		/* [n * vw] */
	int32	   *oob_cnt;		/* [n] */
	int64		mem_limit;
	int64		mem_used;		/* atomic */
	int			error;			/* atomic: 1 budget, 2 malloc failed */
	ParallelRun run;
} TrainShared;

typedef struct SplitChoice
{
	double		score;
	int32		feature;
	uint32		lo_code;		/* codes <= lo_code go left */
	double		threshold;
	bool		missing_left;
	int32		n_left;
} SplitChoice;

/* ---------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------- */

static inline uint64
Mix64(uint64 z)
{
	z += UINT64CONST(0x9E3779B97F4A7C15);
	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static inline uint64
TreeSeed(uint64 seed, int64 tree)
{
	return Mix64(seed ^ Mix64((uint64) tree + 1));
}

/* order-preserving map of a non-NaN double to an unsigned key; -0 == +0 */
static inline uint64
DoubleKey(double v)
{
	uint64		u;

	if (v == 0)
		v = 0.0;
	memcpy(&u, &v, 8);
	return (u & UINT64CONST(0x8000000000000000)) ? ~u : (u | UINT64CONST(0x8000000000000000));
}

/* LSD radix sort of a[] by bits [lo, lo + bits); passes with one digit value are skipped */
static void
RadixSort(uint64 *a, uint64 *tmp, int64 n, int lo, int bits, uint32 *pa, uint32 *ptmp)
{
	uint64	   *src = a,
			   *dst = tmp;
	uint32	   *psrc = pa,
			   *pdst = ptmp;

	if (n <= 48 && pa == NULL)
	{
		for (int64 i = 1; i < n; i++)
		{
			uint64		v = a[i];
			int64		j = i;

			while (j > 0 && (a[j - 1] >> lo) > (v >> lo))
			{
				a[j] = a[j - 1];
				j--;
			}
			a[j] = v;
		}
		return;
	}
	for (int s = lo; s < lo + bits; s += 11)
	{
		int64		count[2048];
		int64		sum = 0;
		bool		trivial = false;

		memset(count, 0, sizeof(count));
		for (int64 i = 0; i < n; i++)
			count[(src[i] >> s) & 2047]++;
		for (int d = 0; d < 2048; d++)
		{
			int64		c = count[d];

			if (c == n)
				trivial = true;
			count[d] = sum;
			sum += c;
		}
		if (trivial)
			continue;
		for (int64 i = 0; i < n; i++)
		{
			int64		pos = count[(src[i] >> s) & 2047]++;

			dst[pos] = src[i];
			if (psrc)
				pdst[pos] = psrc[i];
		}
		{
			uint64	   *t = src;
			uint32	   *pt = psrc;

			src = dst;
			dst = t;
			psrc = pdst;
			pdst = pt;
		}
	}
	if (src != a)
	{
		memcpy(a, src, sizeof(uint64) * n);
		if (pa)
			memcpy(pa, psrc, sizeof(uint32) * n);
	}
}

static int
BitsFor(uint64 q)
{
	int			b = 1;

	while (b < 64 && (UINT64CONST(1) << b) < q)
		b++;
	return b;
}

int32
forest_mtry(const ForestParams *p, int32 nf)
{
	int32		m;

	switch (p->max_features_mode)
	{
		case MAXF_DEFAULT:
			m = p->task == FOREST_CLASSIFICATION ? (int32) sqrt((double) nf) : nf;
			break;
		case MAXF_SQRT:
			m = (int32) sqrt((double) nf);
			break;
		case MAXF_LOG2:
			m = (int32) log2((double) nf);
			break;
		case MAXF_ALL:
			m = nf;
			break;
		case MAXF_COUNT:
			if (p->max_features > nf)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"max_features\" is %d but the data has %d features",
								(int) p->max_features, nf)));
			m = (int32) p->max_features;
			break;
		case MAXF_FRACTION:
			m = (int32) (p->max_features * nf);
			break;
		default:
			m = nf;
	}
	return Max(1, Min(m, nf));
}

/* ---------------------------------------------------------------------------
 * Tree buffers (helper threads: malloc, charged to the shared budget)
 * ------------------------------------------------------------------------- */

static bool
Charge(TrainShared *sh, int64 bytes)
{
	int64		used = __atomic_add_fetch(&sh->mem_used, bytes, __ATOMIC_RELAXED);

	if (used > sh->mem_limit)
	{
		__atomic_store_n(&sh->error, 1, __ATOMIC_RELAXED);
		parallel_stop(&sh->run);
		return false;
	}
	return true;
}

static bool
Grow(TrainShared *sh, void **ptr, int32 *cap, int32 need, Size elem)
{
	int64		newcap;
	void	   *p;

	if (need <= *cap)
		return true;
	newcap = Max((int64) *cap * 2, 64);
	while (newcap < need)
		newcap *= 2;
	if (newcap > PG_INT32_MAX)
		newcap = PG_INT32_MAX;
	if (!Charge(sh, (newcap - *cap) * (int64) elem))
		return false;
	p = realloc(*ptr, newcap * elem);
	if (p == NULL)
	{
		__atomic_store_n(&sh->error, 2, __ATOMIC_RELAXED);
		parallel_stop(&sh->run);
		return false;
	}
	*ptr = p;
	*cap = (int32) newcap;
	return true;
}

static int32
NewNodes(TrainShared *sh, TreeBuild *tb, int32 count)
{
	int32		first = tb->n_nodes;

	if (!Grow(sh, (void **) &tb->nodes, &tb->cap_nodes, first + count, sizeof(ForestNode)))
		return -1;
	tb->n_nodes += count;
	return first;
}

/* ---------------------------------------------------------------------------
 * Split search
 * ------------------------------------------------------------------------- */

static inline void
AddRow(const TrainShared *sh, double *st, int32 row, double w)
{
	if (sh->nc > 0)
		st[sh->ycls[row]] += w;
	else
	{
		st[0] += w;
		st[1] += w * sh->ys[row];	/* the split score's sum: centred, no overflow */
		st[2] += w * sh->y[row];	/* the leaf's sum: the labels as given */
	}
}

/* the criterion's score of one side, a (+ b when given): Σ s_c² / W or (Σwy)² / Σw */
static inline double
SideScore(const TrainShared *sh, const double *a, const double *b, double *wout)
{
	if (sh->nc > 0)
	{
		double		sq = 0,
					W = 0;

		for (int32 c = 0; c < sh->nc; c++)
		{
			double		v = a[c] + (b ? b[c] : 0);

			sq += v * v;
			W += v;
		}
		*wout = W;
		return W > 0 ? sq / W : 0;
	}
	else
	{
		double		W = a[0] + (b ? b[0] : 0);
		double		Y = a[1] + (b ? b[1] : 0);

		*wout = W;
		return W > 0 ? Y * Y / W : 0;
	}
}

/*
 * Group the node's rows by their code of feature f into ascending bins.
 * Returns the number of bins; the missing rows' statistics go to miss/mn.
 */
static int32
BuildBins(TrainShared *sh, TrainScratch *sc, int32 f, int32 start, int32 end,
		  double *miss, int32 *mn)
{
	const uint32 *col = sh->codes + (int64) f * sh->n;
	int32		S = sh->S;
	int32		q = sh->nq[f];
	int32		nn = end - start;
	int32		B = 0;

	memset(miss, 0, sizeof(double) * S);
	*mn = 0;
	if (q <= 2 * nn)
	{
		/* counting into a code-indexed table, then compacting */
		memset(sc->stats, 0, sizeof(double) * S * q);
		memset(sc->bin_n, 0, sizeof(int32) * q);
		for (int32 k = start; k < end; k++)
		{
			int32		row = sc->idx[k];
			uint32		c = col[row];

			if (c == CODE_MISSING)
			{
				(*mn)++;
				AddRow(sh, miss, row, sc->w[row]);
			}
			else
			{
				sc->bin_n[c]++;
				AddRow(sh, sc->stats + (int64) c * S, row, sc->w[row]);
			}
		}
		for (int32 c = 0; c < q; c++)
		{
			if (sc->bin_n[c] == 0)
				continue;
			if (B != c)
			{
				memcpy(sc->stats + (int64) B * S, sc->stats + (int64) c * S, sizeof(double) * S);
				sc->bin_n[B] = sc->bin_n[c];
			}
			sc->bin_code[B] = (uint32) c;
			B++;
		}
	}
	else
	{
		/* sorting (code, row) keys */
		int32		nk = 0;
		uint32		prev = CODE_MISSING;

		for (int32 k = start; k < end; k++)
		{
			int32		row = sc->idx[k];
			uint32		c = col[row];

			if (c == CODE_MISSING)
			{
				(*mn)++;
				AddRow(sh, miss, row, sc->w[row]);
			}
			else
				sc->keys[nk++] = ((uint64) c << 32) | (uint32) row;
		}
		RadixSort(sc->keys, sc->tmp, nk, 32, BitsFor((uint64) q), NULL, NULL);
		B = -1;
		for (int32 k = 0; k < nk; k++)
		{
			uint32		c = (uint32) (sc->keys[k] >> 32);
			int32		row = (int32) (sc->keys[k] & 0xFFFFFFFF);

			if (c != prev || B < 0)
			{
				B++;
				memset(sc->stats + (int64) B * S, 0, sizeof(double) * S);
				sc->bin_n[B] = 0;
				sc->bin_code[B] = c;
				prev = c;
			}
			sc->bin_n[B]++;
			AddRow(sh, sc->stats + (int64) B * S, row, sc->w[row]);
		}
		B++;
	}
	return B;
}

static inline void
TrySplit(const TrainShared *sh, SplitChoice *best, const double *l, const double *lextra, int32 ln,
		 const double *r, const double *rextra, int32 rn, bool missing_left,
		 int32 f, int32 b, int32 B, const uint32 *bin_code, bool inf_split)
{
	double		wl,
				wr,
				score;

	if (ln < sh->p->min_samples_leaf || rn < sh->p->min_samples_leaf)
		return;
	score = SideScore(sh, l, lextra, &wl) + SideScore(sh, r, rextra, &wr);
	if (wl <= 0 || wr <= 0 || !(score > best->score))
		return;
	best->score = score;
	best->feature = f;
	best->missing_left = missing_left;
	best->n_left = ln;
	if (inf_split)
	{
		best->lo_code = CODE_MISSING - 1;
		best->threshold = INFINITY;
	}
	else
	{
		const double *u = sh->uvals[f];
		double		a = u[bin_code[b]],
					c = u[bin_code[b + 1]];
		double		t = a / 2 + c / 2;
		float		ft;

		if (!(t >= a && t < c))
			t = a;

		/*
		 * Any threshold in [a, c) splits the training rows the same way;
		 * prefer one a float holds exactly, so prediction can use 8-byte
		 * nodes (forest_load).
		 */
		ft = (float) t;
		if ((double) ft < a)
			ft = nextafterf(ft, INFINITY);
		else if ((double) ft >= c)
			ft = nextafterf(ft, -INFINITY);
		if ((double) ft >= a && (double) ft < c)
			t = (double) ft;
		best->lo_code = bin_code[b];
		best->threshold = t;
	}
}

/* scan the bins of feature f and update best */
static void
ScanBins(TrainShared *sh, TrainScratch *sc, int32 f, int32 B, const double *miss, int32 mn,
		 SplitChoice *best)
{
	int32		S = sh->S;
	double	   *tot = sc->vec + 2 * S;
	double	   *left = sc->vec + 3 * S;
	double	   *right = sc->vec + 4 * S;
	int32		tn = 0,
				ln = 0;

	memset(tot, 0, sizeof(double) * S);
	for (int32 b = 0; b < B; b++)
	{
		const double *st = sc->stats + (int64) b * S;

		for (int32 s = 0; s < S; s++)
			tot[s] += st[s];
		tn += sc->bin_n[b];
	}
	memset(left, 0, sizeof(double) * S);
	memcpy(right, tot, sizeof(double) * S);
	for (int32 b = 0; b + 1 < B; b++)
	{
		const double *st = sc->stats + (int64) b * S;
		int32		rn;

		for (int32 s = 0; s < S; s++)
		{
			left[s] += st[s];
			right[s] -= st[s];
		}
		ln += sc->bin_n[b];
		rn = tn - ln;
		if (mn == 0)
			/* no missing value here: at prediction they follow the larger child, the right one on a tie (as scikit-learn) */
			TrySplit(sh, best, left, NULL, ln, right, NULL, rn, ln > rn, f, b, B,
					 sc->bin_code, false);
		else
		{
			TrySplit(sh, best, left, NULL, ln, right, miss, rn + mn, false, f, b, B,
					 sc->bin_code, false);
			TrySplit(sh, best, left, miss, ln + mn, right, NULL, rn, true, f, b, B,
					 sc->bin_code, false);
		}
	}
	if (mn > 0 && B > 0)
		TrySplit(sh, best, tot, NULL, tn, miss, NULL, mn, false, f, B - 1, B,
				 sc->bin_code, true);
}

static bool
FindSplit(TrainShared *sh, TrainScratch *sc, pg_prng_state *rng, int32 start, int32 end,
		  SplitChoice *best)
{
	int32		nf = sh->nf;
	int32		visited = 0,
				usable = 0;
	double	   *miss = sc->vec + 1 * sh->S;

	best->score = -INFINITY;
	best->feature = -1;
	while (visited < nf && usable < sh->mtry)
	{
		int32		j = visited + (int32) pg_prng_uint64_range(rng, 0, nf - visited - 1);
		int32		f = sc->perm[j];
		int32		mn,
					B;

		sc->perm[j] = sc->perm[visited];
		sc->perm[visited] = f;
		visited++;
		if (sh->nq[f] == 0)
			continue;
		B = BuildBins(sh, sc, f, start, end, miss, &mn);
		if (B + (mn > 0 ? 1 : 0) < 2)
			continue;			/* constant in this node */
		usable++;
		ScanBins(sh, sc, f, B, miss, mn, best);
	}
	return best->feature >= 0;
}

/* ---------------------------------------------------------------------------
 * Growing one tree
 * ------------------------------------------------------------------------- */

static bool
MakeLeaf(TrainShared *sh, TreeBuild *tb, int32 node, const double *tot)
{
	int32		leaf = tb->n_leaves;
	double	   *v;

	if (!Grow(sh, (void **) &tb->values, &tb->cap_leaves, leaf + 1, sizeof(double) * sh->vw))
		return false;
	tb->n_leaves++;
	v = tb->values + (int64) leaf * sh->vw;
	if (sh->nc > 0)
	{
		double		W = 0;

		for (int32 c = 0; c < sh->nc; c++)
			W += tot[c];
		for (int32 c = 0; c < sh->nc; c++)
			v[c] = W > 0 ? tot[c] / W : 0;
	}
	else
		v[0] = tot[0] > 0 ? tot[2] / tot[0] : 0;
	tb->nodes[node].threshold = 0;
	tb->nodes[node].child = 0;
	tb->nodes[node].info = (uint32) leaf;
	return true;
}

static void
GrowTree(void *arg, int worker, int64 t)
{
	TrainShared *sh = (TrainShared *) arg;
	const ForestParams *p = sh->p;
	TrainScratch *sc = &sh->scratch[worker];
	TreeBuild  *tb = &sh->trees[t];
	int32		n = sh->n;
	int32		S = sh->S;
	double	   *tot = sc->vec;
	pg_prng_state rng;
	int32		m = 0,
				sp = 0,
				root;
	bool		all_in = true;

	pg_prng_seed(&rng, TreeSeed(p->seed, t));

	/* rows of this tree and their weights */
	memset(sc->cnt, 0, sizeof(int32) * n);
	if (p->bootstrap)
	{
		int64		draws = Max(1, (int64) llround(p->sample_fraction * n));

		for (int64 d = 0; d < draws; d++)
			sc->cnt[pg_prng_uint64_range(&rng, 0, n - 1)]++;
	}
	else if (p->sample_fraction < 1.0)
	{
		int32		draws = Max(1, (int32) llround(p->sample_fraction * n));

		for (int32 i = 0; i < n; i++)
			sc->idx[i] = i;
		for (int32 d = 0; d < draws; d++)
		{
			int32		j = d + (int32) pg_prng_uint64_range(&rng, 0, n - d - 1);
			int32		r = sc->idx[j];

			sc->idx[j] = sc->idx[d];
			sc->idx[d] = r;
			sc->cnt[r] = 1;
		}
	}
	else
	{
		for (int32 i = 0; i < n; i++)
			sc->cnt[i] = 1;
	}
	for (int32 i = 0; i < n; i++)
	{
		if (sc->cnt[i] == 0)
		{
			all_in = false;
			continue;
		}
		sc->idx[m++] = i;
		sc->w[i] = sc->cnt[i] * (sh->cw ? sh->cw[sh->ycls[i]] : 1.0);
	}
	if (!all_in)
	{
		int64		words = ((int64) n + 63) / 64;

		if (!Charge(sh, words * 8))
			return;
		tb->inbag = calloc(words, 8);
		if (tb->inbag == NULL)
		{
			__atomic_store_n(&sh->error, 2, __ATOMIC_RELAXED);
			parallel_stop(&sh->run);
			return;
		}
		for (int32 k = 0; k < m; k++)
			tb->inbag[sc->idx[k] >> 6] |= UINT64CONST(1) << (sc->idx[k] & 63);
	}
	if (!Charge(sh, (int64) sh->nf * 8))
		return;
	tb->importance = calloc(sh->nf, sizeof(double));
	if (tb->importance == NULL)
	{
		__atomic_store_n(&sh->error, 2, __ATOMIC_RELAXED);
		parallel_stop(&sh->run);
		return;
	}
	for (int32 f = 0; f < sh->nf; f++)
		sc->perm[f] = f;

	root = NewNodes(sh, tb, 1);
	if (root < 0)
		return;
	sc->stack[sp++] = (StackEntry)
	{
		0, m, root, 0
	};
	while (sp > 0)
	{
		StackEntry	e = sc->stack[--sp];
		int32		nn = e.end - e.start;
		bool		leaf;
		SplitChoice best;
		double		parent_score = 0,
					W;
		int32		nonzero = 0;
		double		ymin = INFINITY,
					ymax = -INFINITY;

		if (parallel_stopped(&sh->run))
			return;

		/* node totals and purity */
		memset(tot, 0, sizeof(double) * S);
		for (int32 k = e.start; k < e.end; k++)
		{
			int32		row = sc->idx[k];

			AddRow(sh, tot, row, sc->w[row]);
			if (sh->nc == 0)
			{
				ymin = Min(ymin, sh->y[row]);
				ymax = Max(ymax, sh->y[row]);
			}
		}
		if (sh->nc > 0)
		{
			for (int32 c = 0; c < sh->nc; c++)
				nonzero += tot[c] > 0;
		}
		else
			nonzero = ymin < ymax ? 2 : 1;

		leaf = nonzero <= 1 ||
			nn < p->min_samples_split ||
			nn < 2 * p->min_samples_leaf ||
			(p->max_depth > 0 && e.depth >= p->max_depth);
		if (!leaf)
		{
			parent_score = SideScore(sh, tot, NULL, &W);
			leaf = !FindSplit(sh, sc, &rng, e.start, e.end, &best);
		}
		if (leaf)
		{
			if (!MakeLeaf(sh, tb, e.node, tot))
				return;
			continue;
		}

		/* partition the node's rows: left part first */
		{
			const uint32 *col = sh->codes + (int64) best.feature * n;
			int32		i = e.start,
						j = e.end - 1;
			int32		child;

			while (i <= j)
			{
				uint32		c = col[sc->idx[i]];
				bool		goes_left = (c == CODE_MISSING) ? best.missing_left : (c <= best.lo_code);

				if (goes_left)
					i++;
				else
				{
					int32		r = sc->idx[i];

					sc->idx[i] = sc->idx[j];
					sc->idx[j] = r;
					j--;
				}
			}
			Assert(i - e.start == best.n_left);
			child = NewNodes(sh, tb, 2);
			if (child < 0)
				return;
			tb->nodes[e.node].threshold = best.threshold;
			tb->nodes[e.node].info = (uint32) best.feature |
				(best.missing_left ? FOREST_MISSING_LEFT : 0);
			tb->nodes[e.node].child = (uint32) child;
			tb->importance[best.feature] += best.score - parent_score;
			sc->stack[sp++] = (StackEntry)
			{
				i, e.end, child + 1, e.depth + 1
			};
			sc->stack[sp++] = (StackEntry)
			{
				e.start, i, child, e.depth + 1
			};
		}
	}
}

/* ---------------------------------------------------------------------------
 * Prediction
 * ------------------------------------------------------------------------- */

static inline uint32
LeafOf(const ForestNode *nodes, const double *x)
{
	const ForestNode *nd = nodes;

	while (nd->child != 0)
	{
		double		v = x[nd->info & FOREST_FEATURE_MASK];
		bool		left = isnan(v) ? (nd->info & FOREST_MISSING_LEFT) != 0 : v <= nd->threshold;

		nd = nodes + nd->child + (left ? 0 : 1);
	}
	return nd->info;
}

/*
 * Prediction walks the trees in groups of PREDICT_LANES, one step of every
 * tree of the group per round: the node loads of different trees are
 * independent, so a large forest's cache misses overlap instead of queueing
 * one after another.  The direction is computed with bitwise operations (it
 * is a coin flip for the branch predictor).  At each step the children pairs
 * of both children are prefetched, so the line needed two levels down is
 * already on its way (LayOutTree keeps each sibling pair inside one cache
 * line).  Compact forests (8-byte nodes, see MakeCompact) read a leaf's
 * value with the leaf; 16-byte forests of width <= 2 keep it in the leaf's
 * threshold slot (forest_load).  Sums run in tree order either way.
 */
#define PREDICT_LANES 16

/*
 * After `done` trees, can the remaining ones still change the most probable
 * class?  Each tree adds at most 1 to any class's sum, so when the leader is
 * ahead of every other class by more than the trees left, it has won (a
 * small margin covers rounding).  The answer is the class the full sum
 * would give, so `predict` can stop early; `predict_proba` never does.
 */
static bool
Decided(const Forest *f, const double *out, double inline_sum, int32 done)
{
	double		left = (double) (f->n_trees - done) + 1e-9;

	if (f->value_width == 2)
		return fabs(inline_sum - (done - inline_sum)) > left;
	if (f->value_width > 2)
	{
		double		top = -INFINITY,
					second = -INFINITY;

		for (int32 c = 0; c < f->value_width; c++)
		{
			if (out[c] > top)
			{
				second = top;
				top = out[c];
			}
			else if (out[c] > second)
				second = out[c];
		}
		return top - second > left;
	}
	return false;
}

static int32
PredictCompact(const Forest *f, const double *x, double *out, double *inline_sum, bool early)
{
	int32		vw = f->value_width;

	for (int32 t0 = 0; t0 < f->n_trees; t0 += PREDICT_LANES)
	{
		int32		lanes = Min(PREDICT_LANES, f->n_trees - t0);
		const CompactNode *base[PREDICT_LANES];
		const CompactNode *cur[PREDICT_LANES];
		uint32		at_leaf[PREDICT_LANES];
		int32		walking = 0;

		for (int32 g = 0; g < lanes; g++)
		{
			const ForestTree *tr = &f->trees[t0 + g];

			cur[g] = base[g] = tr->cnodes;
			at_leaf[g] = tr->root_is_leaf;
			walking += !at_leaf[g];
			if (!at_leaf[g])
				__builtin_prefetch(base[g] + (base[g]->split.packed & COMPACT_CHILD_MASK));
		}
		while (walking > 0)
		{
			for (int32 g = 0; g < lanes; g++)
			{
				if (!at_leaf[g])
				{
					uint32		p = cur[g]->split.packed;
					const CompactNode *kids = base[g] + (p & COMPACT_CHILD_MASK);
					double		v = x[(p >> COMPACT_FEATURE_SHIFT) & (COMPACT_MAX_FEATURES - 1)];
					uint32		le = (uint32) (v <= (double) cur[g]->split.threshold);
					uint32		nan_left = (uint32) (v != v) & (p >> 31);
					uint32		right = (le | nan_left) ^ 1;

					/* grandchildren pairs; a leaf child's bytes give a harmless stray prefetch */
					__builtin_prefetch(base[g] + (kids[0].split.packed & COMPACT_CHILD_MASK));
					__builtin_prefetch(base[g] + (kids[1].split.packed & COMPACT_CHILD_MASK));
					at_leaf[g] = (p >> (29 + right)) & 1;
					walking -= at_leaf[g];
					cur[g] = kids + right;
				}
			}
		}
		if (vw <= 2)
			for (int32 g = 0; g < lanes; g++)
				*inline_sum += cur[g]->value;
		else
			for (int32 g = 0; g < lanes; g++)
			{
				const double *v = f->trees[t0 + g].values + (int64) cur[g]->leaf * vw;

				for (int32 c = 0; c < vw; c++)
					out[c] += v[c];
			}
		if (early && t0 + lanes < f->n_trees && Decided(f, out, *inline_sum, t0 + lanes))
			return t0 + lanes;
	}
	return f->n_trees;
}

/* the same walk over 16-byte nodes, for models the compact form cannot hold */
static int32
PredictWide(const Forest *f, const double *x, double *out, double *inline_sum, bool early)
{
	int32		vw = f->value_width;

	for (int32 t0 = 0; t0 < f->n_trees; t0 += PREDICT_LANES)
	{
		int32		lanes = Min(PREDICT_LANES, f->n_trees - t0);
		const ForestNode *base[PREDICT_LANES];
		const ForestNode *cur[PREDICT_LANES];
		bool		moved;

		for (int32 g = 0; g < lanes; g++)
		{
			cur[g] = base[g] = f->trees[t0 + g].nodes;
			__builtin_prefetch(base[g] + base[g]->child);
		}
		do
		{
			moved = false;
			for (int32 g = 0; g < lanes; g++)
			{
				const ForestNode *nd = cur[g];

				if (nd->child != 0)
				{
					const ForestNode *kids = base[g] + nd->child;
					double		v = x[nd->info & FOREST_FEATURE_MASK];

					/*
					 * Bitwise, not &&: the direction is a coin flip for the
					 * branch predictor, so it must not become a branch.
					 */
					uint32		le = (uint32) (v <= nd->threshold);
					uint32		nan_left = (uint32) (v != v) & (nd->info >> 31);
					uint32		right = (le | nan_left) ^ 1;

					__builtin_prefetch(base[g] + kids[0].child);
					__builtin_prefetch(base[g] + kids[1].child);
					cur[g] = kids + right;
					moved = true;
				}
			}
		} while (moved);
		if (vw <= 2)
			for (int32 g = 0; g < lanes; g++)
				*inline_sum += cur[g]->threshold;
		else
			for (int32 g = 0; g < lanes; g++)
			{
				const double *v = f->trees[t0 + g].values + (int64) cur[g]->info * vw;

				for (int32 c = 0; c < vw; c++)
					out[c] += v[c];
			}
		if (early && t0 + lanes < f->n_trees && Decided(f, out, *inline_sum, t0 + lanes))
			return t0 + lanes;
	}
	return f->n_trees;
}

void
forest_predict(const Forest *f, const double *x, double *out)
{
	int32		vw = f->value_width;
	double		inline_sum = 0;

	memset(out, 0, sizeof(double) * vw);
	if (f->compact)
		PredictCompact(f, x, out, &inline_sum, false);
	else
		PredictWide(f, x, out, &inline_sum, false);
	if (vw == 1)
		out[0] = inline_sum / f->n_trees;
	else if (vw == 2)
	{
		out[1] = inline_sum / f->n_trees;
		out[0] = (f->n_trees - inline_sum) / f->n_trees;
	}
	else
		for (int32 c = 0; c < vw; c++)
			out[c] /= f->n_trees;
}

static int32
ArgMax(const double *v, int32 n)
{
	int32		best = 0;

	for (int32 c = 1; c < n; c++)
		if (v[c] > v[best])
			best = c;
	return best;
}

/*
 * The predicted class (ties to the smaller class) or value.  A class can be
 * decided before every tree has been walked (see Decided); the result is the
 * one the full average would give.
 */
double
forest_predict_value(const Forest *f, const double *x, double *scratch)
{
	double		inline_sum = 0;
	int32		done;

	if (f->task == FOREST_REGRESSION)
	{
		forest_predict(f, x, scratch);
		return scratch[0];
	}
	memset(scratch, 0, sizeof(double) * f->value_width);
	done = f->compact ? PredictCompact(f, x, scratch, &inline_sum, true)
		: PredictWide(f, x, scratch, &inline_sum, true);
	if (f->value_width == 2)
	{
		scratch[1] = inline_sum;
		scratch[0] = done - inline_sum;
	}
	if (done == f->n_trees)
	{
		/*
		 * Every tree walked: compare the averages exactly as predict_proba
		 * computes them, so that two sums that differ only by rounding and
		 * average to the same probability tie (to the smaller class) here too.
		 * An early decision has a margin of a whole tree, far above rounding.
		 */
		if (f->value_width == 2)
		{
			scratch[1] = inline_sum / f->n_trees;
			scratch[0] = (f->n_trees - inline_sum) / f->n_trees;
		}
		else
			for (int32 c = 0; c < f->value_width; c++)
				scratch[c] /= f->n_trees;
	}
	return f->classes[ArgMax(scratch, f->n_classes)];
}

/* out-of-bag accumulation for a block of rows, trees in order */
static void
OobBlock(void *arg, int worker, int64 block)
{
	TrainShared *sh = (TrainShared *) arg;
	int32		first = (int32) (block * OOB_BLOCK);
	int32		last = Min(sh->n, first + OOB_BLOCK);
	int32		vw = sh->vw;

	for (int32 i = first; i < last; i++)
	{
		const double *xi = sh->x + (int64) sh->ord[i] * sh->nf;
		double	   *acc = sh->oob_acc + (int64) i * vw;

		for (int32 t = 0; t < sh->p->n_trees; t++)
		{
			const TreeBuild *tb = &sh->trees[t];
			const double *v;

			if (tb->inbag == NULL || (tb->inbag[i >> 6] >> (i & 63)) & 1)
				continue;
			v = tb->values + (int64) LeafOf(tb->nodes, xi) * vw;
			for (int32 c = 0; c < vw; c++)
				acc[c] += v[c];
			sh->oob_cnt[i]++;
		}
	}
}

/* ---------------------------------------------------------------------------
 * Preparation and the training driver (main thread)
 * ------------------------------------------------------------------------- */

static void
WriteForest(StringInfo buf, TrainShared *sh, const double *classes, const double *importance)
{
	uint8		head[4] = {(uint8) sh->p->task, 0, 0, 0};
	int32		nc = sh->nc;
	int32		ntrees = sh->p->n_trees;

	appendBinaryStringInfo(buf, (char *) head, 4);
	appendBinaryStringInfo(buf, (char *) &sh->nf, 4);
	appendBinaryStringInfo(buf, (char *) &nc, 4);
	appendBinaryStringInfo(buf, (char *) &ntrees, 4);
	if (nc > 0)
		appendBinaryStringInfo(buf, (char *) classes, sizeof(double) * nc);
	appendBinaryStringInfo(buf, (char *) importance, sizeof(double) * sh->nf);
	for (int32 t = 0; t < ntrees; t++)
	{
		TreeBuild  *tb = &sh->trees[t];

		CHECK_FOR_INTERRUPTS();
		appendBinaryStringInfo(buf, (char *) &tb->n_nodes, 4);
		appendBinaryStringInfo(buf, (char *) &tb->n_leaves, 4);
		appendBinaryStringInfo(buf, (char *) tb->nodes, sizeof(ForestNode) * tb->n_nodes);
		appendBinaryStringInfo(buf, (char *) tb->values,
							   sizeof(double) * sh->vw * tb->n_leaves);
	}
}

static void
FreeTrees(TreeBuild *trees, int32 n)
{
	for (int32 t = 0; t < n; t++)
	{
		free(trees[t].nodes);
		free(trees[t].values);
		free(trees[t].importance);
		free(trees[t].inbag);
		memset(&trees[t], 0, sizeof(TreeBuild));
	}
}

bytea *
forest_train(int64 n_rows, int32 nf, const double *x, const double *y,
			 const ForestParams *p, int nthreads, Size mem_limit,
			 const SimInterruptHooks *hooks, ForestTrainInfo *info)
{
	TrainShared sh;
	int32		n;
	int32	   *ord;
	double	   *ysorted;
	double	   *classes = NULL;
	int32		nc = 0;
	int32	   *ycls = NULL;
	double	   *cw = NULL;
	int32	   *nq;
	uint32	   *codes;
	int64		est;
	int			nw;
	bytea	   *result = NULL;
	double	   *importance;
	volatile bool trees_live = false;

	if (n_rows < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no training rows"),
				 errdetail("Rows with a NULL label or NULL features are skipped.")));
	if (n_rows >= PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many training rows: %lld (the limit is %d)",
						(long long) n_rows, PG_INT32_MAX - 1)));
	if (nf < 1 || nf > FOREST_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a forest takes between 1 and %d features, got %d", FOREST_MAX_FEATURES, nf)));
	n = (int32) n_rows;

	memset(&sh, 0, sizeof(sh));
	sh.p = p;
	sh.n = n;
	sh.nf = nf;
	sh.x = x;
	sh.mtry = forest_mtry(p, nf);

	/* classes */
	if (p->task == FOREST_CLASSIFICATION)
	{
		CoreAlloc	a;
		CoreError	err;

		core_pg_alloc(&a, CurrentMemoryContext);
		core_pg_check(training_classes(&a, y, n, FOREST_MAX_CLASSES, &classes, &nc, &err), &err);
	}
	sh.nc = nc;
	sh.S = nc > 0 ? nc : 3;
	sh.vw = nc > 0 ? nc : 1;

	/* memory estimate, before the big allocations */
	nw = Max(1, Min(nthreads, Min(p->n_trees, 64)));
	est = (int64) n * nf * (8 + 4)	/* caller's matrix + codes */
		+ (int64) n * (4 + 8 + 8 + 4 + 8)	/* ord, y, ys, ycls, oob */
		+ (int64) n * sh.vw * 8
		+ (int64) n * 12 * 2		/* sort buffers during preparation */
		+ (int64) nw * ((int64) n * (4 + 4 + 8 + 8 + 8 + 16) + (int64) n * (sh.S * 8 + 8));
	if (est > (int64) mem_limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("forest training needs about %lld MB, more than maintenance_work_mem (%zu MB)",
						(long long) (est >> 20) + 1, mem_limit >> 20),
				 errhint("Raise maintenance_work_mem (for example SET maintenance_work_mem = '%lldMB'), or train on fewer rows.",
						 (long long) ((est * 2) >> 20) + 1)));

	/* canonical row order */
	ord = huge_array(n, sizeof(int32), true);
	canonical_row_order(n, nf, x, y, ord);
	CHECK_FOR_INTERRUPTS();
	ysorted = huge_array(n, sizeof(double), true);
	for (int32 i = 0; i < n; i++)
		ysorted[i] = y[ord[i]];
	sh.y = ysorted;
	sh.ord = ord;
	if (nc == 0)
	{
		/*
		 * Regression scores splits by Σ(Σw·y)²/Σw, which on raw labels loses
		 * the variance under a large offset (timestamps, money) and overflows
		 * beyond 1e154.  The scores use the labels minus their mean, scaled
		 * by a power of two to |ys| <= 2; leaves keep the labels as given.
		 */
		double	   *ys = huge_array(n, sizeof(double), false);
		double		maxabs = 0,
					mean = 0;
		int			e = 0;

		for (int32 i = 0; i < n; i++)
			maxabs = Max(maxabs, fabs(ysorted[i]));
		if (maxabs > 0)
			(void) frexp(maxabs, &e);
		for (int32 i = 0; i < n; i++)
			mean += ldexp(ysorted[i], -e);
		mean /= n;
		for (int32 i = 0; i < n; i++)
			ys[i] = ldexp(ysorted[i], -e) - mean;
		sh.ys = ys;
		sh.yexp = e;
	}
	if (nc > 0)
	{
		int64	   *count = palloc0(sizeof(int64) * nc);
		int32		c = 0;

		ycls = huge_array(n, sizeof(int32), true);
		for (int32 i = 0; i < n; i++)
		{
			while (classes[c] != ysorted[i])
				c++;			/* rows are sorted by label */
			ycls[i] = c;
			count[c]++;
		}
		if (p->class_weight_balanced)
		{
			cw = palloc(sizeof(double) * nc);
			for (c = 0; c < nc; c++)
				cw[c] = (double) n / ((double) nc * count[c]);
		}
		pfree(count);
	}
	sh.ycls = ycls;
	sh.cw = cw;

	/* codes: ranks among each feature's distinct values */
	codes = huge_array((Size) n * nf, sizeof(uint32), true);
	nq = palloc0(sizeof(int32) * nf);
	sh.uvals = palloc0(sizeof(double *) * nf);
	{
		uint64	   *keys = huge_array(n, sizeof(uint64), true);
		uint64	   *tmpk = huge_array(n, sizeof(uint64), true);
		uint32	   *rows = huge_array(n, sizeof(uint32), true);
		uint32	   *tmpr = huge_array(n, sizeof(uint32), true);

		for (int32 f = 0; f < nf; f++)
		{
			uint32	   *col = codes + (int64) f * n;
			int32		nk = 0,
						q = 0;
			double	   *u;

			CHECK_FOR_INTERRUPTS();
			for (int32 i = 0; i < n; i++)
			{
				double		v = x[(int64) ord[i] * nf + f];

				if (isnan(v))
					col[i] = CODE_MISSING;
				else
				{
					keys[nk] = DoubleKey(v);
					rows[nk++] = (uint32) i;
				}
			}
			RadixSort(keys, tmpk, nk, 0, 64, rows, tmpr);
			for (int32 k = 0; k < nk; k++)
			{
				if (k == 0 || keys[k] != keys[k - 1])
					q++;
				col[rows[k]] = (uint32) (q - 1);
			}
			u = palloc(sizeof(double) * Max(q, 1));
			q = 0;
			for (int32 k = 0; k < nk; k++)
				if (k == 0 || keys[k] != keys[k - 1])
				{
					double		v = x[(int64) ord[rows[k]] * nf + f];

					u[q++] = (v == 0) ? 0.0 : v;
				}
			nq[f] = q;
			sh.uvals[f] = u;
			sh.maxq = Max(sh.maxq, q);
		}
		pfree(keys);
		pfree(tmpk);
		pfree(rows);
		pfree(tmpr);
	}
	sh.codes = codes;
	sh.nq = nq;

	/* per-worker scratch */
	sh.scratch = palloc0(sizeof(TrainScratch) * nw);
	for (int w = 0; w < nw; w++)
	{
		TrainScratch *sc = &sh.scratch[w];
		int32		binsz = Max(sh.maxq, 1);

		sc->cnt = huge_array(n, sizeof(int32), true);
		sc->idx = huge_array(n, sizeof(int32), true);
		sc->w = huge_array(n, sizeof(double), true);
		sc->keys = huge_array(n, sizeof(uint64), true);
		sc->tmp = huge_array(n, sizeof(uint64), true);
		sc->stats = huge_array((Size) binsz * sh.S, sizeof(double), true);
		sc->bin_n = huge_array(binsz, sizeof(int32), true);
		sc->bin_code = huge_array(binsz, sizeof(uint32), true);
		sc->perm = palloc0(sizeof(int32) * nf);
		sc->stack = huge_array((Size) n + 1, sizeof(StackEntry), true);
		sc->vec = palloc0(sizeof(double) * 6 * sh.S);
	}
	sh.trees = huge_array(p->n_trees, sizeof(TreeBuild), true);
	sh.mem_limit = (int64) mem_limit - est;
	importance = palloc0(sizeof(double) * nf);

	trees_live = true;
	PG_TRY();
	{
		StringInfoData buf;

		sh.run.n_tasks = p->n_trees;
		sh.run.n_workers = nw;
		sh.run.fn = GrowTree;
		sh.run.arg = &sh;
		parallel_run(&sh.run, hooks);
		if (sh.error == 1)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("forest training does not fit in maintenance_work_mem (%zu MB)",
							mem_limit >> 20),
					 errdetail("The trees grown so far hold %lld MB.", (long long) (sh.mem_used >> 20)),
					 errhint("Raise maintenance_work_mem, or make the trees smaller with max_depth, min_samples_leaf or n_trees.")));
		if (sh.error == 2)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while growing the forest")));

		/* out-of-bag score */
		info->oob_score = NAN;
		if (p->bootstrap || p->sample_fraction < 1.0)
		{
			int64		used = 0;
			double		hits = 0,
						ss_res = 0,
						ss_tot = 0,
						ymean = 0;

			sh.oob_acc = huge_array((Size) n * sh.vw, sizeof(double), true);
			sh.oob_cnt = huge_array(n, sizeof(int32), true);
			sh.run.n_tasks = ((int64) n + OOB_BLOCK - 1) / OOB_BLOCK;
			sh.run.fn = OobBlock;
			sh.run.n_workers = Max(1, Min(nthreads, 64));
			parallel_run(&sh.run, hooks);
			/* regression: R² in the scaled units of ys (a ratio, so the same), safe from overflow */
			for (int32 i = 0; i < n; i++)
				if (sh.oob_cnt[i] > 0)
				{
					used++;
					ymean += nc > 0 ? 0 : ldexp(ysorted[i], -sh.yexp);
				}
			if (used > 0)
			{
				ymean /= used;
				for (int32 i = 0; i < n; i++)
				{
					double	   *acc = sh.oob_acc + (int64) i * sh.vw;

					if (sh.oob_cnt[i] == 0)
						continue;
					if (nc > 0)
						hits += ArgMax(acc, nc) == ycls[i];
					else
					{
						double		pred = ldexp(acc[0] / sh.oob_cnt[i], -sh.yexp);
						double		yi = ldexp(ysorted[i], -sh.yexp);

						ss_res += (yi - pred) * (yi - pred);
						ss_tot += (yi - ymean) * (yi - ymean);
					}
				}
				if (nc > 0)
					info->oob_score = hits / used;
				else
					info->oob_score = ss_tot > 0 ? 1.0 - ss_res / ss_tot : NAN;
			}
		}

		/* importance: each tree's normalised decrease, averaged, normalised */
		{
			double		total = 0;

			for (int32 t = 0; t < p->n_trees; t++)
			{
				double		s = 0;

				for (int32 f = 0; f < nf; f++)
					s += sh.trees[t].importance[f];
				if (s > 0)
					for (int32 f = 0; f < nf; f++)
						importance[f] += sh.trees[t].importance[f] / s;
			}
			for (int32 f = 0; f < nf; f++)
				total += importance[f];
			for (int32 f = 0; f < nf; f++)
				importance[f] = total > 0 ? importance[f] / total : 0;
		}

		info->nodes = 0;
		for (int32 t = 0; t < p->n_trees; t++)
			info->nodes += sh.trees[t].n_nodes;
		info->memory = (Size) (est + sh.mem_used);

		model_blob_begin(&buf, MODEL_KIND_FOREST);
		WriteForest(&buf, &sh, classes, importance);
		result = model_blob_finish(&buf);
	}
	PG_FINALLY();
	{
		if (trees_live)
			FreeTrees(sh.trees, p->n_trees);
	}
	PG_END_TRY();

	info->rows = n;
	info->n_classes = nc;
	info->classes = classes;
	return result;
}

/*
 * Lay a validated tree out for prediction: the top HOT_DEPTH levels first,
 * breadth-first, so the nodes every row visits share cache lines, then each
 * deeper subtree depth-first, so a row's last steps stay within a few lines.
 * Sibling pairs stay adjacent and children still follow their parent.
 */
#define HOT_DEPTH 10

static void
LayOutTree(ForestTree *tr)
{
	int32		n = tr->n_nodes;
	int32	   *depth = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	int32	   *order = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	int32	   *newidx = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	int32	   *stack = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	ForestNode *out = palloc_extended(sizeof(ForestNode) * (n + 1), MCXT_ALLOC_HUGE);
	int32		placed = 1,
				bfs_end;

	depth[0] = 0;
	for (int32 i = 0; i < n; i++)
		if (tr->nodes[i].child != 0)
			depth[tr->nodes[i].child] = depth[tr->nodes[i].child + 1] = depth[i] + 1;

	order[0] = 0;
	for (int32 pos = 0; pos < placed; pos++)
	{
		int32		u = order[pos];

		if (tr->nodes[u].child != 0 && depth[u] < HOT_DEPTH)
		{
			order[placed++] = tr->nodes[u].child;
			order[placed++] = tr->nodes[u].child + 1;
		}
	}
	bfs_end = placed;
	for (int32 pos = 0; pos < bfs_end; pos++)
	{
		int32		sp = 0;

		if (depth[order[pos]] < HOT_DEPTH)
			continue;
		stack[sp++] = order[pos];
		while (sp > 0)
		{
			int32		u = stack[--sp];

			if (tr->nodes[u].child == 0)
				continue;
			order[placed++] = tr->nodes[u].child;
			order[placed++] = tr->nodes[u].child + 1;
			stack[sp++] = tr->nodes[u].child + 1;
			stack[sp++] = tr->nodes[u].child;
		}
	}
	/*
	 * Slot 1 is padding (a leaf nothing points to), so every sibling pair
	 * starts at an even slot: 32-byte aligned, never across a cache line.
	 * Nodes unreachable from the root (only in hand-made bytes) are dropped.
	 */
	newidx[order[0]] = 0;
	for (int32 k = 1; k < placed; k++)
		newidx[order[k]] = k + 1;
	out[0] = tr->nodes[order[0]];
	out[1] = tr->nodes[order[0]];
	out[1].child = 0;
	out[1].info = 0;
	for (int32 k = 1; k < placed; k++)
		out[k + 1] = tr->nodes[order[k]];
	for (int32 k = 0; k < placed + 1; k++)
		if (out[k].child != 0)
			out[k].child = (uint32) newidx[out[k].child];
	pfree(tr->nodes);
	tr->nodes = out;
	tr->n_nodes = placed + 1;
	pfree(depth);
	pfree(order);
	pfree(newidx);
	pfree(stack);
}

/* ---------------------------------------------------------------------------
 * Loading model bytes
 * ------------------------------------------------------------------------- */

static void
CheckCount(int32 v, int32 lo, int32 hi, const char *what)
{
	if (v < lo || v > hi)
		blob_corrupt(psprintf("The %s count %d is outside %d..%d.", what, v, lo, hi));
}

/*
 * 8-byte nodes for prediction, when every split threshold is a float (as
 * training chooses them), every tree has fewer than 2^21 nodes and the model
 * at most 256 features: twice the nodes per cache line, and the leaf value
 * read with the leaf itself (see CompactNode).
 */
static void
MakeCompact(Forest *f)
{
	int32		vw = f->value_width;

	for (int32 t = 0; t < f->n_trees; t++)
	{
		ForestTree *tr = &f->trees[t];
		CompactNode *cn = palloc_extended(sizeof(CompactNode) * (Size) tr->n_nodes, MCXT_ALLOC_HUGE);

		for (int32 i = 0; i < tr->n_nodes; i++)
		{
			const ForestNode *nd = &tr->nodes[i];

			if (nd->child == 0)
			{
				if (vw <= 2)
					cn[i].value = tr->values[(int64) nd->info * vw + (vw - 1)];
				else
					cn[i].leaf = nd->info;
			}
			else
			{
				cn[i].split.threshold = (float) nd->threshold;
				cn[i].split.packed = nd->child |
					((nd->info & FOREST_FEATURE_MASK) << COMPACT_FEATURE_SHIFT) |
					(tr->nodes[nd->child].child == 0 ? COMPACT_LEFT_LEAF : 0) |
					(tr->nodes[nd->child + 1].child == 0 ? COMPACT_LEFT_LEAF << 1 : 0) |
					((nd->info & FOREST_MISSING_LEFT) ? COMPACT_MISSING_LEFT : 0);
			}
		}
		tr->root_is_leaf = tr->nodes[0].child == 0;
		tr->cnodes = cn;
		f->bytes += sizeof(CompactNode) * (Size) tr->n_nodes;
		f->bytes -= sizeof(ForestNode) * (Size) tr->n_nodes;
		pfree(tr->nodes);
		tr->nodes = NULL;
	}
	f->compact = true;
}

Forest *
forest_load(BlobReader *r)
{
	Forest	   *f = palloc0(sizeof(Forest));
	uint8		head[4];
	int32		vw;
	bool		compact = true;

	blob_read(r, head, 4);
	if (head[0] > FOREST_REGRESSION || head[1] || head[2] || head[3])
		blob_corrupt("Unknown forest task.");
	f->task = (ForestTask) head[0];
	blob_read(r, &f->n_features, 4);
	blob_read(r, &f->n_classes, 4);
	blob_read(r, &f->n_trees, 4);
	CheckCount(f->n_features, 1, FOREST_MAX_FEATURES, "feature");
	CheckCount(f->n_trees, 1, FOREST_MAX_TREES, "tree");
	if (f->task == FOREST_CLASSIFICATION)
		CheckCount(f->n_classes, 2, FOREST_MAX_CLASSES, "class");
	else if (f->n_classes != 0)
		blob_corrupt("A regression forest has classes.");
	vw = f->value_width = f->task == FOREST_CLASSIFICATION ? f->n_classes : 1;

	if (f->n_classes > 0)
	{
		f->classes = palloc(sizeof(double) * f->n_classes);
		blob_read(r, f->classes, sizeof(double) * f->n_classes);
		for (int32 c = 0; c < f->n_classes; c++)
			if (!isfinite(f->classes[c]) || (c > 0 && !(f->classes[c] > f->classes[c - 1])))
				blob_corrupt("The class list is not finite and strictly ascending.");
	}
	f->importance = palloc(sizeof(double) * f->n_features);
	blob_read(r, f->importance, sizeof(double) * f->n_features);
	for (int32 i = 0; i < f->n_features; i++)
		if (!(f->importance[i] >= 0 && f->importance[i] <= 1))
			blob_corrupt("A feature importance is outside [0, 1].");

	f->trees = palloc0(sizeof(ForestTree) * f->n_trees);
	f->bytes = sizeof(Forest) + sizeof(ForestTree) * f->n_trees;
	for (int32 t = 0; t < f->n_trees; t++)
	{
		ForestTree *tr = &f->trees[t];
		const char *src;
		bool	   *parented;

		CHECK_FOR_INTERRUPTS();
		blob_read(r, &tr->n_nodes, 4);
		blob_read(r, &tr->n_leaves, 4);
		CheckCount(tr->n_nodes, 1, PG_INT32_MAX - 1, "node");
		CheckCount(tr->n_leaves, 1, tr->n_nodes, "leaf");
		/* the lengths are checked against the bytes before anything is allocated */
		if ((Size) tr->n_nodes > r->left / sizeof(ForestNode))
			blob_corrupt("The payload ends before the model structure does.");
		src = blob_take(r, sizeof(ForestNode) * (Size) tr->n_nodes);
		tr->nodes = palloc_extended(sizeof(ForestNode) * (Size) tr->n_nodes, MCXT_ALLOC_HUGE);
		memcpy(tr->nodes, src, sizeof(ForestNode) * (Size) tr->n_nodes);
		if ((Size) tr->n_leaves > r->left / (sizeof(double) * vw))
			blob_corrupt("The payload ends before the model structure does.");
		src = blob_take(r, sizeof(double) * vw * (Size) tr->n_leaves);
		tr->values = palloc_extended(sizeof(double) * vw * (Size) tr->n_leaves, MCXT_ALLOC_HUGE);
		memcpy(tr->values, src, sizeof(double) * vw * (Size) tr->n_leaves);

		/*
		 * Every split points forward (child > own index), so any walk from the
		 * root ends at a leaf in fewer than n_nodes steps, whatever the bytes;
		 * and every node has at most one parent, so the nodes form a tree
		 * (LayOutTree relies on it).
		 */
		parented = palloc_extended(tr->n_nodes, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		for (int32 i = 0; i < tr->n_nodes; i++)
		{
			const ForestNode *nd = &tr->nodes[i];

			if (nd->child == 0)
			{
				if (nd->info >= (uint32) tr->n_leaves)
					blob_corrupt("A leaf points outside its tree's values.");
			}
			else
			{
				if (nd->child <= (uint32) i || nd->child >= (uint32) tr->n_nodes - 1)
					blob_corrupt("A split points outside its tree or backwards.");
				if (parented[nd->child] || parented[nd->child + 1])
					blob_corrupt("Two splits share a child.");
				parented[nd->child] = parented[nd->child + 1] = true;
				if ((nd->info & FOREST_FEATURE_MASK) >= (uint32) f->n_features)
					blob_corrupt("A split uses a feature the model does not have.");
				if (isnan(nd->threshold))
					blob_corrupt("A split threshold is NaN.");
			}
		}
		pfree(parented);
		for (int64 v = 0; v < (int64) tr->n_leaves * vw; v++)
			if (!isfinite(tr->values[v]) ||
				(f->task == FOREST_CLASSIFICATION && !(tr->values[v] >= 0 && tr->values[v] <= 1)))
				blob_corrupt("A leaf value is not finite or not a probability.");
		if (f->task == FOREST_CLASSIFICATION)
			for (int64 l = 0; l < tr->n_leaves; l++)
			{
				double		sum = 0;

				for (int32 c = 0; c < vw; c++)
					sum += tr->values[l * vw + c];
				if (fabs(sum - 1.0) > 1e-9)
					blob_corrupt("A leaf's class probabilities do not sum to 1.");
			}
		LayOutTree(tr);
		f->bytes += sizeof(ForestNode) * (Size) tr->n_nodes + sizeof(double) * vw * (Size) tr->n_leaves;
		if (tr->n_nodes > COMPACT_CHILD_MASK || f->n_features > COMPACT_MAX_FEATURES)
			compact = false;
		for (int32 i = 0; compact && i < tr->n_nodes; i++)
			if (tr->nodes[i].child != 0 &&
				(double) (float) tr->nodes[i].threshold != tr->nodes[i].threshold)
				compact = false;
		/* one- and two-value leaves carry their value inline (see forest_predict) */
		if (vw <= 2)
			for (int32 i = 0; i < tr->n_nodes; i++)
				if (tr->nodes[i].child == 0)
					tr->nodes[i].threshold = tr->values[(int64) tr->nodes[i].info * vw + (vw - 1)];
	}
	blob_expect_end(r);
	if (compact)
		MakeCompact(f);
	return f;
}
