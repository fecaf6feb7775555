/*
 * inputs.c
 *	  Encoding table columns as float8 features, and reading a float8[] of
 *	  features (see inputs.h).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

#include "inputs.h"
#include "model_blob_pg.h"

typedef struct DictEntry
{
	char	   *key;
	int32		code;
} DictEntry;

static bool
IsNumberType(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID ||
		t == FLOAT4OID || t == FLOAT8OID || t == NUMERICOID;
}

bool
input_kind_for_type(Oid typid, InputKind *kind)
{
	Oid			base = getBaseType(typid);
	Oid			elem;

	if (IsNumberType(base))
		*kind = INPUT_NUMBER;
	else if (base == BOOLOID)
		*kind = INPUT_BOOLEAN;
	else if (base == TEXTOID || base == VARCHAROID || base == BPCHAROID ||
			 base == NAMEOID || type_is_enum(base))
		*kind = INPUT_CATEGORY;
	else if ((elem = get_element_type(base)) != InvalidOid && IsNumberType(getBaseType(elem)))
		*kind = INPUT_ARRAY;
	else
		return false;
	return true;
}

const char *
input_kind_name(InputKind kind)
{
	switch (kind)
	{
		case INPUT_NUMBER:
			return "number";
		case INPUT_BOOLEAN:
			return "boolean";
		case INPUT_CATEGORY:
			return "category";
		case INPUT_ARRAY:
			return "array";
	}
	return "unknown";
}

/* offsets and the feature count, from the widths */
void
inputs_layout(ModelInputs *mi)
{
	int64		off = 0;

	for (int32 i = 0; i < mi->n; i++)
	{
		mi->in[i].offset = (int32) off;
		off += mi->in[i].width;
		if (off > INPUT_MAX_FEATURES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the feature columns expand to more than %d features", INPUT_MAX_FEATURES)));
	}
	mi->n_features = (int32) off;
}

static double
NumberValue(Datum d, Oid typid)
{
	double		v;

	/* the common types need no catalog lookup (getBaseType is one per call) */
	if (typid != INT2OID && typid != INT4OID && typid != INT8OID && typid != FLOAT4OID &&
		typid != FLOAT8OID && typid != NUMERICOID)
		typid = getBaseType(typid);
	switch (typid)
	{
		case INT2OID:
			v = DatumGetInt16(d);
			break;
		case INT4OID:
			v = DatumGetInt32(d);
			break;
		case INT8OID:
			v = (double) DatumGetInt64(d);
			break;
		case FLOAT4OID:
			v = DatumGetFloat4(d);
			break;
		case FLOAT8OID:
			v = DatumGetFloat8(d);
			break;
		case NUMERICOID:
			v = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("a number was expected, got type %s", format_type_be(typid))));
	}
	check_finite_feature(v);
	return v;
}

static char *
CategoryString(Datum d, Oid typid)
{
	Oid			base = getBaseType(typid);

	if (base == NAMEOID)
		return pstrdup(NameStr(*DatumGetName(d)));
	if (base == BPCHAROID)
	{
		/* char(n): trailing blanks are padding, not part of the value ('ab   ' = 'ab'::text) */
		char	   *s = TextDatumGetCString(d);
		int			len = strlen(s);

		while (len > 0 && s[len - 1] == ' ')
			len--;
		s[len] = '\0';
		return s;
	}
	if (base == TEXTOID || base == VARCHAROID)
		return TextDatumGetCString(d);
	if (type_is_enum(base))
	{
		HeapTuple	tup = SearchSysCache1(ENUMOID, d);
		char	   *s;

		if (!HeapTupleIsValid(tup))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid internal value for enum: %u", DatumGetObjectId(d))));
		s = pstrdup(NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel));
		ReleaseSysCache(tup);
		return s;
	}
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("a text or enum value was expected, got type %s", format_type_be(typid))));
	return NULL;
}

