/*
 * forest.c
 *	  SQL glue for random forests: the options and the forest_fit aggregate
 *	  (with combine, serial and deserial functions for parallel plans).
 *	  Prediction on a model value is in predict.c.
 *
 * The aggregate state is a growing row-major matrix of float8 features plus
 * the labels (TrainRows, training.c), allocated in the aggregate context;
 * the final function trains (forest_core.c).  Since training puts the rows in a canonical order first,
 * a parallel plan, whose partial states arrive in any order, gives the same
 * model bytes as a serial one.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "core_pg.h"
#include "forest.h"
#include "forest_pg.h"
#include "inputs.h"
#include "model_blob_pg.h"
#include "state_codec.h"
#include "training.h"
#include "util.h"

PG_FUNCTION_INFO_V1(forest_fit_transfn);
PG_FUNCTION_INFO_V1(forest_fit_combine);
PG_FUNCTION_INFO_V1(forest_fit_serialize);
PG_FUNCTION_INFO_V1(forest_fit_deserialize);
PG_FUNCTION_INFO_V1(forest_fit_final);

/* ---------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */

void
forest_options_parse(Jsonb *opts, ForestParams *p)
{
	OptionReader r;
	JsonbValue	v;
	char	   *key;
	bool		saw_class_weight = false;

	memset(p, 0, sizeof(*p));
	p->task = FOREST_CLASSIFICATION;
	p->n_trees = 100;
	p->max_depth = 0;
	p->min_samples_leaf = 1;
	p->min_samples_split = 2;
	p->max_features_mode = MAXF_DEFAULT;
	p->bootstrap = true;
	p->sample_fraction = 1.0;
	p->class_weight_balanced = false;
	p->seed = 0;

	if (opts == NULL)
		return;
	options_begin(&r, opts);
	while (options_next(&r, &key, &v))
	{
		if (strcmp(key, "task") == 0)
		{
			const char *expected = "\"classification\" or \"regression\"";
			char	   *s = option_string(key, &v, expected);

			if (strcmp(s, "classification") == 0)
				p->task = FOREST_CLASSIFICATION;
			else if (strcmp(s, "regression") == 0)
				p->task = FOREST_REGRESSION;
			else
				option_invalid(key, expected);
		}
		else if (strcmp(key, "n_trees") == 0)
			p->n_trees = (int32) option_number(key, &v, 1, FOREST_MAX_TREES, true,
											   "an integer between 1 and 100000");
		else if (strcmp(key, "max_depth") == 0)
		{
			if (v.type == jbvNull)
				p->max_depth = 0;
			else
				p->max_depth = (int32) option_number(key, &v, 1, 10000, true,
													 "null or an integer between 1 and 10000");
		}
		else if (strcmp(key, "min_samples_leaf") == 0)
			p->min_samples_leaf = (int32) option_number(key, &v, 1, PG_INT32_MAX / 2, true,
														"an integer >= 1");
		else if (strcmp(key, "min_samples_split") == 0)
			p->min_samples_split = (int32) option_number(key, &v, 2, PG_INT32_MAX, true,
														 "an integer >= 2");
		else if (strcmp(key, "max_features") == 0)
		{
			const char *expected = "\"sqrt\", \"log2\", \"all\", an integer >= 1 or a fraction in (0, 1)";

			if (v.type == jbvString)
			{
				char	   *s = option_string(key, &v, expected);

				if (strcmp(s, "sqrt") == 0)
					p->max_features_mode = MAXF_SQRT;
				else if (strcmp(s, "log2") == 0)
					p->max_features_mode = MAXF_LOG2;
				else if (strcmp(s, "all") == 0)
					p->max_features_mode = MAXF_ALL;
				else
					option_invalid(key, expected);
			}
			else
			{
				double		d = option_number(key, &v, 0, FOREST_MAX_FEATURES, false, expected);

				if (d > 0 && d < 1)
					p->max_features_mode = MAXF_FRACTION;
				else if (d >= 1 && d == floor(d))
					p->max_features_mode = MAXF_COUNT;
				else
					option_invalid(key, expected);
				p->max_features = d;
			}
		}
		else if (strcmp(key, "bootstrap") == 0)
			p->bootstrap = option_bool(key, &v);
		else if (strcmp(key, "sample_fraction") == 0)
		{
			p->sample_fraction = option_number(key, &v, 0, 1, false, "a number in (0, 1]");
			if (!(p->sample_fraction > 0))
				option_invalid(key, "a number in (0, 1]");
		}
		else if (strcmp(key, "class_weight") == 0)
		{
			const char *expected = "null, \"none\" or \"balanced\"";

			saw_class_weight = true;
			if (v.type == jbvNull)
				p->class_weight_balanced = false;
			else
			{
				char	   *s = option_string(key, &v, expected);

				if (strcmp(s, "balanced") == 0)
					p->class_weight_balanced = true;
				else if (strcmp(s, "none") == 0)
					p->class_weight_balanced = false;
				else
					option_invalid(key, expected);
			}
		}
		else if (strcmp(key, "seed") == 0)
			p->seed = (uint64) (int64) option_number(key, &v, (double) (PG_INT64_MIN / 2),
													 (double) (PG_INT64_MAX / 2), true, "an integer");
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\"", key),
					 errhint("Forest options are task, n_trees, max_depth, min_samples_leaf, min_samples_split, max_features, bootstrap, sample_fraction, class_weight and seed.")));
	}
	if (p->task == FOREST_REGRESSION && saw_class_weight && p->class_weight_balanced)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"class_weight\" applies to classification only")));
}

