/*
 * predict.c
 *	  Prediction, whatever the model kind: loading a model value, predict and
 *	  predict_proba on a value (with its call-site cache), by name on a
 *	  feature array or on a row (through the registry, model_registry.c),
 *	  and feature_importance.
 */
#include "postgres.h"

#include <math.h>

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "forest_pg.h"
#include "inputs.h"
#include "models.h"
#include "util.h"

PG_FUNCTION_INFO_V1(predict_blob);
PG_FUNCTION_INFO_V1(predict_proba_blob);
PG_FUNCTION_INFO_V1(predict_name);
PG_FUNCTION_INFO_V1(predict_proba_name);
PG_FUNCTION_INFO_V1(predict_name_row);
PG_FUNCTION_INFO_V1(predict_proba_name_row);
PG_FUNCTION_INFO_V1(feature_importance);

/* ---------------------------------------------------------------------------
 * Loading and predicting, whatever the kind
 * ------------------------------------------------------------------------- */

static uint64 load_serial = 0;

/* load a model value into the current memory context (validates everything) */
LoadedModel *
model_load_blob(bytea *blob)
{
	LoadedModel *m = palloc0(sizeof(LoadedModel));
	BlobReader	r;
	ModelKind	kind = model_blob_open(blob, &r);

	m->kind = kind;
	m->cxt = CurrentMemoryContext;
	m->serial = ++load_serial;
	if (kind == MODEL_KIND_FOREST)
	{
		Forest	   *f = forest_load_pg(&r);

		m->forest = f;
		m->regression = f->task == FOREST_REGRESSION;
		m->n_features = f->n_features;
		m->n_classes = f->n_classes;
		m->classes = f->classes;
		m->importance = f->importance;
	}
	else
	{
		Mlp		   *net = mlp_load(&r);

		m->mlp = net;
		m->regression = net->regression;
		m->n_features = net->n_in;
		m->n_classes = net->n_classes;
		m->classes = net->classes;
		m->importance = NULL;
	}
	return m;
}

/* class probabilities [n_classes], or the regression value [1] */
void
model_predict_raw(const LoadedModel *m, const double *x, double *out)
{
	if (m->forest)
		forest_predict(m->forest, x, out);
	else
		mlp_predict(m->mlp, x, out);
}

static double
PredictValue(const LoadedModel *m, const double *x, double *scratch)
{
	int32		best = 0;

	if (m->forest)
		return forest_predict_value(m->forest, x, scratch);	/* may stop once decided */
	model_predict_raw(m, x, scratch);
	if (m->regression)
		return scratch[0];
	for (int32 c = 1; c < m->n_classes; c++)
		if (scratch[c] > scratch[best])
			best = c;			/* ties keep the smaller class */
	return m->classes[best];
}

double
model_predict_value(const LoadedModel *m, const double *x, double *scratch)
{
	return PredictValue(m, x, scratch);
}


static void
CheckFeatureCount(const LoadedModel *m, int32 got)
{
	if (got != m->n_features)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the model takes %d features, got %d", m->n_features, got)));
}

static void
CheckClassifier(const LoadedModel *m, const char *name)
{
	if (m->regression)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s%s%s is a regression model and has no class probabilities",
						name ? "model \"" : "the model", name ? name : "", name ? "\"" : ""),
				 errhint("Use predict for the predicted value.")));
}

/* predict_proba's result: m's class probabilities for x as a float8[], through scratch */
static ArrayType *
ProbaArray(const LoadedModel *m, const double *x, double *scratch)
{
	Datum	   *d = palloc(sizeof(Datum) * m->n_classes);

	model_predict_raw(m, x, scratch);
	for (int32 i = 0; i < m->n_classes; i++)
		d[i] = Float8GetDatum(scratch[i]);
	return construct_array(d, m->n_classes, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
						   TYPALIGN_DOUBLE);
}

/* ---------------------------------------------------------------------------
 * Prediction on a model value
 * ------------------------------------------------------------------------- */

/*
 * Per call site: the last model value seen, its validated bytes and the model
 * loaded from them.  A value is used only when its own bytes are the bytes
 * that were validated: the datum's address proves nothing (per-row values
 * reuse one buffer), and a header can be intact over a corrupted payload.
 *
 * - An out-of-line TOAST value is identified by (toast relation, value id):
 *   TOAST values are never updated in place, and a value id is not reused
 *   while a snapshot that saw the value is active, so within one snapshot
 *   the same pointer is the same bytes.  A model read from a table (the
 *   models registry stores its bytes EXTERNAL) costs no detoast per row.
 * - A constant argument (a literal, or a parameter of a custom plan) is one
 *   datum for the life of the call site: validated once, then reused.
 * - Anything else (inline, compressed, computed in memory, a PL/pgSQL
 *   variable) is detoasted and compared byte for byte with the copy kept
 *   here: a memcmp per row, far cheaper than validating and loading the
 *   model again, but proportional to its size (about 1.5 ms for 20 MB).
 */
