/*
 * mlp.c
 *	  SQL glue for the ad-targeting network: options, train_mlp and
 *	  top_classes.  Training rows are read and the model stored by the
 *	  shared training glue (training.c); prediction goes through the model
 *	  registry (predict / predict_proba by name, row or value; predict.c).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "inputs.h"
#include "mlp_core.h"
#include "models.h"
#include "training.h"
#include "util.h"

PG_FUNCTION_INFO_V1(train_mlp);
PG_FUNCTION_INFO_V1(top_classes);

static void
MlpOptionsParse(Jsonb *opts, MlpParams *p)
{
	OptionReader r;
	JsonbValue	v;
	char	   *key;

	memset(p, 0, sizeof(*p));
	p->n_hidden = 1;
	p->hidden[0] = 64;
	p->activation = MLP_RELU;
	p->adam = true;
	p->learning_rate = 0.001;
	p->momentum = 0.9;
	p->batch_size = 256;
	p->epochs = 50;
	p->validation_fraction = 0.1;
	p->patience = 10;
	p->tol = 1e-4;
	p->l2 = 1e-4;
	options_begin(&r, opts);
	while (options_next(&r, &key, &v))
	{
		if (strcmp(key, "task") == 0)
		{
			char	   *s = option_string(key, &v, "\"classification\" or \"regression\"");

			if (strcmp(s, "regression") == 0)
				p->regression = true;
			else if (strcmp(s, "classification") != 0)
				option_invalid(key, "\"classification\" or \"regression\"");
		}
		else if (strcmp(key, "hidden") == 0)
		{
			const char *expected = "an array of 0 to 8 layer widths between 1 and 4096";
			JsonbContainer *arr;
			int			n;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				option_invalid(key, expected);
			arr = v.val.binary.data;
			n = JsonContainerSize(arr);
			if (n > MLP_MAX_LAYERS)
				option_invalid(key, expected);
			p->n_hidden = n;
			for (int i = 0; i < n; i++)
			{
				JsonbValue *e = getIthJsonbValueFromContainer(arr, i);

				if (e == NULL)
					option_invalid(key, expected);
				p->hidden[i] = (int32) option_number(key, e, 1, MLP_MAX_WIDTH, true, expected);
			}
		}
		else if (strcmp(key, "activation") == 0)
		{
			const char *expected = "\"relu\", \"tanh\" or \"logistic\"";
			char	   *s = option_string(key, &v, expected);

			if (strcmp(s, "relu") == 0)
				p->activation = MLP_RELU;
			else if (strcmp(s, "tanh") == 0)
				p->activation = MLP_TANH;
			else if (strcmp(s, "logistic") == 0)
				p->activation = MLP_LOGISTIC;
			else
				option_invalid(key, expected);
		}
		else if (strcmp(key, "solver") == 0)
		{
			char	   *s = option_string(key, &v, "\"adam\" or \"sgd\"");

			if (strcmp(s, "adam") == 0)
				p->adam = true;
			else if (strcmp(s, "sgd") == 0)
				p->adam = false;
			else
				option_invalid(key, "\"adam\" or \"sgd\"");
		}
		else if (strcmp(key, "learning_rate") == 0)
		{
			p->learning_rate = option_number(key, &v, 0, 10, false, "a number in (0, 10]");
			if (!(p->learning_rate > 0))
				option_invalid(key, "a number in (0, 10]");
		}
		else if (strcmp(key, "momentum") == 0)
		{
			p->momentum = option_number(key, &v, 0, 1, false, "a number in [0, 1)");
			if (p->momentum >= 1)
				option_invalid(key, "a number in [0, 1)");
		}
		else if (strcmp(key, "batch_size") == 0)
			p->batch_size = (int32) option_number(key, &v, 1, 65536, true, "an integer between 1 and 65536");
		else if (strcmp(key, "epochs") == 0)
			p->epochs = (int32) option_number(key, &v, 1, 10000, true, "an integer between 1 and 10000");
		else if (strcmp(key, "validation_fraction") == 0)
			p->validation_fraction = option_number(key, &v, 0, 0.5, false, "a number in [0, 0.5]");
		else if (strcmp(key, "patience") == 0)
			p->patience = (int32) option_number(key, &v, 1, 10000, true, "an integer between 1 and 10000");
		else if (strcmp(key, "tol") == 0)
			p->tol = option_number(key, &v, 0, 1, false, "a number in [0, 1]");
		else if (strcmp(key, "l2") == 0)
			p->l2 = option_number(key, &v, 0, 1e6, false, "a number >= 0");
		else if (strcmp(key, "seed") == 0)
			p->seed = (uint64) (int64) option_number(key, &v, -4503599627370496.0, 4503599627370496.0, true,
										   "an integer");
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\"", key),
					 errhint("Network options are task, hidden, activation, solver, learning_rate, momentum, batch_size, epochs, validation_fraction, patience, tol, l2 and seed.")));
	}
}

static Jsonb *
MlpOptionsJsonb(const MlpParams *p)
{
	StringInfoData s;
	static const char *const acts[] = {"relu", "tanh", "logistic"};

	initStringInfo(&s);
	appendStringInfo(&s, "{\"task\": \"%s\", \"hidden\": [", p->regression ? "regression" : "classification");
	for (int i = 0; i < p->n_hidden; i++)
		appendStringInfo(&s, i ? ", %d" : "%d", p->hidden[i]);
	appendStringInfo(&s, "], \"activation\": \"%s\", \"solver\": \"%s\", \"learning_rate\": %.17g, "
					 "\"momentum\": %.17g, \"batch_size\": %d, \"epochs\": %d, \"validation_fraction\": %.17g, "
					 "\"patience\": %d, \"tol\": %.17g, \"l2\": %.17g, \"seed\": %lld}",
					 acts[p->activation], p->adam ? "adam" : "sgd", p->learning_rate, p->momentum,
					 p->batch_size, p->epochs, p->validation_fraction, p->patience, p->tol, p->l2,
					 (long long) (int64) p->seed);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}

Datum
train_mlp(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	MlpParams	p;
	TrainingData td;
	MemoryContext old;
	instr_time	start;
	MlpTrainInfo info;
	bytea	   *blob;
	int32	   *levels;
	int32		nf;
	int64		nrows;
	double		seconds;
	char	   *metrics;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "source");
	check_not_null(fcinfo, 2, "label_col");
	check_not_null(fcinfo, 4, "options");
	INSTR_TIME_SET_CURRENT(start);
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	model_check_name(name);
	MlpOptionsParse(PG_GETARG_JSONB_P(4), &p);

	td.cxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco train_mlp", ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	model_read_training(PG_GETARG_OID(1), NameStr(*PG_GETARG_NAME(2)),
						PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3), &td);
	nf = td.rows.nf;
	nrows = td.rows.n;

	/* categories are one-hot encoded over their training levels */
	old = MemoryContextSwitchTo(td.cxt);
	levels = palloc0(sizeof(int32) * Max(nf, 1));
	for (int32 i = 0; i < td.mi.n; i++)
		if (td.mi.in[i].kind == INPUT_CATEGORY)
		{
			if (td.mi.in[i].n_categories > MLP_MAX_LEVELS)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("column \"%s\" has %d categories; a network one-hot encodes at most %d",
								td.mi.in[i].column, td.mi.in[i].n_categories, MLP_MAX_LEVELS)));
			/* a column with no non-NULL value still takes one (always zero) input */
			levels[td.mi.in[i].offset] = Max(td.mi.in[i].n_categories, 1);
		}
	blob = mlp_train(nrows, nf, td.rows.x, td.rows.y, levels, &p, work_memory_limit(), &info);
	MemoryContextSwitchTo(old);
	seconds = elapsed_seconds(start);

	metrics = psprintf("{\"rows\": %lld, \"epochs\": %d, \"train_loss\": %.17g, "
					   "\"validation_score\": %s, \"seconds\": %.6f}",
					   (long long) nrows, info.epochs, info.train_loss,
					   isnan(info.validation_score) ? "null" :
					   psprintf("%.17g", info.validation_score), seconds);
	training_store_model(name, "mlp", p.regression, &td, info.n_classes, info.classes,
						 MlpOptionsJsonb(&p), metrics, blob);
	SPI_finish();
	MemoryContextDelete(td.cxt);

	InitMaterializedSRF(fcinfo, 0);
	{
		Datum		values[8];
		bool		nulls[8] = {false, false, false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(name);
		values[1] = Int64GetDatum(nrows);
		values[2] = Int32GetDatum(nf);
		values[3] = Int32GetDatum(info.n_classes);
		values[4] = Int32GetDatum(info.epochs);
		values[5] = Float8GetDatum(info.train_loss);
		values[6] = Float8GetDatum(info.validation_score);
		nulls[6] = isnan(info.validation_score);
		values[7] = Float8GetDatum(seconds);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

typedef struct ClassProb
{
	double		cls;
	double		p;
} ClassProb;

static int
CmpClassProb(const void *a, const void *b)
{
	const ClassProb *x = a,
			   *y = b;

	if (x->p != y->p)
		return x->p > y->p ? -1 : 1;
	return (x->cls > y->cls) - (x->cls < y->cls);
}

/* top_classes(model_name, features, k): the k most probable classes, ties to the smaller class */
Datum
top_classes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	LoadedModel *m;
	ArrayType  *a;
	int32		len,
				k;
	double	   *buf,
			   *prob;
	const double *x;
	ClassProb  *cp;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "features");
	check_not_null(fcinfo, 2, "k");
	k = PG_GETARG_INT32(2);
	check_k(k, "k");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m = model_for_call(fcinfo);
	if (m->regression)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" is a regression model and has no classes", name)));
	a = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array")));
	len = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	if (len != m->n_features)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the model takes %d features, got %d", m->n_features, len)));
	buf = palloc(sizeof(double) * Max(len, 1));
	x = features_from_array(a, &len, buf, len);
	prob = palloc(sizeof(double) * m->n_classes);
	model_predict_raw(m, x, prob);
	cp = palloc(sizeof(ClassProb) * m->n_classes);
	for (int32 c = 0; c < m->n_classes; c++)
	{
		cp[c].cls = m->classes[c];
		cp[c].p = prob[c];
	}
	qsort(cp, m->n_classes, sizeof(ClassProb), CmpClassProb);
	InitMaterializedSRF(fcinfo, 0);
	for (int32 r = 0; r < Min(k, m->n_classes); r++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Float8GetDatum(cp[r].cls);
		values[1] = Float8GetDatum(cp[r].p);
		values[2] = Int32GetDatum(r + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