static uint32
DictHash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
DictMatch(const void *a, const void *b, Size keysize)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int32
DictCode(ModelInput *in, char *s)
{
	DictEntry  *e;
	bool		found;

	if (in->dict == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(DictEntry);
		ctl.hash = DictHash;
		ctl.match = DictMatch;
		ctl.hcxt = CurrentMemoryContext;
		in->dict_cxt = CurrentMemoryContext;
		in->dict = hash_create("media_reco categories", 64, &ctl,
							   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	e = hash_search(in->dict, &s, HASH_ENTER, &found);
	if (!found)
	{
		int32		code = (int32) hash_get_num_entries(in->dict) - 1;

		if (code >= INPUT_MAX_CATEGORIES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("column \"%s\" has more than %d distinct values", in->column, INPUT_MAX_CATEGORIES),
					 errhint("Leave identifier-like columns out of feature_cols.")));
		e->key = MemoryContextStrdup(in->dict_cxt, s);
		e->code = code;
		if (code >= in->dict_cap)
		{
			int32		cap = Max(in->dict_cap * 2, 16);

			in->categories = in->categories
				? repalloc(in->categories, sizeof(char *) * cap)
				: MemoryContextAlloc(in->dict_cxt, sizeof(char *) * cap);
			in->dict_cap = cap;
		}
		in->categories[code] = e->key;
		in->n_categories = code + 1;
	}
	return e->code;
}

static int
CmpStr(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static double
CategoryCode(const ModelInput *in, const char *s)
{
	char	  **hit = bsearch(&s, in->categories, in->n_categories, sizeof(char *), CmpStr);

	return hit ? (double) (hit - in->categories) : NAN;
}

/*
 * Encode one column value into out[0 .. width-1].  While training, arrays
 * fix their width on the first non-NULL value (width 0 until then) and
 * categories are numbered in order of appearance (renumbered at the end).
 */
void
input_encode(ModelInput *in, Datum d, bool isnull, Oid typid, double *out, bool training)
{
	if (isnull)
	{
		for (int32 i = 0; i < in->width; i++)
			out[i] = NAN;
		return;
	}
	switch (in->kind)
	{
		case INPUT_NUMBER:
			out[0] = NumberValue(d, typid);
			break;
		case INPUT_BOOLEAN:
			if (getBaseType(typid) != BOOLOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" must be boolean, got type %s",
								in->column, format_type_be(typid))));
			out[0] = DatumGetBool(d) ? 1.0 : 0.0;
			break;
		case INPUT_CATEGORY:
			{
				char	   *s = CategoryString(d, typid);

				out[0] = training ? (double) DictCode(in, s) : CategoryCode(in, s);
				pfree(s);
				break;
			}
		case INPUT_ARRAY:
			{
				ArrayType  *a = DatumGetArrayTypeP(d);
				Oid			elem = ARR_ELEMTYPE(a);

				/* float8[] without NULLs: read the elements in place */
				if (elem == FLOAT8OID && ARR_NDIM(a) == 1 && !ARR_HASNULL(a) &&
					ARR_DIMS(a)[0] == in->width)
				{
					const double *src = (const double *) ARR_DATA_PTR(a);

					for (int32 i = 0; i < in->width; i++)
					{
						if (unlikely(isinf(src[i])))
							check_finite_feature(src[i]);
						out[i] = src[i];
					}
					break;
				}
			}
			{
				ArrayType  *a = DatumGetArrayTypeP(d);
				Oid			elem = ARR_ELEMTYPE(a);
				int16		typlen;
				bool		typbyval;
				char		typalign;
				Datum	   *elems;
				bool	   *nulls;
				int			ne;

				if (ARR_NDIM(a) > 1)
					ereport(ERROR,
							(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
							 errmsg("column \"%s\" must hold one-dimensional arrays", in->column)));
				get_typlenbyvalalign(elem, &typlen, &typbyval, &typalign);
				deconstruct_array(a, elem, typlen, typbyval, typalign, &elems, &nulls, &ne);
				if (ne != in->width)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("column \"%s\" holds arrays of different lengths: %d and %d",
									in->column, in->width, ne),
							 errhint("Every row must give the same number of elements; use NULL elements for missing values.")));
				for (int i = 0; i < ne; i++)
					out[i] = nulls[i] ? NAN : NumberValue(elems[i], elem);
				pfree(elems);
				pfree(nulls);
				break;
			}
	}
}

