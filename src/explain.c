/*
 * explain.c
 *	  Per-row explanations of named models: explain_prediction (a feature
 *	  array or a row), explain_base_value, explain_completeness and
 *	  shap_importance.
 *
 * Forests are explained by path-dependent TreeSHAP (treeshap_core.c),
 * networks by integrated gradients (mlp_core.c); both are built once per
 * loaded model, in the model's memory context, so a LATERAL over a table
 * loads the model and lays it out once (the model comes from the call
 * site's cache, model_site_for_call).  The explained output is the
 * probability of one class (the predicted one, ties as predict breaks them,
 * unless `class` is given) or the regression value.
 *
 * shap_importance samples rows with a rule a query can repeat: the rows of
 * one scan numbered 1, 2, ... in scan order, the `sample` ones with the
 * smallest hashint8extended(number, seed), ties by number (every row when
 * sample >= the row count).  It keeps them in a heap of that size while it
 * scans, so memory is the sample's, not the table's.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/binaryheap.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "core_pg.h"
#include "models.h"
#include "treeshap_core.h"
#include "util.h"

PG_FUNCTION_INFO_V1(explain_prediction_array);
PG_FUNCTION_INFO_V1(explain_prediction_row);
PG_FUNCTION_INFO_V1(explain_completeness_array);
PG_FUNCTION_INFO_V1(explain_completeness_row);
PG_FUNCTION_INFO_V1(explain_base_value);
PG_FUNCTION_INFO_V1(shap_importance);

int			media_reco_explain_steps = 64;

/* ---------------------------------------------------------------------------
 * The explainer of a loaded model, built on first use
 * ------------------------------------------------------------------------- */

static void
PrepareExplainer(LoadedModel *m, const char *name)
{
	CoreAlloc	a;
	CoreError	err;

	core_pg_alloc(&a, m->cxt);
	if (m->forest && m->shap == NULL)
	{
		if (m->forest->payload_version < 1)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("model \"%s\" stores no node covers, so its predictions cannot be explained", name),
					 errdetail("Forests trained before media_reco 0.5.0 (forest payload version 0) record how the splits divided the training rows only from 0.5.0 on."),
					 errhint("Retrain the model (train_forest, or forest_fit and save_model) to explain it; it still predicts as it is.")));
		core_pg_check(treeshap_build(&a, m->forest, &m->shap, &err), &err);
	}
	if (m->mlp && (m->ig == NULL || m->ig->steps != media_reco_explain_steps))
		core_pg_check(mlp_core_ig_prepare(&a, m->mlp, media_reco_explain_steps, &m->ig, &err), &err);
}

/* the class index explained: the given class, or the one predict gives x; -1 for regression */
static int32
ClassIndex(FunctionCallInfo fcinfo, int argno, LoadedModel *m, const char *name, const double *x,
		   double *scratch, bool required)
{
	double		cls;

	if (m->regression)
	{
		if (!PG_ARGISNULL(argno))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model \"%s\" is a regression model and has no classes", name),
					 errhint("Leave class NULL: the regression value is explained.")));
		return 0;
	}
	if (PG_ARGISNULL(argno))
	{
		if (required || x == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("class must not be NULL for classifier \"%s\"", name),
					 errhint("Name the class whose expected probability you want; without a row there is no predicted class to take.")));
		cls = model_predict_value(m, x, scratch);
	}
	else
		cls = PG_GETARG_FLOAT8(argno);
	for (int32 c = 0; c < m->n_classes; c++)
		if (m->classes[c] == cls)
			return c;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("model \"%s\" has no class %g", name, cls),
			 errhint("The classes are listed in media_reco.models.classes.")));
	return -1;					/* keep the compiler quiet */
}

/* the base value of class index cls: v(empty set) (forest), f(zero standardised input) (network) */
static double
BaseValue(LoadedModel *m, int32 cls, double *scratch, double *xbuf)
{
	if (m->forest)
		return treeshap_base_value(m->shap, cls);
	for (int32 j = 0; j < m->n_features; j++)
		xbuf[j] = NAN;			/* every input missing: its training mean, no category */
	model_predict_raw(m, xbuf, scratch);
	return scratch[m->regression ? 0 : cls];
}

static void
Attributions(LoadedModel *m, const double *x, int32 cls, double *phi)
{
	if (m->forest)
		treeshap_explain(m->shap, x, cls, phi, &interrupt_hooks);
	else
	{
		CoreAlloc	a;
		CoreError	err;

		core_pg_alloc(&a, CurrentMemoryContext);
		core_pg_check(mlp_core_integrated_gradients(&a, &interrupt_hooks, m->mlp, m->ig, x, cls, phi, &err), &err);
	}
}

/* ---------------------------------------------------------------------------
 * explain_prediction, explain_completeness
 * ------------------------------------------------------------------------- */

typedef struct Ranked
{
	int32		feature;
	double		contribution;
} Ranked;