typedef struct BlobSite
{
	bool		is_const;		/* the argument is a Const: the model is its value */
	bool		toast_valid;	/* toastrelid/valueid/snapshot name the kept bytes */
	Oid			toastrelid;
	Oid			valueid;
	TransactionId snap_xmin;
	TransactionId snap_xmax;
	CommandId	snap_cid;
	Size		len;
	bytea	   *bytes;			/* the validated bytes */
	LoadedModel *model;
	double	   *scratch;
	double	   *xbuf;
} BlobSite;

/* remember the TOAST identity of d (if it has one) as naming the kept bytes */
static void
BlobSiteNoteToast(BlobSite *site, Datum d)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(d);
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;

	site->toast_valid = false;
	if (snap != NULL && VARATT_IS_EXTERNAL_ONDISK(raw))
	{
		struct varatt_external ext;

		VARATT_EXTERNAL_GET_POINTER(ext, raw);
		site->toastrelid = ext.va_toastrelid;
		site->valueid = ext.va_valueid;
		site->snap_xmin = snap->xmin;
		site->snap_xmax = snap->xmax;
		site->snap_cid = snap->curcid;
		site->toast_valid = true;
	}
}

/* true when d is the out-of-line value whose bytes the site validated, in the same snapshot */
static bool
BlobSiteSameToast(const BlobSite *site, Datum d)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(d);
	struct varatt_external ext;
	Snapshot	snap;

	if (!site->toast_valid || !VARATT_IS_EXTERNAL_ONDISK(raw) || !ActiveSnapshotSet())
		return false;
	snap = GetActiveSnapshot();
	VARATT_EXTERNAL_GET_POINTER(ext, raw);
	return ext.va_toastrelid == site->toastrelid && ext.va_valueid == site->valueid &&
		snap->xmin == site->snap_xmin && snap->xmax == site->snap_xmax &&
		snap->curcid == site->snap_cid;
}

/* true when argument argno of the call is a Const node (not a Param, whose value may change) */
static bool
ArgIsConst(FunctionCallInfo fcinfo, int argno)
{
	Node	   *expr = fcinfo->flinfo->fn_expr;
	List	   *args;

	if (expr == NULL || !IsA(expr, FuncExpr))
		return false;
	args = ((FuncExpr *) expr)->args;
	return argno < list_length(args) && IsA(list_nth(args, argno), Const);
}

static BlobSite *
BlobModel(FunctionCallInfo fcinfo)
{
	BlobSite   *site = (BlobSite *) fcinfo->flinfo->fn_extra;
	Datum		d = PG_GETARG_DATUM(0);
	bytea	   *blob;
	Size		len;

	if (site && site->model && (site->is_const || BlobSiteSameToast(site, d)))
		return site;
	blob = PG_GETARG_BYTEA_PP(0);
	len = VARSIZE_ANY_EXHDR(blob);
	if (site && site->model && site->len == len &&
		memcmp(VARDATA_ANY(site->bytes), VARDATA_ANY(blob), len) == 0)
	{
		BlobSiteNoteToast(site, d);
		return site;
	}

	{
		MemoryContext cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "media_reco model value",
												  ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		LoadedModel *m;

		/* forget the old value first: if this one is invalid, nothing stale is left */
		if (site != NULL && site->model)
		{
			MemoryContextDelete(site->model->cxt);
			site->model = NULL;
			site->toast_valid = false;
		}
		m = model_load_blob(blob);
		m->cxt = cxt;
		if (site == NULL)
			site = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(BlobSite));
		site->len = len;
		site->bytes = (bytea *) palloc_extended(VARHDRSZ + len, MCXT_ALLOC_HUGE);
		SET_VARSIZE(site->bytes, VARHDRSZ + len);
		memcpy(VARDATA(site->bytes), VARDATA_ANY(blob), len);
		site->scratch = palloc(sizeof(double) * Max(m->n_classes, 1));
		site->xbuf = palloc(sizeof(double) * m->n_features);
		MemoryContextSwitchTo(old);
		site->model = m;
		site->is_const = ArgIsConst(fcinfo, 0);
		BlobSiteNoteToast(site, d);
		fcinfo->flinfo->fn_extra = site;
	}
	return site;
}