/* the options in effect, defaults filled in, as a JSON object */
Jsonb *
forest_options_jsonb(const ForestParams *p, int32 n_features)
{
	StringInfoData s;
	const char *mf;
	char		mfbuf[64];

	switch (p->max_features_mode)
	{
		case MAXF_SQRT:
			mf = "\"sqrt\"";
			break;
		case MAXF_LOG2:
			mf = "\"log2\"";
			break;
		case MAXF_ALL:
			mf = "\"all\"";
			break;
		case MAXF_COUNT:
			snprintf(mfbuf, sizeof(mfbuf), "%d", (int) p->max_features);
			mf = mfbuf;
			break;
		case MAXF_FRACTION:
			snprintf(mfbuf, sizeof(mfbuf), "%.17g", p->max_features);
			mf = mfbuf;
			break;
		default:
			mf = p->task == FOREST_CLASSIFICATION ? "\"sqrt\"" : "\"all\"";
	}
	initStringInfo(&s);
	appendStringInfo(&s, "{\"task\": \"%s\", \"n_trees\": %d, \"max_depth\": ",
					 p->task == FOREST_CLASSIFICATION ? "classification" : "regression",
					 p->n_trees);
	if (p->max_depth > 0)
		appendStringInfo(&s, "%d", p->max_depth);
	else
		appendStringInfoString(&s, "null");
	appendStringInfo(&s, ", \"min_samples_leaf\": %d, \"min_samples_split\": %d, "
					 "\"max_features\": %s, \"features_per_split\": %d, \"bootstrap\": %s, "
					 "\"sample_fraction\": %.17g, \"class_weight\": %s, \"seed\": %lld}",
					 p->min_samples_leaf, p->min_samples_split, mf,
					 forest_mtry(p, n_features),
					 p->bootstrap ? "true" : "false", p->sample_fraction,
					 p->class_weight_balanced ? "\"balanced\"" : "null",
					 (long long) (int64) p->seed);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

/* ---------------------------------------------------------------------------
 * The forest_fit aggregate
 * ------------------------------------------------------------------------- */

typedef struct ForestAggState
{
	TrainRows	rows;
	Jsonb	   *options;		/* from the first row */
} ForestAggState;

static ForestAggState *
NewState(MemoryContext aggcxt, int32 nf, Jsonb *options)
{
	MemoryContext old = MemoryContextSwitchTo(aggcxt);
	ForestAggState *st = palloc0(sizeof(ForestAggState));

	train_rows_init(&st->rows, nf, work_memory_limit());
	st->options = options ? (Jsonb *) PG_DETOAST_DATUM_COPY(PointerGetDatum(options)) : NULL;
	MemoryContextSwitchTo(old);
	return st;
}

static void
CheckWidth(int32 have, int32 got)
{
	if (have != got)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("feature arrays have different lengths: %d and %d", have, got),
				 errhint("Every row must give the same features in the same order; use NULL elements for missing values.")));
}

Datum
forest_fit_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ForestAggState *st = PG_ARGISNULL(0) ? NULL : (ForestAggState *) PG_GETARG_POINTER(0);
	ArrayType  *a;
	double		label;
	int32		len;
	MemoryContext old;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("forest_fit_transfn called in non-aggregate context")));
	/* forest_fit(features, label) has no options argument: the defaults */
	if (PG_NARGS() > 3 && PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("options must not be NULL"),
				 errhint("Pass '{}' for the defaults.")));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		/* rows without features or label are skipped; no state yet stays SQL NULL */
		if (st == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(st);
	}

	a = PG_GETARG_ARRAYTYPE_P(1);
	label = PG_GETARG_FLOAT8(2);
	check_label(label);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array")));
	len = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must not be an empty array")));
	if (len > FOREST_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a forest takes at most %d features, got %d", FOREST_MAX_FEATURES, len)));
	if (st == NULL)
	{
		Jsonb	   *opts = PG_NARGS() > 3 ? PG_GETARG_JSONB_P(3) : NULL;
		ForestParams p;

		forest_options_parse(opts, &p);	/* fail on the first row, not after reading all */
		st = NewState(aggcxt, len, opts);
	}
	CheckWidth(st->rows.nf, len);

	old = MemoryContextSwitchTo(aggcxt);
	train_rows_reserve(&st->rows, 1);
	MemoryContextSwitchTo(old);
	{
		double	   *dst = st->rows.x + st->rows.n * st->rows.nf;
		const double *src = features_from_array(a, &len, dst, len);

		if (src != dst)
			memcpy(dst, src, sizeof(double) * len);
	}
	st->rows.y[st->rows.n] = label;
	st->rows.n++;
	PG_RETURN_POINTER(st);
}