static int
CmpRanked(const void *a, const void *b)
{
	const Ranked *x = a,
			   *y = b;
	double		ax = fabs(x->contribution),
				ay = fabs(y->contribution);

	if (ax != ay)
		return ax > ay ? -1 : 1;
	return (x->feature > y->feature) - (x->feature < y->feature);
}

static const char *
FeatureName(const LoadedModel *m, int32 j)
{
	return m->feature_names ? m->feature_names[j] : psprintf("%d", j + 1);
}

/*
 * What the forms share: the site's model, the features (argument 1, a
 * float8[] or a row), the class, the explainer; the attributions into phi.
 */
static SiteModel *
ExplainCall(FunctionCallInfo fcinfo, bool row, const double **x, int32 *cls, double **phi)
{
	SiteModel  *sm;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, row ? "row" : "features");
	sm = model_site_for_call(fcinfo);
	*x = row ? model_row_features(sm, PG_GETARG_HEAPTUPLEHEADER(1))
		: model_arg_features(fcinfo, 1, sm->model, sm->xbuf);
	*cls = ClassIndex(fcinfo, 2, sm->model, sm->name, *x, sm->scratch, false);
	PrepareExplainer(sm->model, sm->name);
	*phi = palloc(sizeof(double) * sm->model->n_features);
	Attributions(sm->model, *x, *cls, *phi);
	return sm;
}

