/*
 * treeshap_core.c
 *	  Path-dependent TreeSHAP (Lundberg et al. 2018, Algorithm 2) over a
 *	  loaded forest (see treeshap_core.h for the definition it computes).
 *
 * One walk per tree visits every node once.  Along the way it keeps the
 * "unique path": the distinct features split on between the root and the
 * node, each with the fraction of the all-rows expectation that flows
 * through (zero_fraction: the product of cover ratios; one_fraction: 1 when
 * x itself takes the branch, else 0), and the permutation weights of every
 * subset size (pweight).  Extending the path by one feature is O(D), so is
 * undoing it (unwind, when a feature is split on again lower down); at a
 * leaf every feature of the path gets its Shapley weight (unwound sum, O(D)
 * each), so a tree costs O(L·D²).  The walk is iterative with an explicit
 * frame stack, not recursive: a tree of depth 10,000 (max_depth allows it)
 * must not overflow the C stack.  Each frame's path is a slice of one
 * buffer, after its parent's, as in the reference implementation (a child
 * copies its parent's path and extends it; the parent's stays intact for the
 * other child), so the buffer needs Σ over the depth of (unique depth + 2)
 * elements, and unique depth is at most min(depth, features) + 1.
 *
 * Covers are the training rows' weights per node (forest_core.c:
 * TreeCovers), a parent's exactly the sum of its children's, so at every
 * split the children's weights cover/cover(parent) sum to 1.
 */
#include "core.h"

#include <math.h>
#include <string.h>

#include "treeshap_core.h"

/* ---------------------------------------------------------------------------
 * Building the TreeSHAP layout from a loaded forest
 * ------------------------------------------------------------------------- */

/* the laid-out 16-byte nodes: index for index */
static void
FromWide(const Forest *f, const ForestTree *tr, ShapNode *out)
{
	for (int32 i = 0; i < tr->n_nodes; i++)
	{
		const ForestNode *nd = &tr->nodes[i];
		ShapNode   *s = &out[i];

		s->cover = tr->cover[i];
		if (nd->child == 0)
		{
			s->left = s->right = -1;
			s->threshold = f->value_width <= 2 ? nd->threshold : 0;
			s->feature = (int32) nd->info;
		}
		else
		{
			s->left = (int32) nd->child;
			s->right = (int32) nd->child + 1;
			s->feature = (int32) (nd->info & FOREST_FEATURE_MASK);
			s->missing_left = (nd->info & FOREST_MISSING_LEFT) != 0;
			s->threshold = nd->threshold;
		}
	}
}

/* the 8-byte nodes: a node is a leaf by its parent's flags, so walk from the root */
static void
FromCompact(const Forest *f, const ForestTree *tr, ShapNode *out, int32 *stack)
{
	int32		sp = 0;

	for (int32 i = 0; i < tr->n_nodes; i++)
	{
		out[i].left = out[i].right = -1;	/* unreachable slots: leaves of value 0 */
		out[i].threshold = 0;
		out[i].feature = 0;
		out[i].cover = tr->cover[i];
	}
	if (tr->root_is_leaf)
	{
		out[0].threshold = f->value_width <= 2 ? tr->cnodes[0].value : 0;
		out[0].feature = f->value_width <= 2 ? 0 : (int32) tr->cnodes[0].leaf;
		return;
	}
	stack[sp++] = 0;
	while (sp > 0)
	{
		int32		i = stack[--sp];
		uint32		p = tr->cnodes[i].split.packed;
		int32		kid = (int32) (p & COMPACT_CHILD_MASK);

		out[i].left = kid;
		out[i].right = kid + 1;
		out[i].feature = (int32) ((p >> COMPACT_FEATURE_SHIFT) & (COMPACT_MAX_FEATURES - 1));
		out[i].missing_left = (p & COMPACT_MISSING_LEFT) != 0;
		out[i].threshold = (double) tr->cnodes[i].split.threshold;
		for (int32 k = 0; k < 2; k++)
		{
			if ((p >> (29 + k)) & 1)
			{
				out[kid + k].threshold = f->value_width <= 2 ? tr->cnodes[kid + k].value : 0;
				out[kid + k].feature = f->value_width <= 2 ? 0 : (int32) tr->cnodes[kid + k].leaf;
			}
			else
				stack[sp++] = kid + k;
		}
	}
}