/* renumber categories in sorted order and rewrite the training matrix */
void
inputs_finish_training(ModelInputs *mi, double *x, int64 n_rows)
{
	for (int32 i = 0; i < mi->n; i++)
	{
		ModelInput *in = &mi->in[i];
		int32	   *remap;
		char	  **sorted;

		if (in->kind != INPUT_CATEGORY)
			continue;
		if (in->n_categories == 0)
		{
			in->categories = NULL;
			continue;
		}
		sorted = palloc(sizeof(char *) * in->n_categories);
		memcpy(sorted, in->categories, sizeof(char *) * in->n_categories);
		qsort(sorted, in->n_categories, sizeof(char *), CmpStr);
		remap = palloc(sizeof(int32) * in->n_categories);
		for (int32 c = 0; c < in->n_categories; c++)
		{
			DictEntry  *e = hash_search(in->dict, &sorted[c], HASH_FIND, NULL);

			remap[e->code] = c;
		}
		for (int64 r = 0; r < n_rows; r++)
		{
			double	   *v = &x[r * mi->n_features + in->offset];

			if (!isnan(*v))
				*v = remap[(int32) *v];
		}
		in->categories = sorted;
		pfree(remap);
	}
}

Jsonb *
inputs_to_jsonb(const ModelInputs *mi)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '[');
	for (int32 i = 0; i < mi->n; i++)
	{
		const ModelInput *in = &mi->in[i];

		if (i > 0)
			appendStringInfoString(&s, ", ");
		appendStringInfoString(&s, "{\"column\": ");
		escape_json(&s, in->column);
		appendStringInfo(&s, ", \"type\": \"%s\"", input_kind_name(in->kind));
		if (in->kind == INPUT_ARRAY)
			appendStringInfo(&s, ", \"length\": %d", in->width);
		if (in->kind == INPUT_CATEGORY)
		{
			appendStringInfoString(&s, ", \"categories\": [");
			for (int32 c = 0; c < in->n_categories; c++)
			{
				if (c > 0)
					appendStringInfoString(&s, ", ");
				escape_json(&s, in->categories[c]);
			}
			appendStringInfoChar(&s, ']');
		}
		appendStringInfoChar(&s, '}');
	}
	appendStringInfoChar(&s, ']');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

static void
BadInputs(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid input encoding in media_reco.models"),
			 errdetail("%s", detail)));
}

static bool
GetKey(JsonbContainer *obj, const char *key, JsonbValue *out)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), out) != NULL;
}

