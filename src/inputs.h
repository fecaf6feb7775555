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
 */
#ifndef MEDIA_RECO_INPUTS_H
#define MEDIA_RECO_INPUTS_H

#include "postgres.h"
#include "access/tupdesc.h"
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

#define MAX_CATEGORIES 1000000

extern bool input_kind_for_type(Oid typid, InputKind *kind);
extern const char *input_kind_name(InputKind kind);
extern void inputs_layout(ModelInputs *mi);
extern void input_encode(ModelInput *in, Datum d, bool isnull, Oid typid, double *out,
						 bool training);
extern void inputs_finish_training(ModelInputs *mi, double *x, int64 n_rows);
extern Jsonb *inputs_to_jsonb(const ModelInputs *mi);
extern ModelInputs *inputs_from_jsonb(Jsonb *j, int32 n_features);
extern char **inputs_feature_names(const ModelInputs *mi);

#endif