CoreStatus
treeshap_build(const CoreAlloc *a, const Forest *f, ShapForest **out, CoreError *err)
{
	ShapForest *sf;
	int32		maxn = 1;
	int32	   *stack;
	size_t		ud_max;

	*out = NULL;
	if (f->payload_version < 1)
		return core_error(err, CORE_INVALID, "the forest stores no node covers");
	if ((sf = core_array(a, 1, sizeof(ShapForest), true, err)) == NULL ||
		(sf->trees = core_array(a, f->n_trees, sizeof(ShapTree), true, err)) == NULL)
		return err->status;
	sf->n_trees = f->n_trees;
	sf->n_features = f->n_features;
	sf->value_width = f->value_width;
	sf->bytes = sizeof(ShapForest) + sizeof(ShapTree) * (size_t) f->n_trees;
	for (int32 t = 0; t < f->n_trees; t++)
		maxn = Max(maxn, f->trees[t].n_nodes);
	if ((stack = core_array(a, maxn, sizeof(int32), false, err)) == NULL)
		return err->status;
	for (int32 t = 0; t < f->n_trees; t++)
	{
		const ForestTree *tr = &f->trees[t];
		ShapTree   *st = &sf->trees[t];

		st->n_nodes = tr->n_nodes;
		st->depth = tr->depth;
		st->values = tr->values;
		if ((st->nodes = core_array(a, tr->n_nodes, sizeof(ShapNode), true, err)) == NULL)
			return err->status;
		if (f->compact)
			FromCompact(f, tr, st->nodes, stack);
		else
			FromWide(f, tr, st->nodes);
		sf->max_depth = Max(sf->max_depth, tr->depth);
		sf->bytes += sizeof(ShapNode) * (size_t) tr->n_nodes;
	}
	core_release(a, stack);

	/* Σ over the levels of (unique depth + 2), unique depth <= min(depth, features) + 1 */
	ud_max = (size_t) Min(sf->max_depth, f->n_features) + 3;
	if ((size_t) sf->max_depth + 2 > CORE_MAX_ALLOC / sizeof(ShapPathEl) / ud_max)
		return core_error(err, CORE_LIMIT, "the forest's trees are too deep to explain");
	sf->path_len = ((size_t) sf->max_depth + 2) * ud_max;
	if ((sf->path = core_array(a, sf->path_len, sizeof(ShapPathEl), true, err)) == NULL ||
		(sf->frames = core_array(a, (size_t) sf->max_depth + 2, sizeof(ShapFrame), true, err)) == NULL)
		return err->status;
	sf->bytes += sizeof(ShapPathEl) * sf->path_len + sizeof(ShapFrame) * ((size_t) sf->max_depth + 2);
	*out = sf;
	return CORE_OK;
}

double
treeshap_leaf_value(const ShapForest *sf, const ShapTree *tr, const ShapNode *nd, int32 cls)
{
	if (sf->value_width == 1)
		return nd->threshold;
	if (sf->value_width == 2)
		return cls == 1 ? nd->threshold : 1.0 - nd->threshold;	/* as forest_predict's class 0 */
	return tr->values[(int64) nd->feature * sf->value_width + cls];
}

/* ---------------------------------------------------------------------------
 * The unique path
 * ------------------------------------------------------------------------- */

static void
ExtendPath(ShapPathEl *path, int32 ud, double zf, double of, int32 feature)
{
	path[ud].feature = feature;
	path[ud].zero_fraction = zf;
	path[ud].one_fraction = of;
	path[ud].pweight = ud == 0 ? 1.0 : 0.0;
	for (int32 i = ud - 1; i >= 0; i--)
	{
		path[i + 1].pweight += of * path[i].pweight * (i + 1) / (double) (ud + 1);
		path[i].pweight = zf * path[i].pweight * (ud - i) / (double) (ud + 1);
	}
}

/* undo the extension by path element k (its feature is split on again) */
static void
UnwindPath(ShapPathEl *path, int32 ud, int32 k)
{
	double		of = path[k].one_fraction,
				zf = path[k].zero_fraction,
				next = path[ud].pweight;

	for (int32 i = ud - 1; i >= 0; i--)
	{
		if (of != 0)
		{
			double		tmp = path[i].pweight;

			path[i].pweight = next * (ud + 1) / ((i + 1) * of);
			next = tmp - path[i].pweight * zf * (ud - i) / (double) (ud + 1);
		}
		else
			path[i].pweight = path[i].pweight * (ud + 1) / (zf * (ud - i));
	}
	for (int32 i = k; i < ud; i++)
	{
		path[i].feature = path[i + 1].feature;
		path[i].zero_fraction = path[i + 1].zero_fraction;
		path[i].one_fraction = path[i + 1].one_fraction;
	}
}