/* parse and check the stored encoding against the model's feature count */
ModelInputs *
inputs_from_jsonb(Jsonb *j, int32 n_features)
{
	ModelInputs *mi = palloc0(sizeof(ModelInputs));
	int32		n;

	if (!JB_ROOT_IS_ARRAY(j) || JB_ROOT_IS_SCALAR(j))
		BadInputs("The inputs column is not a JSON array.");
	n = JB_ROOT_COUNT(j);
	mi->n = n;
	mi->in = palloc0(sizeof(ModelInput) * Max(n, 1));
	for (int32 i = 0; i < n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&j->root, i);
		ModelInput *in = &mi->in[i];
		JsonbValue	v;
		char	   *type;

		if (elem == NULL || elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
			BadInputs("An input is not a JSON object.");
		if (!GetKey(elem->val.binary.data, "column", &v) || v.type != jbvString)
			BadInputs("An input has no column name.");
		in->column = pnstrdup(v.val.string.val, v.val.string.len);
		if (!GetKey(elem->val.binary.data, "type", &v) || v.type != jbvString)
			BadInputs("An input has no type.");
		type = pnstrdup(v.val.string.val, v.val.string.len);
		in->width = 1;
		if (strcmp(type, "number") == 0)
			in->kind = INPUT_NUMBER;
		else if (strcmp(type, "boolean") == 0)
			in->kind = INPUT_BOOLEAN;
		else if (strcmp(type, "category") == 0)
		{
			JsonbContainer *cats;

			in->kind = INPUT_CATEGORY;
			if (!GetKey(elem->val.binary.data, "categories", &v) || v.type != jbvBinary ||
				!JsonContainerIsArray(v.val.binary.data))
				BadInputs("A category input has no category list.");
			cats = v.val.binary.data;
			in->n_categories = JsonContainerSize(cats);
			in->categories = palloc(sizeof(char *) * Max(in->n_categories, 1));
			for (int32 c = 0; c < in->n_categories; c++)
			{
				JsonbValue *cv = getIthJsonbValueFromContainer(cats, c);

				if (cv == NULL || cv->type != jbvString)
					BadInputs("A category is not a string.");
				in->categories[c] = pnstrdup(cv->val.string.val, cv->val.string.len);
				if (c > 0 && strcmp(in->categories[c - 1], in->categories[c]) >= 0)
					BadInputs("A category list is not sorted and distinct.");
			}
		}
		else if (strcmp(type, "array") == 0)
		{
			in->kind = INPUT_ARRAY;
			if (!GetKey(elem->val.binary.data, "length", &v) || v.type != jbvNumeric)
				BadInputs("An array input has no length.");
			{
				double		len = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
																	 NumericGetDatum(v.val.numeric)));

				if (!(len >= 1 && len <= INPUT_MAX_FEATURES) || len != floor(len))
					BadInputs("An array input has an invalid length.");
				in->width = (int32) len;
			}
		}
		else
			BadInputs("An input has an unknown type.");
	}
	inputs_layout(mi);
	if (mi->n_features != n_features)
		BadInputs(psprintf("The inputs expand to %d features but the model takes %d.",
						   mi->n_features, n_features));
	return mi;
}

char	  **
inputs_feature_names(const ModelInputs *mi)
{
	char	  **names = palloc(sizeof(char *) * Max(mi->n_features, 1));

	for (int32 i = 0; i < mi->n; i++)
	{
		const ModelInput *in = &mi->in[i];

		if (in->kind == INPUT_ARRAY)
			for (int32 e = 0; e < in->width; e++)
				names[in->offset + e] = psprintf("%s[%d]", in->column, e + 1);
		else
			names[in->offset] = pstrdup(in->column);
	}
	return names;
}

/* ---------------------------------------------------------------------------
 * Feature values
 * ------------------------------------------------------------------------- */

void
check_finite_feature(double v)
{
	if (isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("feature values must be finite, got %s", v > 0 ? "Infinity" : "-Infinity"),
				 errhint("NULL and NaN are missing values; infinite values are not accepted.")));
}

/* a float8[] of features as doubles, NULL elements as NaN */
const double *
features_from_array(ArrayType *a, int32 *len, double *buf, int32 bufcap)
{
	int32		n;
	bits8	   *nulls;
	const double *src;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array")));
	n = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must not be an empty array")));
	*len = n;
	src = (const double *) ARR_DATA_PTR(a);
	nulls = ARR_NULLBITMAP(a);
	if (nulls == NULL)
	{
		for (int32 i = 0; i < n; i++)
			if (unlikely(isinf(src[i])))
				check_finite_feature(src[i]);
		return src;
	}
	if (buf == NULL || n > bufcap)
		return NULL;
	for (int32 i = 0, k = 0; i < n; i++)
	{
		if (nulls[i / 8] & (1 << (i % 8)))
		{
			buf[i] = src[k++];
			check_finite_feature(buf[i]);
		}
		else
			buf[i] = NAN;
	}
	return buf;
}
