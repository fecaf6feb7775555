/*
 * mlp_core.h
 *	  A small feed-forward network (softmax or linear output) on plain C
 *	  arrays and OpenBLAS: training with mini-batches, prediction, loading.
 *	  Plain C (core.h): errors returned, memory from the caller's allocator,
 *	  so it runs in the unit tests and under libFuzzer without a server.
 */
#ifndef MEDIA_RECO_MLP_CORE_H
#define MEDIA_RECO_MLP_CORE_H

#include "core.h"

#define MLP_MAX_LAYERS	8
#define MLP_MAX_WIDTH	4096
#define MLP_MAX_CLASSES 10000
#define MLP_MAX_INPUTS	100000
#define MLP_MAX_LEVELS	1000		/* categories one-hot encoded per input */

typedef enum MlpActivation
{
	MLP_RELU = 0,
	MLP_TANH = 1,
	MLP_LOGISTIC = 2
} MlpActivation;

typedef struct MlpParams
{
	bool		regression;
	int32		n_hidden;
	int32		hidden[MLP_MAX_LAYERS];
	MlpActivation activation;
	bool		adam;			/* else SGD with momentum */
	double		learning_rate;
	double		momentum;
	int32		batch_size;
	int32		epochs;
	double		validation_fraction;	/* 0: no early stopping */
	int32		patience;
	double		tol;
	double		l2;
	uint64		seed;

	/*
	 * Work between two interrupt polls: multiply-adds per BLAS call (a
	 * bigger product is computed in slices of output rows) and elements per
	 * slice of an element-wise loop.  0 (what the SQL glue passes): the
	 * default, about a tenth of a second.  A test sets it small to check
	 * that slicing leaves the model bytes unchanged.
	 */
	int64		work_slice;
} MlpParams;

/* a loaded network */
typedef struct Mlp
{
	bool		regression;
	MlpActivation activation;
	int32		n_in;			/* raw features */
	int32		n_classes;		/* 0 for regression */
	int32		n_layers;		/* weight layers */
	int32		sizes[MLP_MAX_LAYERS + 2];	/* sizes[0] = expanded inputs */
	int32	   *levels;			/* [n_in]: 0 numeric, else one-hot width */
	double	   *mean;			/* [n_in] */
	double	   *scale;			/* [n_in] 1 / std */
	double	   *classes;		/* [n_classes] */
	double	   *W[MLP_MAX_LAYERS + 1];	/* sizes[l] x sizes[l+1], row-major */
	double	   *b[MLP_MAX_LAYERS + 1];
	double	   *work;			/* scratch for one forward pass */
} Mlp;

typedef struct MlpTrainInfo
{
	int32		epochs;
	double		train_loss;
	double		validation_score;	/* accuracy, or R² for regression; NaN without validation */
	int32		n_classes;
	double	   *classes;
} MlpTrainInfo;

/*
 * Train a network on x (n_rows x n_in, row-major, NaN = missing) and y, with
 * levels[j] > 0 marking a categorical input of that many codes, and append
 * the model (envelope and payload) to *out.  Fills *info (info->classes from
 * a).  All memory from a, budgeted against mem_limit (CORE_LIMIT beyond it);
 * scratch is released before returning, the rest is the allocator's to free
 * on error.  Main thread only: polls hooks at least every work_slice.
 */
extern CoreStatus mlp_core_train(const CoreAlloc *a, const CoreInterrupts *hooks,
								 int64 n_rows, int32 n_in, const double *x, const double *y,
								 const int32 *levels, const MlpParams *p, size_t mem_limit,
								 CoreBuf *out, MlpTrainInfo *info, CoreError *err);

/*
 * Parse and validate a network payload (after model_envelope_open) into
 * *out, every array from a.  Untrusted bytes: any inconsistency is
 * CORE_CORRUPT "invalid media_reco model" with a detail.  Main thread only
 * (allocates); the loaded Mlp is read-only afterwards except its scratch.
 */
extern CoreStatus mlp_core_load(const CoreAlloc *a, CoreReader *r, Mlp **out, CoreError *err);

/*
 * Class probabilities [n_classes] (a softmax that subtracts the largest
 * logit, so huge logits stay finite), or the value [1], for one row of raw
 * features x[n_in].  CORE_RANGE when the network's output is not finite.
 * No allocation; uses m->work, so one thread at a time per loaded model.
 */
extern CoreStatus mlp_core_predict(const Mlp *m, const double *x, double *out, CoreError *err);

/*
 * Integrated gradients (mlp_core.c): a workspace for `steps` Gauss-Legendre
 * nodes per piece of the path (1..MLP_IG_MAX_STEPS; CORE_INVALID
 * otherwise), memory from a, then attr[n_in] := the attribution of every raw
 * input to the softmax probability of class index cls (regression: the
 * output; cls ignored) at raw features x, from the all-zero standardised
 * input.  A relu network's path is cut where a hidden unit changes sign
 * (CORE_LIMIT beyond MLP_IG_MAX_PIECES pieces; the cut list comes from a and
 * is released).  One-hot blocks are summed per raw input.  hooks (NULL:
 * none) is polled before every batch of IG_CHUNK path points.  OpenBLAS:
 * main thread only.
 */
#define MLP_IG_MAX_STEPS 4096
#define MLP_IG_MAX_PIECES (1 << 20)

typedef struct MlpIg
{
	int32		steps;
	int32		pieces;			/* of the last call's path */
	double	   *node;			/* [steps] nodes on [0, 1] */
	double	   *weight;			/* [steps] */
	double	   *alpha;			/* [IG_CHUNK] a batch of path points */
	double	   *w;				/* [IG_CHUNK] their weights */
	double	   *acts[MLP_MAX_LAYERS + 2];	/* [IG_CHUNK * sizes[l]] */
	double	   *g,
			   *g2;				/* [IG_CHUNK * max width] */
	double	   *z,
			   *gsum,
			   *g1;				/* [sizes[0]] */
} MlpIg;

extern CoreStatus mlp_core_ig_prepare(const CoreAlloc *a, const Mlp *m, int32 steps, MlpIg **out,
									  CoreError *err);
extern CoreStatus mlp_core_integrated_gradients(const CoreAlloc *a, const CoreInterrupts *hooks,
												const Mlp *m, MlpIg *ig, const double *x,
												int32 cls, double *attr, CoreError *err);

/*
 * The raising forms for the SQL glue (defined in mlp_pg.c, server only):
 * memory in CurrentMemoryContext, errors ereported with their SQLSTATE.
 */
extern bytea *mlp_train(int64 n_rows, int32 n_in, const double *x, const double *y,
						const int32 *levels, const MlpParams *p, size_t mem_limit,
						MlpTrainInfo *info);
extern Mlp *mlp_load(CoreReader *r);
/* class probabilities [n_classes], or the value [1] */
extern void mlp_predict(const Mlp *m, const double *x, double *out);

#endif
