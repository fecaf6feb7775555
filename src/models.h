/*
 * models.h
 *	  The model registry (media_reco.models) and the prediction entry points
 *	  shared by every model kind.
 */
#ifndef MEDIA_RECO_MODELS_H
#define MEDIA_RECO_MODELS_H

#include "postgres.h"

#include "inputs.h"
#include "forest.h"
#include "forest_core.h"
#include "mlp_core.h"
#include "model_blob_pg.h"

#define MODEL_NAME_MAX (NAMEDATALEN - 1)

/* a validated model in memory, whatever its kind */
typedef struct LoadedModel
{
	ModelKind	kind;
	bool		regression;
	int32		n_features;
	int32		n_classes;		/* 0 for regression */
	const double *classes;
	const double *importance;	/* [n_features] or NULL */
	Forest	   *forest;
	Mlp		   *mlp;
	ModelInputs *inputs;		/* NULL when loaded from a bare value */
	char	  **feature_names;	/* [n_features] or NULL */
	MemoryContext cxt;
	uint64		serial;			/* unique per load in this backend */
} LoadedModel;

/* training rows read from a relation by column names */
typedef struct TrainingData
{
	MemoryContext cxt;			/* rows and category lists live here */
	ModelInputs mi;
	TrainRows	rows;
	char	   *relname;
	char	   *label;
	Oid			label_type;
} TrainingData;

extern LoadedModel *model_load_blob(bytea *blob);
extern double model_predict_value(const LoadedModel *m, const double *x, double *scratch);
extern void model_read_training(Oid relid, const char *label, ArrayType *cols, TrainingData *td);
extern void model_predict_raw(const LoadedModel *m, const double *x, double *out);
extern LoadedModel *model_by_name(const char *name);

/*
 * The model named by the call's first argument (text, not NULL), through the
 * call site's cache: looked up once per snapshot, not once per call.
 */
extern LoadedModel *model_for_call(FunctionCallInfo fcinfo);
extern void model_check_name(const char *name);
extern void model_store(const char *name, const char *algorithm, bool regression,
						const LoadedModel *shape, char **feature_names, Jsonb *inputs,
						Jsonb *options, Jsonb *metrics, const char *label, const char *source,
						bytea *blob);

#endif
