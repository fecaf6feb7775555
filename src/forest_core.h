/*
 * forest_core.h
 *	  Random forests on plain C arrays: training, prediction, (de)serialisation.
 *
 * Plain C (core.h): no PostgreSQL call, so training, loading and prediction
 * run in the unit tests and under libFuzzer.  The SQL glue (forest_pg.c)
 * hands over a row-major feature matrix and the labels with an allocator
 * over a memory context, turns a returned CoreError into an ereport and the
 * model bytes into a bytea; prediction runs on a Forest loaded (and fully
 * validated) from those bytes.
 */
#ifndef MEDIA_RECO_FOREST_CORE_H
#define MEDIA_RECO_FOREST_CORE_H

#include "core.h"

#define FOREST_MAX_TREES	100000
#define FOREST_MAX_CLASSES	10000
#define FOREST_MAX_FEATURES 100000

/*
 * The forest payload's own version, the second byte of its header (the
 * envelope's version is shared by every model kind and stays 1).  0: the
 * format of media_reco 0.4.0 and before, without node covers; 1 (0.5.0):
 * each tree ends with its node covers, [n_nodes] doubles.  Both load and
 * predict; explanations (TreeSHAP) need the covers.
 */
#define FOREST_PAYLOAD_VERSION 1

typedef enum ForestTask
{
	FOREST_CLASSIFICATION = 0,
	FOREST_REGRESSION = 1
} ForestTask;

typedef enum MaxFeaturesMode
{
	MAXF_DEFAULT,				/* sqrt for classification, all for regression */
	MAXF_SQRT,
	MAXF_LOG2,
	MAXF_ALL,
	MAXF_COUNT,
	MAXF_FRACTION
} MaxFeaturesMode;

typedef struct ForestParams
{
	ForestTask	task;
	int32		n_trees;
	int32		max_depth;		/* 0: unlimited */
	int32		min_samples_leaf;
	int32		min_samples_split;
	MaxFeaturesMode max_features_mode;
	double		max_features;	/* the count or fraction for those modes */
	bool		bootstrap;
	double		sample_fraction;	/* (0, 1] of the rows drawn per tree */
	bool		class_weight_balanced;
	uint64		seed;
} ForestParams;

/*
 * One node: 16 bytes.  A split node has child > its own index; its left
 * child is `child`, its right child `child + 1`; `info` holds the feature in
 * the low 31 bits and "missing values go left" in the top bit.  A leaf has
 * child == 0 and `info` is the index of its value row.
 */
typedef struct ForestNode
{
	double		threshold;		/* x <= threshold goes left */
	uint32		info;
	uint32		child;
} ForestNode;

#define FOREST_MISSING_LEFT 0x80000000U
#define FOREST_FEATURE_MASK 0x7FFFFFFFU

/*
 * The 8-byte prediction node built at load time when the model allows it.
 * A split packs its left child (21 bits), feature (8 bits), "left child is
 * a leaf", "right child is a leaf" and "missing goes left" with a float
 * threshold; a leaf is just its value (width <= 2) or its leaf number.
 */
typedef union CompactNode
{
	struct
	{
		float		threshold;
		uint32		packed;
	}			split;
	double		value;
	uint64		leaf;
} CompactNode;

#define COMPACT_CHILD_MASK		0x1FFFFFU
#define COMPACT_FEATURE_SHIFT	21
#define COMPACT_MAX_FEATURES	256
#define COMPACT_LEFT_LEAF		(1U << 29)
#define COMPACT_MISSING_LEFT	(1U << 31)

typedef struct ForestTree
{
	int32		n_nodes;
	int32		n_leaves;
	ForestNode *nodes;			/* NULL once compacted */
	double	   *values;			/* [n_leaves * value_width] */
	CompactNode *cnodes;		/* [n_nodes] when the forest is compact */
	double	   *cover;			/* [n_nodes] in laid-out order, or NULL (payload version 0) */
	int32		depth;			/* the longest root-to-leaf path, in splits */
	bool		root_is_leaf;
} ForestTree;

