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
 * are charged to a shared byte budget.  The main thread frees them before
 * any return, and registers their release with the caller's allocator
 * (ForestTrainEnv.on_release) for the one exit that is not a return: an
 * interrupt whose processing unwinds (the server's error longjmp).  That can
 * only happen in parallel_run with every helper joined, so the release never
 * races a helper.  Out-of-bag scores are computed afterwards, in tree order
 * per row, in tasks of a bounded number of tree walks, so they too are
 * independent of the thread count, and parallel.c's polls between tasks are
 * frequent enough.
 *
 * Interrupts inside a tree.  One tree of millions of rows grows for seconds,
 * too long to wait for parallel.c's poll between tasks.  So the main thread
 * (worker 0) polls at every node and before every feature of a split search;
 * when an interrupt is pending it raises the run's pause flag, which helpers
 * read at the same points.  Every worker then abandons the tree it was
 * growing (frees its buffers, returns their bytes to the budget) and
 * parallel_run joins the helpers and processes the interrupt.  The abandoned
 * trees are grown again from scratch in a later pass (GrowForest): a tree
 * depends only on its own seed, so the model is the same bytes whether or
 * not anything was abandoned.  A pass that completes no tree (an interrupt
 * that stays pending, or keeps coming back) is followed by one that polls
 * between trees only, which always completes, as parallel.c promises.
 *
 * Everything else (the codes, the scratch of each worker, the model bytes,
 * the loaded Forest) comes from the caller's CoreAlloc on the main thread;
 * errors are returned as CoreErrors with the messages the user sees.
 *
 * Functions marked "helper thread" run on any thread during a parallel_run:
 * they touch only their tree, their worker's scratch and the shared
 * read-only inputs, and report failure through TrainShared.error.
 */
#include "core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/pg_prng.h"

#include "forest_core.h"
#include "model_blob.h"
#include "parallel.h"
#include "training_core.h"

#define CODE_MISSING UINT32_MAX
#define OOB_BLOCK 512			/* rows per out-of-bag task at most */
#define OOB_TASK_WALKS 65536	/* tree walks per out-of-bag task at most */

typedef struct TreeBuild
{
	ForestNode *nodes;
	int32		n_nodes;
	int32		cap_nodes;
	double	   *values;
	int32		n_leaves;
	int32		cap_leaves;
	double	   *leaf_cover;		/* [n_leaves] the leaf's Σ row weight (its cover) */
	int32		cap_leaf_cover;
	double	   *importance;		/* [nf] weighted impurity decrease */
	uint64	   *inbag;			/* bitmap over rows; NULL when all rows are in */
	bool		grown;			/* complete (not abandoned for an interrupt) */
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
	const int32 *todo;			/* task -> tree number in this pass of GrowForest */
	const CoreInterrupts *hooks;	/* NULL when there are none */
	bool		poll_in_tree;	/* poll (and abandon trees) inside trees */
	TrainScratch *scratch;
	int32		oob_rows;		/* rows per out-of-bag task */
	double	   *oob_acc;		/* [n * vw] */
	int32	   *oob_cnt;		/* [n] */
	int64		mem_limit;
	int64		mem_used;		/* atomic */
	int64		regrown;		/* atomic: trees abandoned (AbandonTree) */
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

CoreStatus
forest_core_mtry(const ForestParams *p, int32 nf, int32 *mtry, CoreError *err)
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
				return core_error(err, CORE_INVALID,
								  "option \"max_features\" is %d but the data has %d features",
								  (int) p->max_features, nf);
			m = (int32) p->max_features;
			break;
		case MAXF_FRACTION:
			m = (int32) (p->max_features * nf);
			break;
		default:
			m = nf;
	}
	*mtry = Max(1, Min(m, nf));
	return CORE_OK;
}

/* ---------------------------------------------------------------------------
 * Tree buffers (helper thread: malloc, charged to the shared budget)
 * ------------------------------------------------------------------------- */

/* helper thread: false (and the run stopped) when the budget is exceeded */
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

/* helper thread: make room for `need` elements of a tree buffer */
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

/* helper thread: the index of `count` new nodes, -1 when out of budget or memory */
static int32
NewNodes(TrainShared *sh, TreeBuild *tb, int32 count)
{
	int32		first = tb->n_nodes;

	if (!Grow(sh, (void **) &tb->nodes, &tb->cap_nodes, first + count, sizeof(ForestNode)))
		return -1;
	tb->n_nodes += count;
	return first;
}

/*
 * Whether the tree under way must be abandoned for an interrupt: worker 0
 * (the main thread) polls the hooks and, when one is pending, asks the
 * helpers to pause (parallel_request_pause; parallel_run clears the flag
 * when it restarts them); a helper reads that flag.  Helper thread.
 */
static bool
TreeYields(TrainShared *sh, int worker)
{
	if (!sh->poll_in_tree)
		return false;
	if (worker == 0)
	{
		if (!sh->hooks->pending())
			return false;
		parallel_request_pause(&sh->run);
		return true;
	}
	return parallel_pause_requested(&sh->run);
}

/*
 * Drop a partly grown tree: free its buffers and give back the bytes they
 * were charged (see StartTree and Grow), so it can be grown again from
 * nothing.  Helper thread.
 */
static void
AbandonTree(TrainShared *sh, TreeBuild *tb)
{
	int64		bytes = (int64) tb->cap_nodes * sizeof(ForestNode) +
		(int64) tb->cap_leaves * sizeof(double) * sh->vw +
		(int64) tb->cap_leaf_cover * sizeof(double);

	if (tb->inbag)
		bytes += ((int64) sh->n + 63) / 64 * 8;
	if (tb->importance)
		bytes += (int64) sh->nf * 8;
	free(tb->nodes);
	free(tb->values);
	free(tb->leaf_cover);
	free(tb->importance);
	free(tb->inbag);
	memset(tb, 0, sizeof(TreeBuild));
	__atomic_sub_fetch(&sh->mem_used, bytes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->regrown, 1, __ATOMIC_RELAXED);
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
 * Helper thread.
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
		 * nodes (forest_core_load).
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

/* scan the bins of feature f and update best; helper thread */
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

typedef enum SplitResult
{
	SPLIT_NONE,					/* no feature splits the node: a leaf */
	SPLIT_FOUND,
	SPLIT_YIELD					/* abandon the tree (TreeYields) */
} SplitResult;

/*
 * The best split of the node's rows idx[start..end) over up to mtry usable
 * features, drawn without replacement (a partial Fisher-Yates from the
 * front, not compare.h's whole shuffle: these draws are part of every
 * trained model).  Checks TreeYields before each feature.  Helper thread.
 */
static SplitResult
FindSplit(TrainShared *sh, TrainScratch *sc, int worker, pg_prng_state *rng, int32 start,
		  int32 end, SplitChoice *best)
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

		if (TreeYields(sh, worker))
			return SPLIT_YIELD;
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
	return best->feature >= 0 ? SPLIT_FOUND : SPLIT_NONE;
}

