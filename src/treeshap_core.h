/*
 * treeshap_core.h
 *	  Exact per-row attributions for a loaded forest: path-dependent TreeSHAP
 *	  (Lundberg, Erion and Lee 2018, Algorithm 2), on plain C arrays.
 *
 * The explained output of tree t is its leaf value for one class (or the
 * regression value); the forest's is the mean over trees, as forest_predict
 * computes it.  For a set S of features, v(S) = E[f(x) | x_S]: at a split on
 * a feature in S the row's own branch is taken (a missing value the branch
 * the tree sends it to), at any other split both children are followed,
 * weighted by their covers (the training rows that reached them, with their
 * weights: bootstrap count times class weight, the same weights the leaf
 * values were computed from).  The contributions are the Shapley values of
 * v; they sum to f(x) - v(empty set), and v(empty set) is the base value.
 *
 * Plain C (core.h): no PostgreSQL call; the glue is explain.c.
 */
#ifndef MEDIA_RECO_TREESHAP_CORE_H
#define MEDIA_RECO_TREESHAP_CORE_H

#include "core.h"
#include "forest_core.h"

/* One node as TreeSHAP reads it. */
typedef struct ShapNode
{
	double		threshold;		/* split: x <= threshold goes left; leaf: its value (width <= 2) */
	double		cover;			/* Σ weight of the training rows that reached the node */
	int32		left;			/* -1 for a leaf */
	int32		right;
	int32		feature;		/* split: the feature; leaf: its value row (width > 2) */
	bool		missing_left;
} ShapNode;

typedef struct ShapTree
{
	int32		n_nodes;
	int32		depth;
	ShapNode   *nodes;			/* [n_nodes], the root at 0 */
	const double *values;		/* [n_leaves * value_width] (width > 2) */
} ShapTree;

typedef struct ShapPathEl
{
	int32		feature;
	double		zero_fraction;
	double		one_fraction;
	double		pweight;
} ShapPathEl;

typedef struct ShapFrame
{
	int32		node;
	int32		ud;				/* unique depth of this node's path (after an unwind) */
	size_t		off;			/* its path's first element */
	int32		stage;			/* 0: hot child next, 1: cold child next, 2: done */
	int32		hot,
				cold,
				split;
	double		hot_zf,
				cold_zf,
				in_of;
} ShapFrame;

typedef struct ShapForest
{
	int32		n_trees;
	int32		n_features;
	int32		value_width;	/* n_classes, or 1 for regression */
	int32		max_depth;
	ShapTree   *trees;
	ShapPathEl *path;			/* scratch: [path_len] */
	size_t		path_len;
	ShapFrame  *frames;			/* scratch: [max_depth + 2] */
	size_t		bytes;
} ShapForest;

/*
 * Lay a loaded forest out for TreeSHAP (all memory from a).  The forest
 * must have covers (payload version >= 1): CORE_INVALID otherwise, which
 * the glue reports with its own hint.  Main thread only.
 */
extern CoreStatus treeshap_build(const CoreAlloc *a, const Forest *f, ShapForest **out,
								 CoreError *err);

/*
 * phi[n_features] := the contributions of every feature to the output of
 * class index cls (0 for regression) at row x (NaN = missing), averaged over
 * the trees; Σ phi + treeshap_base_value = the forest's output.  Uses the
 * ShapForest's scratch: one call at a time per ShapForest.  O(T·L·D²).
 * hooks (NULL: none) is polled before every tree (a fully grown tree takes
 * milliseconds); its process may unwind: the scratch needs no cleanup.
 */
extern void treeshap_explain(ShapForest *sf, const double *x, int32 cls, double *phi,
							 const CoreInterrupts *hooks);

/* the expected output of class index cls over the training covers: v(empty set) */
extern double treeshap_base_value(const ShapForest *sf, int32 cls);

/* leaf value of class index cls of leaf node nd of a tree of sf (what predict averages) */
extern double treeshap_leaf_value(const ShapForest *sf, const ShapTree *tr, const ShapNode *nd,
								  int32 cls);

#endif