typedef struct Forest
{
	ForestTask	task;
	int32		n_features;
	int32		n_classes;		/* 0 for regression */
	int32		n_trees;
	int32		value_width;	/* n_classes, or 1 for regression */
	double	   *classes;		/* [n_classes], ascending */
	double	   *importance;		/* [n_features], sums to 1 (or all 0) */
	ForestTree *trees;
	bool		compact;		/* predict through cnodes */
	int32		payload_version;	/* as stored: 0 (no covers) or FOREST_PAYLOAD_VERSION */
	double	   *tree_scratch;	/* [n_trees * value_width], compact prediction */
	size_t		bytes;			/* memory held by the loaded forest */
} Forest;

typedef struct ForestTrainInfo
{
	int64		rows;
	int32		n_classes;
	double		oob_score;		/* accuracy or R²; NaN without out-of-bag rows */
	size_t		memory;			/* peak bytes of the training */
	int64		nodes;
	int64		regrown;		/* trees abandoned for an interrupt and grown again */
	double	   *classes;		/* [n_classes], ascending */
} ForestTrainInfo;

/*
 * What training needs from its caller besides the rows.  `alloc` gives all
 * main-thread memory (the model bytes, the classes, the scratch arrays); the
 * trees are grown on helper threads into malloc'd buffers charged to
 * mem_limit.  `hooks` (NULL: none) may not return from process(); then
 * `on_release` (NULL when process always returns) is how the core gets those
 * malloc'd buffers freed: it registers fn(arg) to run when alloc's memory is
 * released (the glue: a reset callback of the memory context).
 */
typedef struct ForestTrainEnv
{
	const CoreAlloc *alloc;
	const CoreInterrupts *hooks;
	void		(*on_release) (void *ctx, void (*fn) (void *arg), void *arg);
	void	   *release_ctx;
	int			nthreads;		/* threads growing trees, main included */
	size_t		mem_limit;		/* bytes: the estimate plus the trees grown */
} ForestTrainEnv;

/*
 * The features tried per split for n_features inputs, into *mtry.
 * CORE_INVALID when max_features is a count above n_features.  Pure; any
 * thread.
 */
extern CoreStatus forest_core_mtry(const ForestParams *p, int32 n_features, int32 *mtry,
								   CoreError *err);

/*
 * Train on x (row-major, n_rows x n_features, NaN = missing) and y, and
 * append the model (envelope and payload, model_blob.h) to *out.  The bytes
 * depend on neither the order of the rows, nor env->nthreads, nor the
 * interrupts processed meanwhile (env->hooks is polled inside every tree;
 * the trees under way when one is pending are grown again after it).
 * info->classes comes from env->alloc.  Errors (bad input, budget, memory)
 * are returned with the user's message; helper threads are joined and their
 * buffers freed before any return.  Main thread only; starts helper threads
 * (parallel.c).
 */
extern CoreStatus forest_core_train(int64 n_rows, int32 n_features, const double *x,
									const double *y, const ForestParams *p,
									const ForestTrainEnv *env, CoreBuf *out,
									ForestTrainInfo *info, CoreError *err);

/*
 * Load a forest from the payload r covers (after model_envelope_open),
 * validating everything, so that prediction on the result cannot go out of
 * bounds whatever the bytes.  *out and all its memory come from a; on an
 * error (CORE_CORRUPT "invalid media_reco model" with a detail, or
 * CORE_NOMEM) *out is NULL and the partial forest is left to a's owner.
 * hooks (NULL: none) is polled once per tree.  Main thread only.
 */
extern CoreStatus forest_core_load(const CoreAlloc *a, CoreReader *r, const CoreInterrupts *hooks,
								   Forest **out, CoreError *err);

/*
 * out: class probabilities [n_classes], or the regression value [1].  Reads
 * a loaded forest only: any thread, no allocation.
 */
extern void forest_predict(const Forest *f, const double *x, double *out);

/*
 * The predicted class (ties to the smaller class) or regression value;
 * scratch holds value_width doubles.  Any thread, no allocation.
 */
extern double forest_predict_value(const Forest *f, const double *x, double *scratch);

#endif