/* ---------------------------------------------------------------------------
 * Growing one tree
 * ------------------------------------------------------------------------- */

/* helper thread: node `node` becomes a leaf holding the distribution or mean of tot */
static bool
MakeLeaf(TrainShared *sh, TreeBuild *tb, int32 node, const double *tot)
{
	int32		leaf = tb->n_leaves;
	double	   *v;

	if (!Grow(sh, (void **) &tb->values, &tb->cap_leaves, leaf + 1, sizeof(double) * sh->vw) ||
		!Grow(sh, (void **) &tb->leaf_cover, &tb->cap_leaf_cover, leaf + 1, sizeof(double)))
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
		tb->leaf_cover[leaf] = W;
	}
	else
	{
		v[0] = tot[0] > 0 ? tot[2] / tot[0] : 0;
		tb->leaf_cover[leaf] = tot[0];
	}
	tb->nodes[node].threshold = 0;
	tb->nodes[node].child = 0;
	tb->nodes[node].info = (uint32) leaf;
	return true;
}

/* helper thread: a malloc failure stops the run */
static void
MallocFailed(TrainShared *sh)
{
	__atomic_store_n(&sh->error, 2, __ATOMIC_RELAXED);
	parallel_stop(&sh->run);
}

/*
 * The rows of this tree and their weights: idx[0..*m) the rows drawn (in
 * canonical order), w[] their weights; false when a row was left out.
 * Helper thread; the draws come from the tree's own stream.
 */