/* the total permutation weight of the path with element k taken out */
static double
UnwoundSum(const ShapPathEl *path, int32 ud, int32 k)
{
	double		of = path[k].one_fraction,
				zf = path[k].zero_fraction,
				next = path[ud].pweight,
				total = 0;

	for (int32 i = ud - 1; i >= 0; i--)
	{
		if (of != 0)
		{
			double		tmp = next * (ud + 1) / ((i + 1) * of);

			total += tmp;
			next = path[i].pweight - tmp * zf * ((ud - i) / (double) (ud + 1));
		}
		else
			total += (path[i].pweight / zf) / ((ud - i) / (double) (ud + 1));
	}
	return total;
}

/* ---------------------------------------------------------------------------
 * The walk
 * ------------------------------------------------------------------------- */

/*
 * Visit `node` with its parent's path at parent_off (ud elements valid):
 * copy it after itself, extend it by the split that led here; at a leaf add
 * the contributions, at a split push a frame.  Returns the frames in use.
 */
static int32
Enter(ShapForest *sf, const ShapTree *tr, const double *x, int32 cls, double *phi,
	  int32 fp, int32 node, size_t parent_off, int32 ud, double zf, double of, int32 feature)
{
	size_t		off = parent_off + ud + 1;
	ShapPathEl *path = sf->path + off;
	const ShapNode *nd = &tr->nodes[node];

	if (ud > 0)
		memcpy(path, sf->path + parent_off, sizeof(ShapPathEl) * ud);
	ExtendPath(path, ud, zf, of, feature);
	if (nd->left < 0)
	{
		double		v = treeshap_leaf_value(sf, tr, nd, cls);

		for (int32 i = 1; i <= ud; i++)
			phi[path[i].feature] += UnwoundSum(path, ud, i) *
				(path[i].one_fraction - path[i].zero_fraction) * v;
		return fp;
	}
	{
		ShapFrame  *fr = &sf->frames[fp];
		double		xv = x[nd->feature];
		bool		left = isnan(xv) ? nd->missing_left : xv <= nd->threshold;
		double		in_zf = 1,
					in_of = 1;
		int32		k;

		fr->node = node;
		fr->hot = left ? nd->left : nd->right;
		fr->cold = left ? nd->right : nd->left;
		fr->split = nd->feature;
		for (k = 1; k <= ud; k++)
			if (path[k].feature == nd->feature)
				break;
		if (k <= ud)
		{
			in_zf = path[k].zero_fraction;
			in_of = path[k].one_fraction;
			UnwindPath(path, ud, k);
			ud--;
		}
		fr->hot_zf = tr->nodes[fr->hot].cover / nd->cover * in_zf;
		fr->cold_zf = tr->nodes[fr->cold].cover / nd->cover * in_zf;
		fr->in_of = in_of;
		fr->ud = ud;
		fr->off = off;
		fr->stage = 0;
		return fp + 1;
	}
}

void
treeshap_explain(ShapForest *sf, const double *x, int32 cls, double *phi,
				 const CoreInterrupts *hooks)
{
	memset(phi, 0, sizeof(double) * sf->n_features);
	for (int32 t = 0; t < sf->n_trees; t++)
	{
		const ShapTree *tr = &sf->trees[t];
		int32		fp;

		core_check_interrupts(hooks);

		fp = Enter(sf, tr, x, cls, phi, 0, 0, 0, 0, 1.0, 1.0, -1);
		while (fp > 0)
		{
			ShapFrame  *fr = &sf->frames[fp - 1];

			if (fr->stage == 0)
			{
				fr->stage = 1;
				fp = Enter(sf, tr, x, cls, phi, fp, fr->hot, fr->off, fr->ud + 1,
						   fr->hot_zf, fr->in_of, fr->split);
			}
			else if (fr->stage == 1)
			{
				fr->stage = 2;
				fp = Enter(sf, tr, x, cls, phi, fp, fr->cold, fr->off, fr->ud + 1,
						   fr->cold_zf, 0.0, fr->split);
			}
			else
				fp--;
		}
	}
	for (int32 j = 0; j < sf->n_features; j++)
		phi[j] /= sf->n_trees;
}

double
treeshap_base_value(const ShapForest *sf, int32 cls)
{
	double		sum = 0;

	for (int32 t = 0; t < sf->n_trees; t++)
	{
		const ShapTree *tr = &sf->trees[t];
		double		s = 0;

		/* the padding slot (cover 0) and unreachable nodes add nothing: only reachable leaves */
		for (int32 i = 0; i < tr->n_nodes; i++)
			if (tr->nodes[i].left < 0 && tr->nodes[i].cover > 0)
				s += treeshap_leaf_value(sf, tr, &tr->nodes[i], cls) * tr->nodes[i].cover;
		sum += s / tr->nodes[0].cover;
	}
	return sum / sf->n_trees;
}