static Datum
ExplainPrediction(FunctionCallInfo fcinfo, bool row)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const double *x;
	double	   *phi;
	int32		cls;
	SiteModel  *sm = ExplainCall(fcinfo, row, &x, &cls, &phi);
	LoadedModel *m = sm->model;
	Ranked	   *r = palloc(sizeof(Ranked) * m->n_features);

	InitMaterializedSRF(fcinfo, 0);
	for (int32 j = 0; j < m->n_features; j++)
	{
		r[j].feature = j;
		r[j].contribution = phi[j];
	}
	qsort(r, m->n_features, sizeof(Ranked), CmpRanked);
	for (int32 k = 0; k < m->n_features; k++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		int32		j = r[k].feature;

		values[0] = CStringGetTextDatum(FeatureName(m, j));
		values[1] = Float8GetDatum(x[j]);
		nulls[1] = isnan(x[j]);
		values[2] = Float8GetDatum(r[k].contribution);
		values[3] = Int32GetDatum(k + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
explain_prediction_array(PG_FUNCTION_ARGS)
{
	return ExplainPrediction(fcinfo, false);
}

Datum
explain_prediction_row(PG_FUNCTION_ARGS)
{
	return ExplainPrediction(fcinfo, true);
}

/* one row: output, base_value, contributions, completeness_error, method, steps, pieces */
static Datum
ExplainCompleteness(FunctionCallInfo fcinfo, bool row)
{
	const double *x;
	double	   *phi;
	int32		cls;
	SiteModel  *sm = ExplainCall(fcinfo, row, &x, &cls, &phi);
	LoadedModel *m = sm->model;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	double		out,
				base,
				sum = 0;
	double	   *xcopy = palloc(sizeof(double) * m->n_features);
	double	   *scratch = palloc(sizeof(double) * Max(m->n_classes, 1));

	memcpy(xcopy, x, sizeof(double) * m->n_features);
	model_predict_raw(m, xcopy, scratch);
	out = scratch[m->regression ? 0 : cls];
	base = BaseValue(m, cls, scratch, xcopy);
	for (int32 j = 0; j < m->n_features; j++)
		sum += phi[j];
	values[0] = Float8GetDatum(out);
	values[1] = Float8GetDatum(base);
	values[2] = Float8GetDatum(sum);
	values[3] = Float8GetDatum(sum - (out - base));
	values[4] = CStringGetTextDatum(m->forest ? "treeshap" : "integrated_gradients");
	values[5] = Int32GetDatum(m->forest ? 0 : m->ig->steps);
	nulls[5] = m->forest != NULL;
	values[6] = Int32GetDatum(m->forest ? 0 : m->ig->pieces);
	nulls[6] = m->forest != NULL;
	InitMaterializedSRF(fcinfo, 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

Datum
explain_completeness_array(PG_FUNCTION_ARGS)
{
	return ExplainCompleteness(fcinfo, false);
}

Datum
explain_completeness_row(PG_FUNCTION_ARGS)
{
	return ExplainCompleteness(fcinfo, true);
}

Datum
explain_base_value(PG_FUNCTION_ARGS)
{
	SiteModel  *sm;
	int32		cls;

	check_not_null(fcinfo, 0, "model_name");
	sm = model_site_for_call(fcinfo);
	cls = ClassIndex(fcinfo, 1, sm->model, sm->name, NULL, sm->scratch, true);
	PrepareExplainer(sm->model, sm->name);
	PG_RETURN_FLOAT8(BaseValue(sm->model, cls, sm->scratch, sm->xbuf));
}

/* ---------------------------------------------------------------------------
 * shap_importance
 * ------------------------------------------------------------------------- */

typedef struct SampledRow
{
	int64		hash;
	int64		number;
	Datum		row;
} SampledRow;

/* max-heap by (hash, number): the top is the row the next smaller one replaces */
static int
CmpSampled(Datum a, Datum b, void *arg)
{
	const SampledRow *x = (const SampledRow *) DatumGetPointer(a),
			   *y = (const SampledRow *) DatumGetPointer(b);

	if (x->hash != y->hash)
		return x->hash > y->hash ? 1 : -1;
	return (x->number > y->number) - (x->number < y->number);
}

static int
CmpByNumber(const void *a, const void *b)
{
	const SampledRow *x = *(SampledRow * const *) a,
			   *y = *(SampledRow * const *) b;

	return (x->number > y->number) - (x->number < y->number);
}

Datum
shap_importance(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SiteModel  *sm;
	LoadedModel *m;
	Oid			relid;
	int32		sample;
	int64		seed;
	char	   *sql;
	Portal		portal;
	binaryheap *heap;
	SampledRow *rows;
	SampledRow **order;
	int64		number = 0;
	int32		kept = 0;
	double	   *sum,
			   *phi;
	MemoryContext keep = CurrentMemoryContext;
	Ranked	   *r;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "source");
	check_not_null(fcinfo, 2, "sample");
	check_not_null(fcinfo, 3, "seed");
	relid = PG_GETARG_OID(1);
	sample = PG_GETARG_INT32(2);
	seed = PG_GETARG_INT64(3);
	if (sample < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample must be at least 1")));
	sm = model_site_for_call(fcinfo);
	m = sm->model;
	if (m->inputs == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" has no column encoding", sm->name),
				 errhint("shap_importance reads the model's columns from the source's rows.")));
	PrepareExplainer(m, sm->name);

	/* the sample: one scan, a heap of the `sample` smallest (hash, number) */
	rows = palloc_extended(sizeof(SampledRow) * (Size) sample, MCXT_ALLOC_HUGE);
	heap = binaryheap_allocate(sample, CmpSampled, NULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql = psprintf("SELECT t FROM %s AS t",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											  get_rel_name(relid)));
	portal = SPI_cursor_open_with_args(NULL, sql, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d;
			int64		h;
			SampledRow *slot;

			CHECK_FOR_INTERRUPTS();
			number++;
			h = DatumGetInt64(DirectFunctionCall2(hashint8extended, Int64GetDatum(number),
												  Int64GetDatum(seed)));
			if (kept == sample)
			{
				SampledRow *top = (SampledRow *) DatumGetPointer(binaryheap_first(heap));

				if (h > top->hash)	/* equal hash: the earlier number stays */
					continue;
				if (h == top->hash)
					continue;
				slot = top;
				pfree(DatumGetPointer(slot->row));
				binaryheap_remove_first(heap);
			}
			else
				slot = &rows[kept++];
			d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			slot->hash = h;
			slot->number = number;
			{
				MemoryContext old = MemoryContextSwitchTo(keep);

				slot->row = isnull ? (Datum) 0 : datumCopy(d, false, -1);
				MemoryContextSwitchTo(old);
			}
			binaryheap_add(heap, PointerGetDatum(slot));
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();

	/* explain the sampled rows in scan order: mean |contribution| to each row's predicted class */
	order = palloc(sizeof(SampledRow *) * Max(kept, 1));
	for (int32 k = 0; k < kept; k++)
		order[k] = &rows[k];
	qsort(order, kept, sizeof(SampledRow *), CmpByNumber);
	sum = palloc0(sizeof(double) * m->n_features);
	phi = palloc(sizeof(double) * m->n_features);
	for (int32 k = 0; k < kept; k++)
	{
		const double *x;
		int32		cls = 0;

		CHECK_FOR_INTERRUPTS();
		if (order[k]->row == (Datum) 0)
			continue;			/* a NULL composite cannot come from a table scan */
		x = model_row_features(sm, DatumGetHeapTupleHeader(order[k]->row));
		if (!m->regression)
		{
			double		c = model_predict_value(m, x, sm->scratch);

			while (m->classes[cls] != c)
				cls++;
		}
		Attributions(m, x, cls, phi);
		for (int32 j = 0; j < m->n_features; j++)
			sum[j] += fabs(phi[j]);
	}

	InitMaterializedSRF(fcinfo, 0);
	r = palloc(sizeof(Ranked) * m->n_features);
	for (int32 j = 0; j < m->n_features; j++)
	{
		r[j].feature = j;
		r[j].contribution = kept > 0 ? sum[j] / kept : 0;
	}
	qsort(r, m->n_features, sizeof(Ranked), CmpRanked);
	for (int32 k = 0; k < m->n_features && kept > 0; k++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(FeatureName(m, r[k].feature));
		values[1] = Float8GetDatum(r[k].contribution);
		values[2] = Int32GetDatum(k + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