static bool
DrawRows(TrainShared *sh, TrainScratch *sc, pg_prng_state *rng, int32 *m)
{
	const ForestParams *p = sh->p;
	int32		n = sh->n;
	bool		all_in = true;

	memset(sc->cnt, 0, sizeof(int32) * n);
	if (p->bootstrap)
	{
		int64		draws = Max(1, (int64) llround(p->sample_fraction * n));

		for (int64 d = 0; d < draws; d++)
			sc->cnt[pg_prng_uint64_range(rng, 0, n - 1)]++;
	}
	else if (p->sample_fraction < 1.0)
	{
		/* a partial Fisher-Yates from the front: the first `draws` rows of a shuffle */
		int32		draws = Max(1, (int32) llround(p->sample_fraction * n));

		for (int32 i = 0; i < n; i++)
			sc->idx[i] = i;
		for (int32 d = 0; d < draws; d++)
		{
			int32		j = d + (int32) pg_prng_uint64_range(rng, 0, n - d - 1);
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
	*m = 0;
	for (int32 i = 0; i < n; i++)
	{
		if (sc->cnt[i] == 0)
		{
			all_in = false;
			continue;
		}
		sc->idx[(*m)++] = i;
		sc->w[i] = sc->cnt[i] * (sh->cw ? sh->cw[sh->ycls[i]] : 1.0);
	}
	return all_in;
}

/*
 * The tree's in-bag bitmap (only when a row was left out), its importance
 * array and its root node; false when out of budget or memory.  Helper
 * thread.
 */
static bool
StartTree(TrainShared *sh, TrainScratch *sc, TreeBuild *tb, int32 m, bool all_in)
{
	if (!all_in)
	{
		int64		words = ((int64) sh->n + 63) / 64;

		if (!Charge(sh, words * 8))
			return false;
		tb->inbag = calloc(words, 8);
		if (tb->inbag == NULL)
		{
			MallocFailed(sh);
			return false;
		}
		for (int32 k = 0; k < m; k++)
			tb->inbag[sc->idx[k] >> 6] |= UINT64CONST(1) << (sc->idx[k] & 63);
	}
	if (!Charge(sh, (int64) sh->nf * 8))
		return false;
	tb->importance = calloc(sh->nf, sizeof(double));
	if (tb->importance == NULL)
	{
		MallocFailed(sh);
		return false;
	}
	for (int32 f = 0; f < sh->nf; f++)
		sc->perm[f] = f;
	return NewNodes(sh, tb, 1) == 0;
}

/*
 * Node totals and purity: tot[] := the statistics of rows idx[e->start..
 * e->end); true when the node must be a leaf whatever the split search
 * would find (pure, too small or at max_depth).  Helper thread.
 */
static bool
NodeTotals(const TrainShared *sh, const TrainScratch *sc, const StackEntry *e, double *tot)
{
	const ForestParams *p = sh->p;
	int32		nn = e->end - e->start;
	int32		nonzero = 0;
	double		ymin = INFINITY,
				ymax = -INFINITY;

	memset(tot, 0, sizeof(double) * sh->S);
	for (int32 k = e->start; k < e->end; k++)
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

	return nonzero <= 1 ||
		nn < p->min_samples_split ||
		nn < 2 * p->min_samples_leaf ||
		(p->max_depth > 0 && e->depth >= p->max_depth);
}

/*
 * Partition the node's rows, left part first, give the node its two
 * children and push them (left on top, so it is grown first).  False when
 * out of budget or memory.  Helper thread.
 */
static bool
SplitNode(TrainShared *sh, TrainScratch *sc, TreeBuild *tb, const StackEntry *e,
		  const SplitChoice *best, double parent_score, int32 *sp)
{
	const uint32 *col = sh->codes + (int64) best->feature * sh->n;
	int32		i = e->start,
				j = e->end - 1;
	int32		child;

	while (i <= j)
	{
		uint32		c = col[sc->idx[i]];
		bool		goes_left = (c == CODE_MISSING) ? best->missing_left : (c <= best->lo_code);

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
	Assert(i - e->start == best->n_left);
	child = NewNodes(sh, tb, 2);
	if (child < 0)
		return false;
	tb->nodes[e->node].threshold = best->threshold;
	tb->nodes[e->node].info = (uint32) best->feature |
		(best->missing_left ? FOREST_MISSING_LEFT : 0);
	tb->nodes[e->node].child = (uint32) child;
	tb->importance[best->feature] += best->score - parent_score;
	sc->stack[(*sp)++] = (StackEntry)
	{
		i, e->end, child + 1, e->depth + 1
	};
	sc->stack[(*sp)++] = (StackEntry)
	{
		e->start, i, child, e->depth + 1
	};
	return true;
}

/*
 * Grow tree todo[task]: a parallel_run task.  Draw the rows, then expand
 * nodes depth-first from an explicit stack until every node is a leaf.  On
 * a budget or memory failure the tree is left partial and the run stopped
 * (the driver reports it); when TreeYields it is abandoned, not grown.
 * Helper thread.
 */
static void
GrowTree(void *arg, int worker, int64 task)
{
	TrainShared *sh = (TrainShared *) arg;
	TrainScratch *sc = &sh->scratch[worker];
	int32		t = sh->todo[task];
	TreeBuild  *tb = &sh->trees[t];
	double	   *tot = sc->vec;
	pg_prng_state rng;
	int32		m,
				sp = 0;
	bool		all_in;

	pg_prng_seed(&rng, TreeSeed(sh->p->seed, t));
	all_in = DrawRows(sh, sc, &rng, &m);
	if (!StartTree(sh, sc, tb, m, all_in))
		return;
	sc->stack[sp++] = (StackEntry)
	{
		0, m, 0, 0
	};
	while (sp > 0)
	{
		StackEntry	e = sc->stack[--sp];
		SplitChoice best;
		SplitResult sr = SPLIT_NONE;
		double		parent_score = 0,
					W;
		bool		leaf = false;

		if (parallel_stopped(&sh->run))
			return;
		if (TreeYields(sh, worker))
			sr = SPLIT_YIELD;
		else if (!(leaf = NodeTotals(sh, sc, &e, tot)))
		{
			parent_score = SideScore(sh, tot, NULL, &W);
			sr = FindSplit(sh, sc, worker, &rng, e.start, e.end, &best);
			leaf = sr == SPLIT_NONE;
		}
		if (sr == SPLIT_YIELD)
		{
			AbandonTree(sh, tb);
			return;
		}
		if (leaf ? !MakeLeaf(sh, tb, e.node, tot)
			: !SplitNode(sh, sc, tb, &e, &best, parent_score, &sp))
			return;
	}
	tb->grown = true;
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
 * threshold slot (forest_core_load).  Sums run in tree order either way.
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

/* out-of-bag accumulation for a block of rows, trees in order; helper thread */
static void
OobBlock(void *arg, int worker, int64 block)
{
	TrainShared *sh = (TrainShared *) arg;
	int32		first = (int32) (block * sh->oob_rows);
	int32		last = (int32) Min(sh->n, (int64) first + sh->oob_rows);
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

/* dst := count * elem bytes from the caller's allocator, or return its error */
#define ALLOC_OR_RETURN(dst, a, count, elem, zero, err) \
	do { \
		if (((dst) = core_array((a), (count), (elem), (zero), (err))) == NULL) \
			return (err)->status; \
	} while (0)

/* the hooks parallel_run may call, or NULL when there are none */
static const CoreInterrupts *
RunHooks(const CoreInterrupts *hooks)
{
	if (hooks == NULL || hooks->pending == NULL || hooks->process == NULL)
		return NULL;
	return hooks;
}

/* The malloc'd tree buffers, freed by the driver or by the allocator's release. */
typedef struct TreeRelease
{
	TreeBuild  *trees;
	int32		n;
	bool		armed;
} TreeRelease;

static void
FreeTrees(TreeBuild *trees, int32 n)
{
	for (int32 t = 0; t < n; t++)
	{
		free(trees[t].nodes);
		free(trees[t].values);
		free(trees[t].leaf_cover);
		free(trees[t].importance);
		free(trees[t].inbag);
		memset(&trees[t], 0, sizeof(TreeBuild));
	}
}

/* on_release callback: runs when the allocator's memory goes (after an unwinding interrupt) */
static void
ReleaseTrees(void *arg)
{
	TreeRelease *rel = (TreeRelease *) arg;

	if (rel->armed)
		FreeTrees(rel->trees, rel->n);
	rel->armed = false;
}

static CoreStatus
CheckTrainInput(int64 n_rows, int32 nf, CoreError *err)
{
	if (n_rows < 1)
	{
		core_error(err, CORE_DATA, "no training rows");
		return core_error_detail(err, "Rows with a NULL label or NULL features are skipped.");
	}
	if (n_rows >= PG_INT32_MAX)
		return core_error(err, CORE_LIMIT, "too many training rows: %lld (the limit is %d)",
						  (long long) n_rows, PG_INT32_MAX - 1);
	if (nf < 1 || nf > FOREST_MAX_FEATURES)
		return core_error(err, CORE_LIMIT, "a forest takes between 1 and %d features, got %d",
						  FOREST_MAX_FEATURES, nf);
	return CORE_OK;
}

/*
 * The bytes training needs besides the trees, checked against mem_limit
 * before the big allocations.
 */
static CoreStatus
EstimateMemory(const TrainShared *sh, int nw, size_t mem_limit, int64 *est_out, CoreError *err)
{
	int32		n = sh->n,
				nf = sh->nf;
	int64		est;

	est = (int64) n * nf * (8 + 4)	/* caller's matrix + codes */
		+ (int64) n * (4 + 8 + 8 + 4 + 8)	/* ord, y, ys, ycls, oob */
		+ (int64) n * sh->vw * 8
		+ (int64) n * 12 * 2		/* sort buffers during preparation */
		+ (int64) nw * ((int64) n * (4 + 4 + 8 + 8 + 8 + 16) + (int64) n * (sh->S * 8 + 8));
	*est_out = est;
	if (est > (int64) mem_limit)
	{
		core_error(err, CORE_LIMIT,
				   "forest training needs about %lld MB, more than maintenance_work_mem (%zu MB)",
				   (long long) (est >> 20) + 1, mem_limit >> 20);
		return core_error_hint(err, "Raise maintenance_work_mem (for example SET maintenance_work_mem = '%lldMB'), or train on fewer rows.",
							   (long long) ((est * 2) >> 20) + 1);
	}
	return CORE_OK;
}

/*
 * The rows in canonical order (sh->ord), the labels in that order (sh->y),
 * for regression the centred and scaled labels (sh->ys), for classification
 * each row's class (sh->ycls) and the balanced class weights (sh->cw).
 */
static CoreStatus
PrepareRows(TrainShared *sh, const CoreAlloc *a, const double *y, const double *classes,
			const CoreInterrupts *hooks, CoreError *err)
{
	int32		n = sh->n,
				nc = sh->nc;
	int32	   *ord;
	double	   *ysorted;

	ALLOC_OR_RETURN(ord, a, n, sizeof(int32), true, err);
	canonical_row_order(n, sh->nf, sh->x, y, hooks, ord);
	core_check_interrupts(hooks);
	ALLOC_OR_RETURN(ysorted, a, n, sizeof(double), true, err);
	for (int32 i = 0; i < n; i++)
		ysorted[i] = y[ord[i]];
	sh->y = ysorted;
	sh->ord = ord;
	if (nc == 0)
	{
		/*
		 * Regression scores splits by Σ(Σw·y)²/Σw, which on raw labels loses
		 * the variance under a large offset (timestamps, money) and overflows
		 * beyond 1e154.  The scores use the labels minus their mean, scaled
		 * by a power of two to |ys| <= 2; leaves keep the labels as given.
		 */
		double	   *ys;
		double		maxabs = 0,
					mean = 0;
		int			e = 0;

		ALLOC_OR_RETURN(ys, a, n, sizeof(double), false, err);
		for (int32 i = 0; i < n; i++)
			maxabs = Max(maxabs, fabs(ysorted[i]));
		if (maxabs > 0)
			(void) frexp(maxabs, &e);
		for (int32 i = 0; i < n; i++)
			mean += ldexp(ysorted[i], -e);
		mean /= n;
		for (int32 i = 0; i < n; i++)
			ys[i] = ldexp(ysorted[i], -e) - mean;
		sh->ys = ys;
		sh->yexp = e;
	}
	else
	{
		int64	   *count;
		int32	   *ycls;
		int32		c = 0;

		ALLOC_OR_RETURN(count, a, nc, sizeof(int64), true, err);
		ALLOC_OR_RETURN(ycls, a, n, sizeof(int32), true, err);
		for (int32 i = 0; i < n; i++)
		{
			while (classes[c] != ysorted[i])
				c++;			/* rows are sorted by label */
			ycls[i] = c;
			count[c]++;
		}
		if (sh->p->class_weight_balanced)
		{
			double	   *cw;

			ALLOC_OR_RETURN(cw, a, nc, sizeof(double), false, err);
			for (c = 0; c < nc; c++)
				cw[c] = (double) n / ((double) nc * count[c]);
			sh->cw = cw;
		}
		core_release(a, count);
		sh->ycls = ycls;
	}
	return CORE_OK;
}

/*
 * codes: each feature's values replaced by their ranks among the feature's
 * distinct values (column-major, CODE_MISSING for NaN); sh->uvals the
 * distinct values, ascending.  Polls for interrupts once per feature.
 */
static CoreStatus
BuildCodes(TrainShared *sh, const CoreAlloc *a, const CoreInterrupts *hooks, CoreError *err)
{
	int32		n = sh->n,
				nf = sh->nf;
	uint32	   *codes;
	int32	   *nq;
	uint64	   *keys,
			   *tmpk;
	uint32	   *rows,
			   *tmpr;

	ALLOC_OR_RETURN(codes, a, (size_t) n * nf, sizeof(uint32), true, err);
	ALLOC_OR_RETURN(nq, a, nf, sizeof(int32), true, err);
	ALLOC_OR_RETURN(sh->uvals, a, nf, sizeof(double *), true, err);
	ALLOC_OR_RETURN(keys, a, n, sizeof(uint64), true, err);
	ALLOC_OR_RETURN(tmpk, a, n, sizeof(uint64), true, err);
	ALLOC_OR_RETURN(rows, a, n, sizeof(uint32), true, err);
	ALLOC_OR_RETURN(tmpr, a, n, sizeof(uint32), true, err);
	for (int32 f = 0; f < nf; f++)
	{
		uint32	   *col = codes + (int64) f * n;
		int32		nk = 0,
					q = 0;
		double	   *u;

		core_check_interrupts(hooks);
		for (int32 i = 0; i < n; i++)
		{
			double		v = sh->x[(int64) sh->ord[i] * nf + f];

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
		ALLOC_OR_RETURN(u, a, Max(q, 1), sizeof(double), false, err);
		q = 0;
		for (int32 k = 0; k < nk; k++)
			if (k == 0 || keys[k] != keys[k - 1])
			{
				double		v = sh->x[(int64) sh->ord[rows[k]] * nf + f];

				u[q++] = (v == 0) ? 0.0 : v;
			}
		nq[f] = q;
		sh->uvals[f] = u;
		sh->maxq = Max(sh->maxq, q);
	}
	core_release(a, keys);
	core_release(a, tmpk);
	core_release(a, rows);
	core_release(a, tmpr);
	sh->codes = codes;
	sh->nq = nq;
	return CORE_OK;
}

/* each worker's scratch (sh->scratch[nw]) and the tree slots (sh->trees) */
static CoreStatus
AllocScratch(TrainShared *sh, const CoreAlloc *a, int nw, CoreError *err)
{
	int32		n = sh->n;
	int32		binsz = Max(sh->maxq, 1);

	ALLOC_OR_RETURN(sh->scratch, a, nw, sizeof(TrainScratch), true, err);
	for (int w = 0; w < nw; w++)
	{
		TrainScratch *sc = &sh->scratch[w];

		ALLOC_OR_RETURN(sc->cnt, a, n, sizeof(int32), true, err);
		ALLOC_OR_RETURN(sc->idx, a, n, sizeof(int32), true, err);
		ALLOC_OR_RETURN(sc->w, a, n, sizeof(double), true, err);
		ALLOC_OR_RETURN(sc->keys, a, n, sizeof(uint64), true, err);
		ALLOC_OR_RETURN(sc->tmp, a, n, sizeof(uint64), true, err);
		ALLOC_OR_RETURN(sc->stats, a, (size_t) binsz * sh->S, sizeof(double), true, err);
		ALLOC_OR_RETURN(sc->bin_n, a, binsz, sizeof(int32), true, err);
		ALLOC_OR_RETURN(sc->bin_code, a, binsz, sizeof(uint32), true, err);
		ALLOC_OR_RETURN(sc->perm, a, sh->nf, sizeof(int32), true, err);
		ALLOC_OR_RETURN(sc->stack, a, (size_t) n + 1, sizeof(StackEntry), true, err);
		ALLOC_OR_RETURN(sc->vec, a, 6 * (size_t) sh->S, sizeof(double), true, err);
	}
	ALLOC_OR_RETURN(sh->trees, a, sh->p->n_trees, sizeof(TreeBuild), true, err);
	return CORE_OK;
}

/*
 * Grow every tree on nw threads, in passes: each pass grows the trees not
 * yet grown (the first, all of them); trees abandoned for an interrupt are
 * left to the next pass (see the top of the file).  The budget or a malloc
 * failure is the error.
 */
static CoreStatus
GrowForest(TrainShared *sh, const CoreAlloc *a, int nw, size_t mem_limit, CoreError *err)
{
	int32		ntrees = sh->p->n_trees;
	int32		left = ntrees;
	int32	   *todo;

	ALLOC_OR_RETURN(todo, a, ntrees, sizeof(int32), false, err);
	for (int32 t = 0; t < ntrees; t++)
		todo[t] = t;
	sh->todo = todo;
	sh->run.fn = GrowTree;
	sh->run.arg = sh;
	sh->poll_in_tree = sh->hooks != NULL;
	while (left > 0 && sh->error == 0)
	{
		int32		before = left;

		sh->run.n_tasks = left;
		sh->run.n_workers = Min(nw, left);
		parallel_run(&sh->run, sh->hooks);
		left = 0;
		for (int32 k = 0; k < before; k++)
			if (!sh->trees[todo[k]].grown)
				todo[left++] = todo[k];
		/* after a pass that grew nothing, one that cannot abandon trees */
		sh->poll_in_tree = sh->hooks != NULL && left < before;
	}
	sh->todo = NULL;
	core_release(a, todo);
	if (sh->error == 1)
	{
		core_error(err, CORE_LIMIT, "forest training does not fit in maintenance_work_mem (%zu MB)",
				   mem_limit >> 20);
		core_error_detail(err, "The trees grown so far hold %lld MB.", (long long) (sh->mem_used >> 20));
		return core_error_hint(err, "Raise maintenance_work_mem, or make the trees smaller with max_depth, min_samples_leaf or n_trees.");
	}
	if (sh->error == 2)
		return core_error(err, CORE_NOMEM, "out of memory while growing the forest");
	return CORE_OK;
}

/*
 * The out-of-bag score into *score: accuracy, or R² in the scaled units of
 * ys (a ratio, so the same, and safe from overflow); NaN without out-of-bag
 * rows.
 */
static CoreStatus
OobScore(TrainShared *sh, const CoreAlloc *a, int nthreads, double *score, CoreError *err)
{
	int32		n = sh->n,
				nc = sh->nc;
	int64		used = 0;
	double		hits = 0,
				ss_res = 0,
				ss_tot = 0,
				ymean = 0;

	*score = NAN;
	ALLOC_OR_RETURN(sh->oob_acc, a, (size_t) n * sh->vw, sizeof(double), true, err);
	ALLOC_OR_RETURN(sh->oob_cnt, a, n, sizeof(int32), true, err);
	/* a row's sum runs over the trees in order whatever the blocks: bound a task's walks */
	sh->oob_rows = Max(1, Min(OOB_BLOCK, OOB_TASK_WALKS / sh->p->n_trees));
	sh->run.n_tasks = ((int64) n + sh->oob_rows - 1) / sh->oob_rows;
	sh->run.fn = OobBlock;
	sh->run.n_workers = Max(1, Min(nthreads, 64));
	parallel_run(&sh->run, sh->hooks);
	for (int32 i = 0; i < n; i++)
		if (sh->oob_cnt[i] > 0)
		{
			used++;
			ymean += nc > 0 ? 0 : ldexp(sh->y[i], -sh->yexp);
		}
	if (used > 0)
	{
		ymean /= used;
		for (int32 i = 0; i < n; i++)
		{
			double	   *acc = sh->oob_acc + (int64) i * sh->vw;

			if (sh->oob_cnt[i] == 0)
				continue;
			if (nc > 0)
				hits += ArgMax(acc, nc) == sh->ycls[i];
			else
			{
				double		pred = ldexp(acc[0] / sh->oob_cnt[i], -sh->yexp);
				double		yi = ldexp(sh->y[i], -sh->yexp);

				ss_res += (yi - pred) * (yi - pred);
				ss_tot += (yi - ymean) * (yi - ymean);
			}
		}
		if (nc > 0)
			*score = hits / used;
		else
			*score = ss_tot > 0 ? 1.0 - ss_res / ss_tot : NAN;
	}
	core_release(a, sh->oob_acc);
	core_release(a, sh->oob_cnt);
	sh->oob_acc = NULL;
	sh->oob_cnt = NULL;
	return CORE_OK;
}

/* importance[nf]: each tree's normalised decrease, averaged, normalised */
static void
ForestImportance(const TrainShared *sh, double *importance)
{
	int32		nf = sh->nf;
	double		total = 0;

	for (int32 t = 0; t < sh->p->n_trees; t++)
	{
		double		s = 0;

		for (int32 f = 0; f < nf; f++)
			s += sh->trees[t].importance[f];
		if (s > 0)
			for (int32 f = 0; f < nf; f++)
				importance[f] += sh->trees[t].importance[f] / s;
	}
	for (int32 f = 0; f < nf; f++)
		total += importance[f];
	for (int32 f = 0; f < nf; f++)
		importance[f] = total > 0 ? importance[f] / total : 0;
}

/* make room for `extra` more bytes in one allocation (the model's exact size) */
static void
BufReserve(CoreBuf *b, size_t extra)
{
	char	   *bigger;

	if (b->failed || extra <= b->cap - b->len)
		return;
	if (extra > CORE_MAX_ALLOC - b->len)
	{
		b->failed = true;
		return;
	}
	bigger = b->alloc->alloc(b->alloc->ctx, b->len + extra);
	if (bigger == NULL)
	{
		b->failed = true;
		return;
	}
	memcpy(bigger, b->data, b->len);
	core_release(b->alloc, b->data);
	b->data = bigger;
	b->cap = b->len + extra;
}

/*
 * Node covers of a grown tree into cover[n_nodes]: a leaf's is the Σ row
 * weight its value was computed from (MakeLeaf), a split's the sum of its
 * two children's, so a parent's cover is exactly left + right in doubles
 * (children have larger indices than their parent: one backward pass).
 */
static void
TreeCovers(const TreeBuild *tb, double *cover)
{
	for (int32 i = tb->n_nodes - 1; i >= 0; i--)
	{
		const ForestNode *nd = &tb->nodes[i];

		cover[i] = nd->child == 0 ? tb->leaf_cover[nd->info]
			: cover[nd->child] + cover[nd->child + 1];
	}
}

/*
 * The model: envelope, then task, the payload version (FOREST_PAYLOAD_VERSION),
 * two zero bytes, n_features, n_classes, n_trees, the classes, the
 * importances and per tree n_nodes, n_leaves, nodes, leaf values and node
 * covers (native byte order, as forest_core_load reads it).
 */
static CoreStatus
WriteForest(CoreBuf *buf, const TrainShared *sh, const double *classes, const double *importance,
			const CoreInterrupts *hooks, CoreError *err)
{
	uint8		head[4] = {(uint8) sh->p->task, FOREST_PAYLOAD_VERSION, 0, 0};
	int32		maxn = 1;
	double	   *cover;
	int32		nc = sh->nc;
	int32		ntrees = sh->p->n_trees;
	size_t		start;
	size_t		bytes = MODEL_HEADER_SIZE + 16 + sizeof(double) * ((size_t) nc + sh->nf);

	for (int32 t = 0; t < ntrees; t++)
	{
		bytes += 8 + (sizeof(ForestNode) + sizeof(double)) * (size_t) sh->trees[t].n_nodes +
			sizeof(double) * sh->vw * (size_t) sh->trees[t].n_leaves;
		maxn = Max(maxn, sh->trees[t].n_nodes);
	}
	if ((cover = core_array(buf->alloc, maxn, sizeof(double), false, err)) == NULL)
		return err->status;
	BufReserve(buf, bytes);
	start = model_envelope_begin(buf, MODEL_KIND_FOREST);
	core_buf_append(buf, head, 4);
	core_buf_append(buf, &sh->nf, 4);
	core_buf_append(buf, &nc, 4);
	core_buf_append(buf, &ntrees, 4);
	if (nc > 0)
		core_buf_append(buf, classes, sizeof(double) * nc);
	core_buf_append(buf, importance, sizeof(double) * sh->nf);
	for (int32 t = 0; t < ntrees; t++)
	{
		const TreeBuild *tb = &sh->trees[t];

		core_check_interrupts(hooks);
		core_buf_append(buf, &tb->n_nodes, 4);
		core_buf_append(buf, &tb->n_leaves, 4);
		core_buf_append(buf, tb->nodes, sizeof(ForestNode) * tb->n_nodes);
		core_buf_append(buf, tb->values, sizeof(double) * sh->vw * tb->n_leaves);
		TreeCovers(tb, cover);
		core_buf_append(buf, cover, sizeof(double) * tb->n_nodes);
	}
	core_release(buf->alloc, cover);
	return model_envelope_finish(buf, start, err);
}

/* the main-thread scratch, once the model is written */
static void
ReleaseScratch(TrainShared *sh, const CoreAlloc *a, int nw)
{
	for (int w = 0; w < nw; w++)
	{
		TrainScratch *sc = &sh->scratch[w];

		core_release(a, sc->cnt);
		core_release(a, sc->idx);
		core_release(a, sc->w);
		core_release(a, sc->keys);
		core_release(a, sc->tmp);
		core_release(a, sc->stats);
		core_release(a, sc->bin_n);
		core_release(a, sc->bin_code);
		core_release(a, sc->perm);
		core_release(a, sc->stack);
		core_release(a, sc->vec);
	}
	core_release(a, sh->scratch);
	for (int32 f = 0; f < sh->nf; f++)
		core_release(a, sh->uvals[f]);
	core_release(a, sh->uvals);
	core_release(a, (void *) sh->codes);
	core_release(a, (void *) sh->nq);
	core_release(a, (void *) sh->ord);
	core_release(a, (void *) sh->y);
	core_release(a, (void *) sh->ys);
	core_release(a, (void *) sh->ycls);
	core_release(a, (void *) sh->cw);
}

CoreStatus
forest_core_train(int64 n_rows, int32 nf, const double *x, const double *y,
				  const ForestParams *p, const ForestTrainEnv *env, CoreBuf *out,
				  ForestTrainInfo *info, CoreError *err)
{
	const CoreAlloc *a = env->alloc;
	TrainShared sh;
	double	   *classes = NULL;
	int32		nc = 0;
	int64		est;
	int			nw;
	double	   *importance;
	TreeRelease *rel;
	CoreStatus	st;

	if ((st = CheckTrainInput(n_rows, nf, err)) != CORE_OK)
		return st;
	memset(&sh, 0, sizeof(sh));
	sh.p = p;
	sh.n = (int32) n_rows;
	sh.nf = nf;
	sh.x = x;
	if ((st = forest_core_mtry(p, nf, &sh.mtry, err)) != CORE_OK)
		return st;

	/* classes */
	if (p->task == FOREST_CLASSIFICATION &&
		(st = training_classes(a, y, sh.n, FOREST_MAX_CLASSES, &classes, &nc, err)) != CORE_OK)
		return st;
	sh.nc = nc;
	sh.S = nc > 0 ? nc : 3;
	sh.vw = nc > 0 ? nc : 1;

	/* memory estimate, before the big allocations */
	nw = Max(1, Min(env->nthreads, Min(p->n_trees, 64)));
	if ((st = EstimateMemory(&sh, nw, env->mem_limit, &est, err)) != CORE_OK)
		return st;

	/* canonical row order, labels, codes, per-worker scratch */
	if ((st = PrepareRows(&sh, a, y, classes, env->hooks, err)) != CORE_OK ||
		(st = BuildCodes(&sh, a, env->hooks, err)) != CORE_OK ||
		(st = AllocScratch(&sh, a, nw, err)) != CORE_OK)
		return st;
	sh.mem_limit = (int64) env->mem_limit - est;
	ALLOC_OR_RETURN(importance, a, nf, sizeof(double), true, err);
	ALLOC_OR_RETURN(rel, a, 1, sizeof(TreeRelease), true, err);
	rel->trees = sh.trees;
	rel->n = p->n_trees;
	rel->armed = true;
	if (env->on_release)
		env->on_release(env->release_ctx, ReleaseTrees, rel);

	/* the trees, the out-of-bag score, the importances and the bytes */
	sh.hooks = RunHooks(env->hooks);
	st = GrowForest(&sh, a, nw, env->mem_limit, err);
	info->oob_score = NAN;
	if (st == CORE_OK && (p->bootstrap || p->sample_fraction < 1.0))
		st = OobScore(&sh, a, env->nthreads, &info->oob_score, err);
	if (st == CORE_OK)
	{
		ForestImportance(&sh, importance);
		info->nodes = 0;
		for (int32 t = 0; t < p->n_trees; t++)
			info->nodes += sh.trees[t].n_nodes;
		info->memory = (size_t) (est + sh.mem_used);
		info->regrown = sh.regrown;
		st = WriteForest(out, &sh, classes, importance, env->hooks, err);
	}
	ReleaseTrees(rel);
	if (st != CORE_OK)
		return st;
	ReleaseScratch(&sh, a, nw);
	core_release(a, importance);
	if (env->on_release == NULL)
	{
		/* otherwise the registered callback still reads them */
		core_release(a, sh.trees);
		core_release(a, rel);
	}

	info->rows = sh.n;
	info->n_classes = nc;
	info->classes = classes;
	return CORE_OK;
}

/*
 * Lay a validated tree out for prediction: the top HOT_DEPTH levels first,
 * breadth-first, so the nodes every row visits share cache lines, then each
 * deeper subtree depth-first, so a row's last steps stay within a few lines.
 * Sibling pairs stay adjacent and children still follow their parent.
 */
#define HOT_DEPTH 10

static CoreStatus
LayOutTree(const CoreAlloc *a, ForestTree *tr, CoreError *err)
{
	int32		n = tr->n_nodes;
	int32	   *depth,
			   *order,
			   *newidx,
			   *stack;
	ForestNode *out;
	double	   *cover = NULL;
	int32		placed = 1,
				bfs_end;

	ALLOC_OR_RETURN(depth, a, n, sizeof(int32), true, err);
	ALLOC_OR_RETURN(order, a, n, sizeof(int32), false, err);
	ALLOC_OR_RETURN(newidx, a, n, sizeof(int32), false, err);
	ALLOC_OR_RETURN(stack, a, n, sizeof(int32), false, err);
	ALLOC_OR_RETURN(out, a, (size_t) n + 1, sizeof(ForestNode), false, err);
	if (tr->cover)
		ALLOC_OR_RETURN(cover, a, (size_t) n + 1, sizeof(double), false, err);

	depth[0] = 0;
	tr->depth = 0;
	for (int32 i = 0; i < n; i++)
		if (tr->nodes[i].child != 0)
		{
			depth[tr->nodes[i].child] = depth[tr->nodes[i].child + 1] = depth[i] + 1;
			tr->depth = Max(tr->depth, depth[i] + 1);
		}

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
	if (cover)
	{
		cover[0] = tr->cover[order[0]];
		cover[1] = 0;			/* the padding slot: nothing points to it */
		for (int32 k = 1; k < placed; k++)
			cover[k + 1] = tr->cover[order[k]];
		core_release(a, tr->cover);
		tr->cover = cover;
	}
	core_release(a, tr->nodes);
	tr->nodes = out;
	tr->n_nodes = placed + 1;
	core_release(a, depth);
	core_release(a, order);
	core_release(a, newidx);
	core_release(a, stack);
	return CORE_OK;
}

/* ---------------------------------------------------------------------------
 * Loading model bytes
 * ------------------------------------------------------------------------- */

static CoreStatus
CheckCount(int32 v, int32 lo, int32 hi, const char *what, CoreError *err)
{
	if (v < lo || v > hi)
	{
		core_error(err, CORE_CORRUPT, "invalid media_reco model");
		return core_error_detail(err, "The %s count %d is outside %d..%d.", what, v, lo, hi);
	}
	return CORE_OK;
}

/*
 * 8-byte nodes for prediction, when every split threshold is a float (as
 * training chooses them), every tree has fewer than 2^21 nodes and the model
 * at most 256 features: twice the nodes per cache line, and the leaf value
 * read with the leaf itself (see CompactNode).
 */
static CoreStatus
MakeCompact(const CoreAlloc *a, Forest *f, CoreError *err)
{
	int32		vw = f->value_width;

	for (int32 t = 0; t < f->n_trees; t++)
	{
		ForestTree *tr = &f->trees[t];
		CompactNode *cn;

		ALLOC_OR_RETURN(cn, a, tr->n_nodes, sizeof(CompactNode), false, err);

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
		f->bytes += sizeof(CompactNode) * (size_t) tr->n_nodes;
		f->bytes -= sizeof(ForestNode) * (size_t) tr->n_nodes;
		core_release(a, tr->nodes);
		tr->nodes = NULL;
	}
	f->compact = true;
	return CORE_OK;
}

/* the header: task, counts, classes and importances */
static CoreStatus
LoadHeader(const CoreAlloc *a, CoreReader *r, Forest *f, CoreError *err)
{
	uint8		head[4];
	CoreStatus	st;

	if (!payload_read(r, head, 4, err))
		return err->status;
	if (head[0] > FOREST_REGRESSION || head[2] || head[3])
		return model_corrupt(err, "Unknown forest task.");
	if (head[1] > FOREST_PAYLOAD_VERSION)
	{
		core_error(err, CORE_CORRUPT, "invalid media_reco model");
		return core_error_detail(err, "Forest payload version %u is not supported by this build (it reads versions 0 to %d).",
								 head[1], FOREST_PAYLOAD_VERSION);
	}
	f->task = (ForestTask) head[0];
	f->payload_version = head[1];
	if (!payload_read(r, &f->n_features, 4, err) ||
		!payload_read(r, &f->n_classes, 4, err) ||
		!payload_read(r, &f->n_trees, 4, err))
		return err->status;
	if ((st = CheckCount(f->n_features, 1, FOREST_MAX_FEATURES, "feature", err)) != CORE_OK ||
		(st = CheckCount(f->n_trees, 1, FOREST_MAX_TREES, "tree", err)) != CORE_OK)
		return st;
	if (f->task == FOREST_CLASSIFICATION)
	{
		if ((st = CheckCount(f->n_classes, 2, FOREST_MAX_CLASSES, "class", err)) != CORE_OK)
			return st;
	}
	else if (f->n_classes != 0)
		return model_corrupt(err, "A regression forest has classes.");
	f->value_width = f->task == FOREST_CLASSIFICATION ? f->n_classes : 1;

	if (f->n_classes > 0)
	{
		ALLOC_OR_RETURN(f->classes, a, f->n_classes, sizeof(double), false, err);
		if (!payload_read(r, f->classes, sizeof(double) * f->n_classes, err))
			return err->status;
		for (int32 c = 0; c < f->n_classes; c++)
			if (!isfinite(f->classes[c]) || (c > 0 && !(f->classes[c] > f->classes[c - 1])))
				return model_corrupt(err, "The class list is not finite and strictly ascending.");
	}
	ALLOC_OR_RETURN(f->importance, a, f->n_features, sizeof(double), false, err);
	if (!payload_read(r, f->importance, sizeof(double) * f->n_features, err))
		return err->status;
	for (int32 i = 0; i < f->n_features; i++)
		if (!(f->importance[i] >= 0 && f->importance[i] <= 1))
			return model_corrupt(err, "A feature importance is outside [0, 1].");
	return CORE_OK;
}

/*
 * Covers (payload version 1): every node's is finite and positive (a node
 * holds at least one row of positive weight), and a split's is exactly the
 * sum of its children's in doubles, as training computes it (TreeCovers).
 * Exact, not within a tolerance: the sum is how the covers are made, and it
 * makes the weights of a split's children sum to 1 up to one rounding.
 */
static CoreStatus
CheckCovers(const ForestTree *tr, CoreError *err)
{
	if (tr->cover == NULL)
		return CORE_OK;
	for (int32 i = 0; i < tr->n_nodes; i++)
		if (!(isfinite(tr->cover[i]) && tr->cover[i] > 0))
			return model_corrupt(err, "A node cover is not finite and positive.");
	for (int32 i = 0; i < tr->n_nodes; i++)
	{
		const ForestNode *nd = &tr->nodes[i];

		if (nd->child != 0 && tr->cover[i] != tr->cover[nd->child] + tr->cover[nd->child + 1])
			return model_corrupt(err, "A split's cover is not the sum of its children's.");
	}
	return CORE_OK;
}

/*
 * One tree's nodes and values, checked: every split points forward (child >
 * own index), so any walk from the root ends at a leaf in fewer than n_nodes
 * steps, whatever the bytes; and every node has at most one parent, so the
 * nodes form a tree (LayOutTree relies on it).
 */
static CoreStatus
LoadTree(const CoreAlloc *a, CoreReader *r, const Forest *f, ForestTree *tr, CoreError *err)
{
	int32		vw = f->value_width;
	const char *src;
	bool	   *parented;
	CoreStatus	st;

	if (!payload_read(r, &tr->n_nodes, 4, err) || !payload_read(r, &tr->n_leaves, 4, err))
		return err->status;
	if ((st = CheckCount(tr->n_nodes, 1, PG_INT32_MAX - 1, "node", err)) != CORE_OK ||
		(st = CheckCount(tr->n_leaves, 1, tr->n_nodes, "leaf", err)) != CORE_OK)
		return st;
	/* the lengths are checked against the bytes before anything is allocated */
	if ((size_t) tr->n_nodes > r->left / sizeof(ForestNode))
		return model_corrupt(err, "The payload ends before the model structure does.");
	if ((src = payload_take(r, sizeof(ForestNode) * (size_t) tr->n_nodes, err)) == NULL)
		return err->status;
	ALLOC_OR_RETURN(tr->nodes, a, tr->n_nodes, sizeof(ForestNode), false, err);
	memcpy(tr->nodes, src, sizeof(ForestNode) * (size_t) tr->n_nodes);
	if ((size_t) tr->n_leaves > r->left / (sizeof(double) * vw))
		return model_corrupt(err, "The payload ends before the model structure does.");
	if ((src = payload_take(r, sizeof(double) * vw * (size_t) tr->n_leaves, err)) == NULL)
		return err->status;
	ALLOC_OR_RETURN(tr->values, a, (size_t) vw * tr->n_leaves, sizeof(double), false, err);
	memcpy(tr->values, src, sizeof(double) * vw * (size_t) tr->n_leaves);
	if (f->payload_version >= 1)
	{
		if ((size_t) tr->n_nodes > r->left / sizeof(double))
			return model_corrupt(err, "The payload ends before the model structure does.");
		if ((src = payload_take(r, sizeof(double) * (size_t) tr->n_nodes, err)) == NULL)
			return err->status;
		ALLOC_OR_RETURN(tr->cover, a, tr->n_nodes, sizeof(double), false, err);
		memcpy(tr->cover, src, sizeof(double) * (size_t) tr->n_nodes);
	}

	ALLOC_OR_RETURN(parented, a, tr->n_nodes, 1, true, err);
	for (int32 i = 0; i < tr->n_nodes; i++)
	{
		const ForestNode *nd = &tr->nodes[i];

		if (nd->child == 0)
		{
			if (nd->info >= (uint32) tr->n_leaves)
				return model_corrupt(err, "A leaf points outside its tree's values.");
		}
		else
		{
			if (nd->child <= (uint32) i || nd->child >= (uint32) tr->n_nodes - 1)
				return model_corrupt(err, "A split points outside its tree or backwards.");
			if (parented[nd->child] || parented[nd->child + 1])
				return model_corrupt(err, "Two splits share a child.");
			parented[nd->child] = parented[nd->child + 1] = true;
			if ((nd->info & FOREST_FEATURE_MASK) >= (uint32) f->n_features)
				return model_corrupt(err, "A split uses a feature the model does not have.");
			if (isnan(nd->threshold))
				return model_corrupt(err, "A split threshold is NaN.");
		}
	}
	core_release(a, parented);
	if ((st = CheckCovers(tr, err)) != CORE_OK)
		return st;
	for (int64 v = 0; v < (int64) tr->n_leaves * vw; v++)
		if (!isfinite(tr->values[v]) ||
			(f->task == FOREST_CLASSIFICATION && !(tr->values[v] >= 0 && tr->values[v] <= 1)))
			return model_corrupt(err, "A leaf value is not finite or not a probability.");
	if (f->task == FOREST_CLASSIFICATION)
		for (int64 l = 0; l < tr->n_leaves; l++)
		{
			double		sum = 0;

			for (int32 c = 0; c < vw; c++)
				sum += tr->values[l * vw + c];
			if (fabs(sum - 1.0) > 1e-9)
				return model_corrupt(err, "A leaf's class probabilities do not sum to 1.");
		}
	return CORE_OK;
}

/* can the compact 8-byte form hold this laid-out tree? */
static bool
TreeFitsCompact(const Forest *f, const ForestTree *tr)
{
	if (tr->n_nodes > COMPACT_CHILD_MASK || f->n_features > COMPACT_MAX_FEATURES)
		return false;
	for (int32 i = 0; i < tr->n_nodes; i++)
		if (tr->nodes[i].child != 0 &&
			(double) (float) tr->nodes[i].threshold != tr->nodes[i].threshold)
			return false;
	return true;
}

CoreStatus
forest_core_load(const CoreAlloc *a, CoreReader *r, const CoreInterrupts *hooks,
				 Forest **out, CoreError *err)
{
	Forest	   *f;
	int32		vw;
	bool		compact = true;
	CoreStatus	st;

	*out = NULL;
	ALLOC_OR_RETURN(f, a, 1, sizeof(Forest), true, err);
	if ((st = LoadHeader(a, r, f, err)) != CORE_OK)
		return st;
	vw = f->value_width;
	ALLOC_OR_RETURN(f->trees, a, f->n_trees, sizeof(ForestTree), true, err);
	f->bytes = sizeof(Forest) + sizeof(ForestTree) * f->n_trees;
	for (int32 t = 0; t < f->n_trees; t++)
	{
		ForestTree *tr = &f->trees[t];

		core_check_interrupts(hooks);
		if ((st = LoadTree(a, r, f, tr, err)) != CORE_OK ||
			(st = LayOutTree(a, tr, err)) != CORE_OK)
			return st;
		f->bytes += sizeof(ForestNode) * (size_t) tr->n_nodes + sizeof(double) * vw * (size_t) tr->n_leaves;
		if (tr->cover)
			f->bytes += sizeof(double) * (size_t) tr->n_nodes;
		if (compact && !TreeFitsCompact(f, tr))
			compact = false;
		/* one- and two-value leaves carry their value inline (see forest_predict) */
		if (vw <= 2)
			for (int32 i = 0; i < tr->n_nodes; i++)
				if (tr->nodes[i].child == 0)
					tr->nodes[i].threshold = tr->values[(int64) tr->nodes[i].info * vw + (vw - 1)];
	}
	if ((st = payload_end(r, err)) != CORE_OK)
		return st;
	if (compact && (st = MakeCompact(a, f, err)) != CORE_OK)
		return st;
	*out = f;
	return CORE_OK;
}