static void
AppendState(MemoryContext aggcxt, ForestAggState *dst, const ForestAggState *src)
{
	MemoryContext old;

	if (src->rows.n == 0)
		return;
	CheckWidth(dst->rows.nf, src->rows.nf);
	old = MemoryContextSwitchTo(aggcxt);
	train_rows_reserve(&dst->rows, src->rows.n);
	MemoryContextSwitchTo(old);
	memcpy(dst->rows.x + dst->rows.n * dst->rows.nf, src->rows.x,
		   sizeof(double) * src->rows.n * src->rows.nf);
	memcpy(dst->rows.y + dst->rows.n, src->rows.y, sizeof(double) * src->rows.n);
	dst->rows.n += src->rows.n;
}

Datum
forest_fit_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ForestAggState *s1 = PG_ARGISNULL(0) ? NULL : (ForestAggState *) PG_GETARG_POINTER(0);
	ForestAggState *s2 = PG_ARGISNULL(1) ? NULL : (ForestAggState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("forest_fit_combine called in non-aggregate context")));
	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	if (s1 == NULL)
		s1 = NewState(aggcxt, s2->rows.nf, s2->options);
	AppendState(aggcxt, s1, s2);
	PG_RETURN_POINTER(s1);
}

Datum
forest_fit_serialize(PG_FUNCTION_ARGS)
{
	ForestAggState *st;
	StringInfoData buf;
	Size		optlen;

	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("forest_fit_serialize called in non-aggregate context")));
	st = (ForestAggState *) PG_GETARG_POINTER(0);
	optlen = st->options ? VARSIZE(st->options) : 0;
	if ((double) st->rows.n * (st->rows.nf + 1) * sizeof(double) + optlen > MaxAllocSize - 64)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("forest_fit state is too large to pass between parallel workers"),
				 errhint("SET max_parallel_workers_per_gather = 0 for this query.")));
	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->rows.nf);
	pq_sendint64(&buf, st->rows.n);
	pq_sendint32(&buf, (int32) optlen);
	if (optlen)
		pq_sendbytes(&buf, (char *) st->options, optlen);
	pq_sendbytes(&buf, (char *) st->rows.x, sizeof(double) * st->rows.n * st->rows.nf);
	pq_sendbytes(&buf, (char *) st->rows.y, sizeof(double) * st->rows.n);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
forest_fit_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	ForestAggState *st;
	ForestFitStateData d;
	CoreAlloc	a;
	CoreError	err;

	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("forest_fit_deserialize called in non-aggregate context")));
	core_pg_alloc(&a, CurrentMemoryContext);
	core_pg_check(forest_fit_state_decode(&a, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b),
										  FOREST_MAX_FEATURES, &d, &err), &err);
	st = palloc0(sizeof(ForestAggState));
	st->options = (Jsonb *) d.options;
	train_rows_init(&st->rows, d.nf, work_memory_limit());
	st->rows.n = d.n;
	st->rows.cap = d.n;
	st->rows.x = d.x;
	st->rows.y = d.y;
	PG_RETURN_POINTER(st);
}

Datum
forest_fit_final(PG_FUNCTION_ARGS)
{
	ForestAggState *st = PG_ARGISNULL(0) ? NULL : (ForestAggState *) PG_GETARG_POINTER(0);
	ForestParams p;
	ForestTrainInfo info;
	bytea	   *model;

	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("forest_fit_final called in non-aggregate context")));
	if (st == NULL || st->rows.n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no training rows"),
				 errdetail("Rows with a NULL label or NULL features are skipped.")));
	forest_options_parse(st->options, &p);
	model = forest_train_bytea(st->rows.n, st->rows.nf, st->rows.x, st->rows.y, &p,
							   media_reco_threads, work_memory_limit(), &interrupt_hooks, &info);
	PG_RETURN_BYTEA_P(model);
}
