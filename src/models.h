/*
 * models.h
 *	  Models of every kind: the registry of named models (model_registry.c)
 *	  and prediction (predict.c).  Training rows: training.h.
 */
#ifndef MEDIA_RECO_MODELS_H
#define MEDIA_RECO_MODELS_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/jsonb.h"

#include "inputs.h"
#include "forest_core.h"
#include "mlp_core.h"
#include "model_blob_pg.h"
#include "training.h"

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
	/* explain.c: built on the first explanation, in cxt */
	struct ShapForest *shap;
	struct MlpIg *ig;
} LoadedModel;

/*
 * One model of a call site's cache (model_site_for_call): the model, its
 * prediction buffers and the mapping of a row type's columns to its inputs.
 */
typedef struct SiteModel
{
	char		name[NAMEDATALEN];
	LoadedModel *model;			/* NULL: a free slot */
	MemoryContext cxt;			/* scratch, xbuf; reset when the slot is reused */
	double	   *scratch;		/* [max(n_classes, 1)] */
	double	   *xbuf;			/* [n_features] */
	/* row prediction: the row type (and its current layout) the mapping below was built for */
	MemoryContext rowcxt;		/* the mapping; reset when it is rebuilt */
	Oid			rowtype;
	int32		rowtypmod;
	uint64		rowid;
	int			natts;
	AttrNumber *attnum;			/* per model input; NULL: not built */
	Oid		   *atttype;
	Datum	   *values;
	bool	   *nulls;
} SiteModel;


/* --- predict.c ------------------------------------------------------------ */

/*
 * Validate a model value (22P03 on any inconsistency) and load it into the
 * current memory context, which the caller owns (m->cxt records it).
 * Main thread only.
 */
extern LoadedModel *model_load_blob(bytea *blob);

/*
 * The class probabilities [n_classes] (classification) or the value [1]
 * (regression) of m for features x[n_features] into out.  No allocation;
 * safe on any thread for a model nobody frees meanwhile.
 */
extern void model_predict_raw(const LoadedModel *m, const double *x, double *out);

/*
 * The predicted class (ties to the smaller) or value of m for x;
 * scratch[max(n_classes, 1)] is the caller's.  No allocation.
 */
extern double model_predict_value(const LoadedModel *m, const double *x, double *scratch);

/*
 * The features of argument argno (a float8[]) into buf, checked against
 * m's feature count (22023), or those of a row: m's inputs matched to the
 * row's columns by name (42703 for a missing column, 42804 for another
 * kind), into sm->xbuf, the mapping kept per row type in the site.
 */
extern const double *model_arg_features(FunctionCallInfo fcinfo, int argno, const LoadedModel *m,
										double *buf);
extern const double *model_row_features(SiteModel *sm, HeapTupleHeader th);

/* --- model_registry.c ------------------------------------------------------ */

/*
 * The model stored under `name`, loaded at most once per row version and
 * kept in CacheMemoryContext until its row changes; 42704 when unknown.
 * Reads through SPI (connects itself), so the caller's privileges and row-
 * level security apply.  The pointer is valid until the next registry call.
 */
extern LoadedModel *model_by_name(const char *name);

/*
 * The call site's cached entry for the model named by the call's first
 * argument (text, not NULL): looked up once per snapshot, not once per
 * call, up to 4 models per site, buffers in the site's memory (fn_mcxt).
 */
extern SiteModel *model_site_for_call(FunctionCallInfo fcinfo);

/* model_site_for_call's model alone */
extern LoadedModel *model_for_call(FunctionCallInfo fcinfo);

/* 22023 unless 1 to MODEL_NAME_MAX bytes */
extern void model_check_name(const char *name);

/*
 * Insert or replace the row of `name` (caller connected to SPI) with the
 * shape's features and classes and the given metadata and bytes, and evict
 * this backend's cached copy.  Allocates in the current memory context.
 */
extern void model_store(const char *name, const char *algorithm, bool regression,
						const LoadedModel *shape, char **feature_names, Jsonb *inputs,
						Jsonb *options, Jsonb *metrics, const char *label, const char *source,
						bytea *blob);

#endif
