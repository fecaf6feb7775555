/*
 * inputs.h
 *	  Table columns as model inputs: which types are accepted, how a value
 *	  becomes one or more float8 features, and the stored encoding.
 *
 * Numbers are taken as they are, booleans as 0/1, text and enum values as
 * categories (their code in the sorted list of values seen at training; a
 * value not seen then is missing), numeric arrays as one feature per
 * element.  NULL is a missing value (NaN).  The encoding is stored with the
 * model as JSON, so prediction from a row takes the raw column values.
 * A float8[] given as the features themselves (forest_fit, predict on an
 * array) is read by features_from_array, with the same finiteness check.
 */
#ifndef MEDIA_RECO_INPUTS_H
#define MEDIA_RECO_INPUTS_H

#include "postgres.h"
#include "access/tupdesc.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"

typedef enum InputKind
{
	INPUT_NUMBER,
	INPUT_BOOLEAN,
	INPUT_CATEGORY,
	INPUT_ARRAY
} InputKind;

typedef struct ModelInput
{
	char	   *column;
	InputKind	kind;
	int32		width;			/* features it expands to */
	int32		offset;			/* its first feature */
	int32		n_categories;
	char	  **categories;		/* ascending (byte order) */
	/* training only: the category dictionary in order of first appearance */
	HTAB	   *dict;
	MemoryContext dict_cxt;
	int32		dict_cap;
} ModelInput;

typedef struct ModelInputs
{
	int32		n;
	int32		n_features;
	ModelInput *in;
} ModelInputs;

/* caps of the encoder, whatever model it feeds: features per row, categories per column */
#define INPUT_MAX_FEATURES 100000
#define INPUT_MAX_CATEGORIES 1000000

/* true, with *kind, when columns of type typid (a domain: its base type) can be inputs */
extern bool input_kind_for_type(Oid typid, InputKind *kind);

/* "number", "boolean", "category" or "array" (the stored encoding's names) */
extern const char *input_kind_name(InputKind kind);

/*
 * Give each input its offset from the widths (arrays: their length) and set
 * mi->n_features; 54000 beyond INPUT_MAX_FEATURES.
 */
extern void inputs_layout(ModelInputs *mi);

/*
 * Encode one value of column type typid into out[0..in->width-1]: NaN for
 * NULL, a category's code (training: its dictionary slot, in the current
 * memory context; prediction: its code in the sorted list, unseen = NaN).
 */
extern void input_encode(ModelInput *in, Datum d, bool isnull, Oid typid, double *out,
						 bool training);

/*
 * After training reads: sort each category dictionary and rewrite the
 * codes in x[n_rows x n_features] from first-appearance to sorted order.
 * Allocates the sorted lists in the current memory context.
 */
extern void inputs_finish_training(ModelInputs *mi, double *x, int64 n_rows);

/* the stored encoding (media_reco.models.inputs), allocated in the current context */
extern Jsonb *inputs_to_jsonb(const ModelInputs *mi);

/*
 * Parse and check a stored encoding against a model of n_features
 * features (22P03 when it does not fit); allocated in the current context.
 */
extern ModelInputs *inputs_from_jsonb(Jsonb *j, int32 n_features);

/* one name per feature: the column, or column[i] for array elements */
extern char **inputs_feature_names(const ModelInputs *mi);

/* 22003 when a feature value is infinite (NULL and NaN are missing values) */
extern void check_finite_feature(double v);

/*
 * A float8[] of features (a forest_fit row, or the features argument of a
 * prediction) as doubles, NULL elements as NaN; 2202E unless one-dimensional
 * and not empty, 22003 on an infinite element.  *len := its length.
 * Returns a pointer into the array when it has no NULLs, else fills
 * buf[bufcap] (NULL when it does not fit).
 */
extern const double *features_from_array(ArrayType *a, int32 *len, double *buf, int32 bufcap);

#endif
