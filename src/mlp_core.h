/*
 * mlp_core.h
 *	  A small feed-forward network (softmax or linear output) on plain C
 *	  arrays and OpenBLAS: training with mini-batches, prediction, loading.
 */
#ifndef MEDIA_RECO_MLP_CORE_H
#define MEDIA_RECO_MLP_CORE_H

#include "postgres.h"

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

struct CoreReader;
extern bytea *mlp_train(int64 n_rows, int32 n_in, const double *x, const double *y,
						const int32 *levels, const MlpParams *p, Size mem_limit,
						MlpTrainInfo *info);
extern Mlp *mlp_load(struct CoreReader *r);
/* class probabilities [n_classes], or the value [1] */
extern void mlp_predict(const Mlp *m, const double *x, double *out);

#endif