const double *
model_arg_features(FunctionCallInfo fcinfo, int argno, const LoadedModel *m, double *buf)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(argno);
	int32		len;
	const double *x;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array")));
	CheckFeatureCount(m, ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0]);
	x = features_from_array(a, &len, buf, m->n_features);
	return x;
}

/*
 * What predict and predict_proba on a model value share: the call site's
 * validated model (BlobModel), for predict_proba the check that it is a
 * classifier, then the features of argument 1 into *x, in that order.
 */
static BlobSite *
BlobCall(FunctionCallInfo fcinfo, bool proba, const double **x)
{
	BlobSite   *site = BlobModel(fcinfo);

	if (proba)
		CheckClassifier(site->model, NULL);
	*x = model_arg_features(fcinfo, 1, site->model, site->xbuf);
	return site;
}

Datum
predict_blob(PG_FUNCTION_ARGS)
{
	const double *x;
	BlobSite   *site = BlobCall(fcinfo, false, &x);

	PG_RETURN_FLOAT8(PredictValue(site->model, x, site->scratch));
}

Datum
predict_proba_blob(PG_FUNCTION_ARGS)
{
	const double *x;
	BlobSite   *site = BlobCall(fcinfo, true, &x);

	PG_RETURN_ARRAYTYPE_P(ProbaArray(site->model, x, site->scratch));
}

/* ---------------------------------------------------------------------------
 * Prediction by name
 * ------------------------------------------------------------------------- */

/* the features of a row: model inputs matched to the row's columns by name */
const double *
model_row_features(SiteModel *sm, HeapTupleHeader th)
{
	Oid			rowtype = HeapTupleHeaderGetTypeId(th);
	int32		rowtypmod = HeapTupleHeaderGetTypMod(th);
	LoadedModel *m = sm->model;
	HeapTupleData tuple;
	uint64		rowid;

	if (m->inputs == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" has no column encoding", sm->name),
				 errhint("Pass the features as a float8[] array.")));
	rowid = assign_record_type_identifier(rowtype, rowtypmod);

	/* the identifier changes with the layout too (ALTER TABLE on a named row type) */
	if (sm->rowtype != rowtype || sm->rowtypmod != rowtypmod || sm->rowid != rowid ||
		sm->attnum == NULL)
	{
		TupleDesc	td = lookup_rowtype_tupdesc(rowtype, rowtypmod);
		MemoryContext old;

		MemoryContextReset(sm->rowcxt);
		sm->attnum = NULL;
		old = MemoryContextSwitchTo(sm->rowcxt);
		sm->natts = td->natts;
		sm->atttype = palloc(sizeof(Oid) * m->inputs->n);
		sm->values = palloc(sizeof(Datum) * Max(td->natts, 1));
		sm->nulls = palloc(sizeof(bool) * Max(td->natts, 1));
		{
			AttrNumber *attnum = palloc(sizeof(AttrNumber) * m->inputs->n);

			for (int32 i = 0; i < m->inputs->n; i++)
			{
				ModelInput *in = &m->inputs->in[i];
				InputKind	kind;

				attnum[i] = InvalidAttrNumber;
				for (int a = 0; a < td->natts; a++)
				{
					Form_pg_attribute att = TupleDescAttr(td, a);

					if (!att->attisdropped && strcmp(NameStr(att->attname), in->column) == 0)
					{
						attnum[i] = a + 1;
						sm->atttype[i] = att->atttypid;
					}
				}
				if (attnum[i] == InvalidAttrNumber)
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_COLUMN),
							 errmsg("the row has no column \"%s\", which model \"%s\" takes",
									in->column, sm->name)));
				if (!input_kind_for_type(sm->atttype[i], &kind) ||
					(kind != in->kind && !(in->kind == INPUT_NUMBER && kind == INPUT_BOOLEAN)))
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column \"%s\" has type %s but model \"%s\" takes it as a %s",
									in->column, format_type_be(sm->atttype[i]), sm->name,
									input_kind_name(in->kind))));
			}
			sm->attnum = attnum;	/* complete: only now is the mapping usable */
		}
		MemoryContextSwitchTo(old);
		ReleaseTupleDesc(td);
		sm->rowtype = rowtype;
		sm->rowtypmod = rowtypmod;
		sm->rowid = rowid;
	}

	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	{
		TupleDesc	td = lookup_rowtype_tupdesc(rowtype, rowtypmod);

		heap_deform_tuple(&tuple, td, sm->values, sm->nulls);
		ReleaseTupleDesc(td);
	}
	for (int32 i = 0; i < m->inputs->n; i++)
	{
		ModelInput *in = &m->inputs->in[i];
		AttrNumber	a = sm->attnum[i];
		Oid			t = sm->atttype[i];

		if (in->kind == INPUT_NUMBER && getBaseType(t) == BOOLOID)
			sm->xbuf[in->offset] = sm->nulls[a - 1] ? NAN :
				(DatumGetBool(sm->values[a - 1]) ? 1.0 : 0.0);
		else
			input_encode(in, sm->values[a - 1], sm->nulls[a - 1], t,
						 sm->xbuf + in->offset, false);
	}
	return sm->xbuf;
}

