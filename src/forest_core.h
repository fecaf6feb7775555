/*
 * forest_core.h
 *	  Random forests on plain C arrays: training, prediction, (de)serialisation.
 *
 * No fmgr or SPI here: the glue (forest.c, models.c) hands over a row-major
 * feature matrix and the labels, and gets model bytes back; prediction runs
 * on a Forest loaded (and fully validated) from those bytes.
 */
#ifndef MEDIA_RECO_FOREST_CORE_H
#define MEDIA_RECO_FOREST_CORE_H

#include "postgres.h"

#include "parallel.h"

#define FOREST_MAX_TREES	100000
#define FOREST_MAX_CLASSES	10000
#define FOREST_MAX_FEATURES 100000

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
	double	   *tree_scratch;	/* [n_trees * value_width], compact prediction */
	Size		bytes;			/* memory held by the loaded forest */
} Forest;

typedef struct ForestTrainInfo
{
	int64		rows;
	int32		n_classes;
	double		oob_score;		/* accuracy or R²; NaN without out-of-bag rows */
	Size		memory;			/* peak bytes of the training */
	int64		nodes;
	double	   *classes;		/* [n_classes], ascending */
} ForestTrainInfo;

/* Resolve the features tried per split for n_features inputs; ereports on a bad count. */
extern int32 forest_mtry(const ForestParams *p, int32 n_features);

/*
 * Train on x (row-major, n_rows x n_features, NaN = missing) and y.  The
 * result does not depend on the order of the rows or on nthreads.
 */
extern bytea *forest_train(int64 n_rows, int32 n_features, const double *x, const double *y,
						   const ForestParams *p, int nthreads, Size mem_limit,
						   const SimInterruptHooks *hooks, ForestTrainInfo *info);

/* Load model bytes (the payload after the envelope), validating everything. */
struct CoreReader;
extern Forest *forest_load(struct CoreReader *r);

/* out: class probabilities [n_classes], or the regression value [1] */
extern void forest_predict(const Forest *f, const double *x, double *out);
/* the predicted class (ties to the smaller class) or regression value */
extern double forest_predict_value(const Forest *f, const double *x, double *scratch);

#endif