/*
 * What the by-name forms share: the call site's model (model_site_for_call),
 * for predict_proba the check that it is a classifier, then the features of
 * argument 1 (a float8[], or a row when `row`) into *x, in that order.
 */
static SiteModel *
NameCall(FunctionCallInfo fcinfo, bool proba, bool row, const double **x)
{
	SiteModel  *sm = model_site_for_call(fcinfo);

	if (proba)
		CheckClassifier(sm->model, sm->name);
	*x = row ? model_row_features(sm, PG_GETARG_HEAPTUPLEHEADER(1))
		: model_arg_features(fcinfo, 1, sm->model, sm->xbuf);
	return sm;
}

Datum
predict_name(PG_FUNCTION_ARGS)
{
	const double *x;
	SiteModel  *sm = NameCall(fcinfo, false, false, &x);

	PG_RETURN_FLOAT8(PredictValue(sm->model, x, sm->scratch));
}

Datum
predict_proba_name(PG_FUNCTION_ARGS)
{
	const double *x;
	SiteModel  *sm = NameCall(fcinfo, true, false, &x);

	PG_RETURN_ARRAYTYPE_P(ProbaArray(sm->model, x, sm->scratch));
}

Datum
predict_name_row(PG_FUNCTION_ARGS)
{
	const double *x;
	SiteModel  *sm = NameCall(fcinfo, false, true, &x);

	PG_RETURN_FLOAT8(PredictValue(sm->model, x, sm->scratch));
}

Datum
predict_proba_name_row(PG_FUNCTION_ARGS)
{
	const double *x;
	SiteModel  *sm = NameCall(fcinfo, true, true, &x);

	PG_RETURN_ARRAYTYPE_P(ProbaArray(sm->model, x, sm->scratch));
}

/* ---------------------------------------------------------------------------
 * feature_importance, drop_model
 * ------------------------------------------------------------------------- */

typedef struct ImpOrder
{
	int32		feature;
	double		importance;
} ImpOrder;

static int
CmpImp(const void *a, const void *b)
{
	const ImpOrder *x = a,
			   *y = b;

	if (x->importance != y->importance)
		return x->importance > y->importance ? -1 : 1;
	return x->feature - y->feature;
}

Datum
feature_importance(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	LoadedModel *m;
	ImpOrder   *ord;

	check_not_null(fcinfo, 0, "model_name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m = model_by_name(name);
	if (m->importance == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" has no feature importances", name)));

	/*
	 * The stored importances are normalised to sum to 1 over the trees that
	 * split; a forest in which no tree split (min_samples_leaf or
	 * min_samples_split larger than the data, a constant label) stores all
	 * zeros.  Its features have no importance at all: an error rather than
	 * a set of zeros that would break the sum-to-1 promise.
	 */
	{
		double		total = 0;

		for (int32 f = 0; f < m->n_features; f++)
			total += m->importance[f];
		if (!(total > 0))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("model \"%s\" has no feature importances because none of its trees made a split", name),
					 errdetail("Every tree is a single leaf, so no feature decreases the impurity."),
					 errhint("Retrain with more rows or a smaller min_samples_leaf or min_samples_split.")));
	}
	InitMaterializedSRF(fcinfo, 0);
	ord = palloc(sizeof(ImpOrder) * m->n_features);
	for (int32 f = 0; f < m->n_features; f++)
	{
		ord[f].feature = f;
		ord[f].importance = m->importance[f];
	}
	qsort(ord, m->n_features, sizeof(ImpOrder), CmpImp);
	for (int32 r = 0; r < m->n_features; r++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		int32		f = ord[r].feature;

		values[0] = CStringGetTextDatum(m->feature_names ? m->feature_names[f] : psprintf("%d", f + 1));
		values[1] = Float8GetDatum(ord[r].importance);
		values[2] = Int32GetDatum(r + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
