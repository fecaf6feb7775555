/*
 * models.c
 *	  The model registry: named models in media_reco.models, a per-backend
 *	  cache of loaded models, and prediction by name, by row or on a value.
 *
 * Caching.  Loading a model (detoasting and validating its bytes) can cost
 * far more than a prediction, so a backend keeps each model it has used,
 * keyed by name and tagged with the (xmin, ctid) of the row it came from,
 * as PL/pgSQL does for functions.  Any retrain or drop makes a new row
 * version (or none), so a stale copy is never used: each call site checks
 * the tag once per query with a cheap index lookup that does not read the
 * model bytes, and then reuses the pointer for every row.
 */
#include "postgres.h"

#include <math.h>

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "storage/itemptr.h"
#include "utils/rel.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "inputs.h"
#include "forest.h"
#include "models.h"
#include "source.h"
#include "util.h"

PG_FUNCTION_INFO_V1(predict_blob);
PG_FUNCTION_INFO_V1(predict_proba_blob);
PG_FUNCTION_INFO_V1(predict_name);
PG_FUNCTION_INFO_V1(predict_proba_name);
PG_FUNCTION_INFO_V1(predict_name_row);
PG_FUNCTION_INFO_V1(predict_proba_name_row);
PG_FUNCTION_INFO_V1(feature_importance);
PG_FUNCTION_INFO_V1(drop_model);
PG_FUNCTION_INFO_V1(train_forest);
PG_FUNCTION_INFO_V1(save_model);
PG_FUNCTION_INFO_V1(model_cache_info);

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
		Forest	   *f = forest_load(&r);

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

static ArrayType *
ProbaArray(const double *p, int32 n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int32 i = 0; i < n; i++)
		d[i] = Float8GetDatum(p[i]);
	return construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
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

static const double *
ArgFeatures(FunctionCallInfo fcinfo, int argno, const LoadedModel *m, double *buf)
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

Datum
predict_blob(PG_FUNCTION_ARGS)
{
	BlobSite   *site = BlobModel(fcinfo);
	const double *x = ArgFeatures(fcinfo, 1, site->model, site->xbuf);

	PG_RETURN_FLOAT8(PredictValue(site->model, x, site->scratch));
}

Datum
predict_proba_blob(PG_FUNCTION_ARGS)
{
	BlobSite   *site = BlobModel(fcinfo);
	const double *x;

	CheckClassifier(site->model, NULL);
	x = ArgFeatures(fcinfo, 1, site->model, site->xbuf);
	model_predict_raw(site->model, x, site->scratch);
	PG_RETURN_ARRAYTYPE_P(ProbaArray(site->scratch, site->model->n_classes));
}

/* ---------------------------------------------------------------------------
 * The named-model cache
 * ------------------------------------------------------------------------- */

typedef struct CacheEntry
{
	char		name[NAMEDATALEN];	/* key */
	TransactionId xmin;
	ItemPointerData tid;
	LoadedModel *model;
	int64		loads;			/* times the bytes were read and validated */
	int64		checks;			/* times the row tag was looked up */
} CacheEntry;

static HTAB *model_cache = NULL;
static uint64 cache_generation = 1;	/* bumped whenever a cached model is freed */
static SPIPlanPtr tag_plan = NULL;
static SPIPlanPtr load_plan = NULL;

void
model_check_name(const char *name)
{
	if (name[0] == '\0' || strlen(name) > MODEL_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model names must be 1 to %d bytes long", MODEL_NAME_MAX)));
}

static SPIPlanPtr
KeptPlan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*slot = p;
	}
	return *slot;
}

static void
Evict(CacheEntry *e)
{
	if (e->model)
		MemoryContextDelete(e->model->cxt);
	e->model = NULL;
	cache_generation++;
}

/* forget the cached model of `name`; `remove` also drops its counters (the model is gone) */
static void
EvictName(const char *name, bool remove)
{
	char		key[NAMEDATALEN];
	CacheEntry *e;

	if (model_cache == NULL || strlen(name) > MODEL_NAME_MAX)
		return;
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	e = hash_search(model_cache, key, HASH_FIND, NULL);
	if (e)
	{
		Evict(e);
		if (remove)
			hash_search(model_cache, key, HASH_REMOVE, NULL);
	}
}

static void
UnknownModel(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("model \"%s\" does not exist", name),
			 errhint("Train one with media_reco.train_forest, or list them in media_reco.models.")));
}

/*
 * The model stored under `name`, loaded at most once per row version.  The
 * row's tag is read through SPI, so the caller's privileges and row-level
 * security on media_reco.models apply.
 */
LoadedModel *
model_by_name(const char *name)
{
	char		key[NAMEDATALEN];
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	CacheEntry *e;
	bool		found;
	TransactionId xmin;
	ItemPointerData tid;
	bool		isnull;
	LoadedModel *m = NULL;

	if (strlen(name) > MODEL_NAME_MAX || name[0] == '\0')
		UnknownModel(name);
	if (model_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(CacheEntry);
		ctl.hcxt = CacheMemoryContext;
		model_cache = hash_create("media_reco models", 16, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	args[0] = CStringGetTextDatum(name);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(KeptPlan(&tag_plan,
								  "SELECT xmin, ctid FROM media_reco.models "
								  "WHERE name OPERATOR(pg_catalog.=) $1",
								  1, types),
						 args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "model lookup failed");
	if (SPI_processed == 0)
	{
		SPI_finish();
		EvictName(name, true);
		UnknownModel(name);
	}
	xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2, &isnull)),
					&tid);

	e = hash_search(model_cache, key, HASH_ENTER, &found);
	if (!found)
	{
		e->model = NULL;
		e->loads = e->checks = 0;
	}
	e->checks++;
	if (e->model && TransactionIdEquals(e->xmin, xmin) && ItemPointerEquals(&e->tid, &tid))
	{
		SPI_finish();
		return e->model;
	}
	if (e->model)
		Evict(e);

	if (SPI_execute_plan(KeptPlan(&load_plan,
								  "SELECT model, inputs, feature_names FROM media_reco.models "
								  "WHERE name OPERATOR(pg_catalog.=) $1",
								  1, types),
						 args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "model load failed");
	if (SPI_processed != 1)
	{
		SPI_finish();
		UnknownModel(name);		/* vanished between the two reads (row-level security) */
	}
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	td = SPI_tuptable->tupdesc;
		MemoryContext cxt;
		MemoryContext old;
		Datum		d;
		bool		inull,
					fnull;
		bytea	   *blob;

		/* the bytes are detoasted in SPI's memory, freed at SPI_finish */
		d = SPI_getbinval(tup, td, 1, &isnull);
		if (isnull)
			blob_corrupt("The model column is NULL.");
		blob = DatumGetByteaPP(d);
		cxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco cached model",
									ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(cxt);
		m = model_load_blob(blob);
		m->cxt = cxt;
		d = SPI_getbinval(tup, td, 2, &inull);
		if (!inull)
			m->inputs = inputs_from_jsonb(DatumGetJsonbP(d), m->n_features);
		d = SPI_getbinval(tup, td, 3, &fnull);
		if (!fnull)
		{
			ArrayType  *a = DatumGetArrayTypeP(d);
			Datum	   *el;
			bool	   *nl;
			int			ne;

			deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &el, &nl, &ne);
			if (ne == m->n_features)
			{
				m->feature_names = palloc(sizeof(char *) * ne);
				for (int i = 0; i < ne; i++)
					m->feature_names[i] = nl[i] ? psprintf("%d", i + 1) : TextDatumGetCString(el[i]);
			}
		}
		MemoryContextSwitchTo(old);
		/* only a fully loaded model enters the cache */
		MemoryContextSetParent(cxt, CacheMemoryContext);
	}
	e->model = m;
	e->loads++;
	e->xmin = xmin;
	e->tid = tid;
	SPI_finish();
	return m;
}

/* model_cache(): what this backend holds, for monitoring and tests */
Datum
model_cache_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS st;
	CacheEntry *e;

	InitMaterializedSRF(fcinfo, 0);
	if (model_cache == NULL)
		return (Datum) 0;
	hash_seq_init(&st, model_cache);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(e->name);
		values[1] = Int64GetDatum(e->model ? (int64) MemoryContextMemAllocated(e->model->cxt, true) : 0);
		nulls[1] = e->model == NULL;
		values[2] = Int64GetDatum(e->loads);
		values[3] = Int64GetDatum(e->checks);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Per call site: the models used there lately, each with its buffers and its
 * row mapping in a memory context of its own.  A call site that alternates
 * between models (predict(m.name, u) over a join of models and users) keeps
 * up to SITE_MODELS of them without a lookup per row or memory growing per
 * switch.
 *
 * The entries are valid for one snapshot: a model row is looked up again
 * when the active snapshot changes (xmin, xmax or command id: something
 * committed, or this transaction moved on), which is once per query for SQL
 * but also at each statement of a PL/pgSQL function, whose call sites live
 * for the whole transaction.  They are also dropped when this backend frees
 * any cached model (cache_generation).
 */
#define SITE_MODELS 4

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

typedef struct NameSite
{
	uint64		generation;
	bool		snap_valid;
	TransactionId snap_xmin;
	TransactionId snap_xmax;
	CommandId	snap_cid;
	int			next_victim;
	SiteModel	slot[SITE_MODELS];
} NameSite;

static SiteModel *
NamedModel(FunctionCallInfo fcinfo)
{
	NameSite   *site = (NameSite *) fcinfo->flinfo->fn_extra;
	text	   *t = PG_GETARG_TEXT_PP(0);
	int			len = VARSIZE_ANY_EXHDR(t);
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;
	SiteModel  *sm = NULL;
	LoadedModel *m;

	if (site == NULL)
	{
		site = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(NameSite));
		for (int i = 0; i < SITE_MODELS; i++)
		{
			site->slot[i].cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "media_reco call site model",
													  ALLOCSET_SMALL_SIZES);
			site->slot[i].rowcxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "media_reco call site row map",
														 ALLOCSET_SMALL_SIZES);
		}
		fcinfo->flinfo->fn_extra = site;
	}

	/* a new snapshot or a freed model: every entry is looked up again */
	if (site->generation != cache_generation || snap == NULL || !site->snap_valid ||
		site->snap_xmin != snap->xmin || site->snap_xmax != snap->xmax || site->snap_cid != snap->curcid)
	{
		for (int i = 0; i < SITE_MODELS; i++)
			site->slot[i].model = NULL;
		site->generation = cache_generation;
		site->snap_valid = snap != NULL;
		if (snap)
		{
			site->snap_xmin = snap->xmin;
			site->snap_xmax = snap->xmax;
			site->snap_cid = snap->curcid;
		}
	}
	else
	{
		for (int i = 0; i < SITE_MODELS; i++)
		{
			SiteModel  *c = &site->slot[i];

			if (c->model && len == (int) strlen(c->name) && memcmp(VARDATA_ANY(t), c->name, len) == 0)
				return c;
		}
	}

	m = model_by_name(text_to_cstring(t));	/* may free cached models: cache_generation moves */

	/* a free slot, else the oldest */
	for (int i = 0; i < SITE_MODELS && sm == NULL; i++)
		if (site->slot[i].model == NULL)
			sm = &site->slot[i];
	if (sm == NULL)
	{
		sm = &site->slot[site->next_victim];
		site->next_victim = (site->next_victim + 1) % SITE_MODELS;
	}
	MemoryContextReset(sm->cxt);
	MemoryContextReset(sm->rowcxt);
	sm->scratch = MemoryContextAlloc(sm->cxt, sizeof(double) * Max(m->n_classes, 1));
	sm->xbuf = MemoryContextAlloc(sm->cxt, sizeof(double) * Max(m->n_features, 1));
	sm->attnum = NULL;
	sm->rowtype = InvalidOid;
	sm->model = m;
	memset(sm->name, 0, sizeof(sm->name));
	memcpy(sm->name, VARDATA_ANY(t), Min(len, MODEL_NAME_MAX));

	/*
	 * model_by_name may have freed other cached models, which other slots
	 * could point at: keep only this one.
	 */
	if (site->generation != cache_generation)
	{
		for (int i = 0; i < SITE_MODELS; i++)
			if (&site->slot[i] != sm)
				site->slot[i].model = NULL;
		site->generation = cache_generation;
	}
	return sm;
}

LoadedModel *
model_for_call(FunctionCallInfo fcinfo)
{
	return NamedModel(fcinfo)->model;
}

Datum
predict_name(PG_FUNCTION_ARGS)
{
	SiteModel  *sm = NamedModel(fcinfo);
	const double *x = ArgFeatures(fcinfo, 1, sm->model, sm->xbuf);

	PG_RETURN_FLOAT8(PredictValue(sm->model, x, sm->scratch));
}

Datum
predict_proba_name(PG_FUNCTION_ARGS)
{
	SiteModel  *sm = NamedModel(fcinfo);
	const double *x;

	CheckClassifier(sm->model, sm->name);
	x = ArgFeatures(fcinfo, 1, sm->model, sm->xbuf);
	model_predict_raw(sm->model, x, sm->scratch);
	PG_RETURN_ARRAYTYPE_P(ProbaArray(sm->scratch, sm->model->n_classes));
}

/* the features of a row: model inputs matched to the row's columns by name */
static const double *
RowFeatures(FunctionCallInfo fcinfo, SiteModel *sm)
{
	HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(1);
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

Datum
predict_name_row(PG_FUNCTION_ARGS)
{
	SiteModel  *sm = NamedModel(fcinfo);
	const double *x = RowFeatures(fcinfo, sm);

	PG_RETURN_FLOAT8(PredictValue(sm->model, x, sm->scratch));
}

Datum
predict_proba_name_row(PG_FUNCTION_ARGS)
{
	SiteModel  *sm = NamedModel(fcinfo);
	const double *x;

	CheckClassifier(sm->model, sm->name);
	x = RowFeatures(fcinfo, sm);
	model_predict_raw(sm->model, x, sm->scratch);
	PG_RETURN_ARRAYTYPE_P(ProbaArray(sm->scratch, sm->model->n_classes));
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

Datum
drop_model(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			types[1] = {TEXTOID};
	Datum		args[1];

	check_not_null(fcinfo, 0, "model_name");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("DELETE FROM media_reco.models WHERE name OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "model delete failed");
	if (SPI_processed == 0)
		UnknownModel(name);
	SPI_finish();
	EvictName(name, true);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------------
 * Storing a model
 * ------------------------------------------------------------------------- */

static ArrayType *
TextArray(char **s, int32 n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int32 i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(s[i]);
	return construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* insert or replace the row of `name`; the caller is connected to SPI */
void
model_store(const char *name, const char *algorithm, bool regression,
			const LoadedModel *shape, char **feature_names, Jsonb *inputs,
			Jsonb *options, Jsonb *metrics, const char *label, const char *source,
			bytea *blob)
{
	Oid			types[11] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, FLOAT8ARRAYOID,
	JSONBOID, JSONBOID, TEXTOID, TEXTOID, JSONBOID, BYTEAOID};
	Datum		args[11];
	char		nulls[11];

	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(algorithm);
	args[2] = CStringGetTextDatum(regression ? "regression" : "classification");
	args[3] = PointerGetDatum(TextArray(feature_names, shape->n_features));
	if (shape->n_classes > 0)
	{
		Datum	   *d = palloc(sizeof(Datum) * shape->n_classes);

		for (int32 c = 0; c < shape->n_classes; c++)
			d[c] = Float8GetDatum(shape->classes[c]);
		args[4] = PointerGetDatum(construct_array(d, shape->n_classes, FLOAT8OID, sizeof(float8),
												  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	}
	else
		nulls[4] = 'n';
	args[5] = JsonbPGetDatum(options);
	args[6] = JsonbPGetDatum(metrics);
	args[7] = label ? CStringGetTextDatum(label) : (Datum) 0;
	nulls[7] = label ? ' ' : 'n';
	args[8] = source ? CStringGetTextDatum(source) : (Datum) 0;
	nulls[8] = source ? ' ' : 'n';
	args[9] = inputs ? JsonbPGetDatum(inputs) : (Datum) 0;
	nulls[9] = inputs ? ' ' : 'n';
	args[10] = PointerGetDatum(blob);
	if (SPI_execute_with_args(
							  "INSERT INTO media_reco.models AS m (name, algorithm, task, feature_names, classes, "
							  "options, metrics, label, source, inputs, model, trained_at) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, pg_catalog.now()) "
							  "ON CONFLICT (name) DO UPDATE SET algorithm = EXCLUDED.algorithm, "
							  "task = EXCLUDED.task, feature_names = EXCLUDED.feature_names, "
							  "classes = EXCLUDED.classes, options = EXCLUDED.options, "
							  "metrics = EXCLUDED.metrics, label = EXCLUDED.label, "
							  "source = EXCLUDED.source, inputs = EXCLUDED.inputs, "
							  "model = EXCLUDED.model, trained_at = EXCLUDED.trained_at",
							  11, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "storing the model failed");
	EvictName(name, false);
}

/*
 * save_model(model_name, model bytea, feature_names text[]): store a model
 * value (e.g. from forest_fit) under a name; its input is one float8[]
 * column called "features".
 */
Datum
save_model(PG_FUNCTION_ARGS)
{
	char	   *name;
	bytea	   *blob;
	LoadedModel *m;
	char	  **names;
	ModelInputs mi;
	ModelInput	in;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "model");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	model_check_name(name);
	blob = PG_GETARG_BYTEA_P(1);
	m = model_load_blob(blob);
	names = palloc(sizeof(char *) * m->n_features);
	if (!PG_ARGISNULL(2))
	{
		ArrayType  *a = PG_GETARG_ARRAYTYPE_P(2);
		Datum	   *el;
		bool	   *nl;
		int			ne;

		if (ARR_NDIM(a) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("feature_names must be a one-dimensional array")));
		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &el, &nl, &ne);
		if (ne != m->n_features)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the model takes %d features but %d feature names were given",
							m->n_features, ne)));
		for (int i = 0; i < ne; i++)
		{
			if (nl[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("feature names must not be NULL")));
			names[i] = TextDatumGetCString(el[i]);
		}
	}
	else
		for (int32 i = 0; i < m->n_features; i++)
			names[i] = psprintf("features[%d]", i + 1);

	memset(&in, 0, sizeof(in));
	in.column = "features";
	in.kind = INPUT_ARRAY;
	in.width = m->n_features;
	mi.n = 1;
	mi.in = &in;
	inputs_layout(&mi);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	model_store(name, m->kind == MODEL_KIND_FOREST ? "random_forest" : "mlp", m->regression,
				m, names, inputs_to_jsonb(&mi),
				DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))),
				DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))),
				NULL, NULL, blob);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------------
 * train_forest
 * ------------------------------------------------------------------------- */

/* resolve the label and feature columns of relid into inputs */
static void
ResolveColumns(Oid relid, const char *label, ArrayType *cols, AttrNumber *label_att,
			   Oid *label_type, ModelInputs *mi, List **atts)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	td = RelationGetDescr(rel);
	InputKind	kind;
	int			n = 0;
	ModelInput *in = palloc0(sizeof(ModelInput) * Max(td->natts, 1));

	*label_att = InvalidAttrNumber;
	for (int a = 0; a < td->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(td, a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), label) == 0)
		{
			*label_att = a + 1;
			*label_type = att->atttypid;
		}
	}
	if (*label_att == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("label column \"%s\" does not exist in relation \"%s\"",
						label, RelationGetRelationName(rel))));
	if (!input_kind_for_type(*label_type, &kind) || (kind != INPUT_NUMBER && kind != INPUT_BOOLEAN))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label column \"%s\" has type %s", label, format_type_be(*label_type)),
				 errdetail("Labels must be numbers (class ids or regression targets) or booleans."),
				 errhint("Map text labels to numbers first, e.g. CASE plan WHEN 'basic' THEN 0 ... END in a view.")));

	*atts = NIL;
	if (cols == NULL)
	{
		for (int a = 0; a < td->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(td, a);

			if (att->attisdropped || a + 1 == *label_att ||
				!input_kind_for_type(att->atttypid, &kind))
				continue;
			in[n].column = pstrdup(NameStr(att->attname));
			in[n].kind = kind;
			in[n].width = kind == INPUT_ARRAY ? 0 : 1;
			*atts = lappend_int(*atts, a + 1);
			n++;
		}
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("relation \"%s\" has no column usable as a feature besides the label",
							RelationGetRelationName(rel)),
					 errdetail("Features are numbers, booleans, text or enum categories, and numeric arrays.")));
	}
	else
	{
		Datum	   *el;
		bool	   *nl;
		int			ne;

		if (ARR_NDIM(cols) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("feature_cols must be a one-dimensional array")));
		deconstruct_array(cols, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &el, &nl, &ne);
		if (ne == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature_cols must not be empty"),
					 errhint("Pass NULL to use every other column.")));
		in = repalloc(in, sizeof(ModelInput) * Max(ne, 1));
		for (int i = 0; i < ne; i++)
		{
			const char *c;
			AttrNumber	found = InvalidAttrNumber;
			Oid			typ = InvalidOid;

			if (nl[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("feature_cols must not contain NULL")));
			c = NameStr(*DatumGetName(el[i]));
			for (int a = 0; a < td->natts; a++)
			{
				Form_pg_attribute att = TupleDescAttr(td, a);

				if (!att->attisdropped && strcmp(NameStr(att->attname), c) == 0)
				{
					found = a + 1;
					typ = att->atttypid;
				}
			}
			if (found == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("feature column \"%s\" does not exist in relation \"%s\"",
								c, RelationGetRelationName(rel))));
			if (found == *label_att)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" is the label and cannot also be a feature", c)));
			for (int j = 0; j < n; j++)
				if (strcmp(in[j].column, c) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_DUPLICATE_COLUMN),
							 errmsg("feature column \"%s\" is listed twice", c)));
			if (!input_kind_for_type(typ, &kind))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("feature column \"%s\" has type %s, which is not a supported feature type",
								c, format_type_be(typ)),
						 errdetail("Features are numbers, booleans, text or enum categories, and numeric arrays.")));
			in[n].column = pstrdup(c);
			in[n].kind = kind;
			in[n].width = kind == INPUT_ARRAY ? 0 : 1;
			*atts = lappend_int(*atts, found);
			n++;
		}
	}
	mi->n = n;
	mi->in = in;
	relation_close(rel, AccessShareLock);
}

/* the width of each array input: the length of its first non-NULL value */
static void
ArrayWidths(ModelInputs *mi, const char *relname)
{
	for (int32 i = 0; i < mi->n; i++)
	{
		ModelInput *in = &mi->in[i];
		char	   *sql;
		bool		isnull;
		Datum		d;

		if (in->kind != INPUT_ARRAY)
			continue;
		sql = psprintf("SELECT pg_catalog.cardinality(%s) FROM %s WHERE %s IS NOT NULL LIMIT 1",
					   quote_identifier(in->column), relname, quote_identifier(in->column));
		if (SPI_execute(sql, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "array length query failed");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("array column \"%s\" holds no non-NULL value", in->column),
					 errhint("Leave it out of feature_cols.")));
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		in->width = isnull ? 0 : DatumGetInt32(d);
		if (in->width < 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("array column \"%s\" holds empty arrays", in->column)));
	}
	inputs_layout(mi);
}

/*
 * Read the training rows of a relation by column names (SPI connected):
 * labels (NULL skipped) and features encoded by `td->mi`, in td->cxt.
 */
void
model_read_training(Oid relid, const char *label, ArrayType *cols, TrainingData *td)
{
	AttrNumber	label_att;
	List	   *atts;
	StringInfoData sql;
	Portal		portal;
	MemoryContext old;

	td->label = pstrdup(label);
	td->relname = source_lock_relation(relid);
	td->label_type = InvalidOid;
	ResolveColumns(relid, label, cols, &label_att, &td->label_type, &td->mi, &atts);
	ArrayWidths(&td->mi, td->relname);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s", quote_identifier(label));
	for (int32 i = 0; i < td->mi.n; i++)
		appendStringInfo(&sql, ", %s", quote_identifier(td->mi.in[i].column));
	appendStringInfo(&sql, " FROM %s", td->relname);

	old = MemoryContextSwitchTo(td->cxt);
	train_rows_init(&td->rows, td->mi.n_features, work_memory_limit());
	MemoryContextSwitchTo(old);

	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		old = MemoryContextSwitchTo(td->cxt);
		train_rows_reserve(&td->rows, (int64) SPI_processed);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	tdesc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		d = SPI_getbinval(tup, tdesc, 1, &isnull);
			double		y;
			double	   *xrow = td->rows.x + td->rows.n * td->rows.nf;

			if (isnull)
				continue;		/* rows without a label are skipped */
			if (getBaseType(td->label_type) == BOOLOID)
				y = DatumGetBool(d) ? 1.0 : 0.0;
			else
			{
				ModelInput	lab = {.column = (char *) label, .kind = INPUT_NUMBER, .width = 1};

				input_encode(&lab, d, false, td->label_type, &y, false);
			}
			check_label(y);
			for (int32 i = 0; i < td->mi.n; i++)
			{
				Datum		v = SPI_getbinval(tup, tdesc, i + 2, &isnull);

				input_encode(&td->mi.in[i], v, isnull, SPI_gettypeid(tdesc, i + 2),
							 xrow + td->mi.in[i].offset, true);
			}
			td->rows.y[td->rows.n++] = y;
		}
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	old = MemoryContextSwitchTo(td->cxt);
	inputs_finish_training(&td->mi, td->rows.x, td->rows.n);
	MemoryContextSwitchTo(old);
}

Datum
train_forest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	Jsonb	   *opts;
	ForestParams p;
	MemoryContext old;
	TrainingData td;
	instr_time	start;
	ForestTrainInfo info;
	bytea	   *blob;
	LoadedModel shape;
	int			nthreads = media_reco_threads;
	double		seconds;
	Jsonb	   *metrics;
	int32		nf;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "source");
	check_not_null(fcinfo, 2, "label_col");
	check_not_null(fcinfo, 4, "options");
	INSTR_TIME_SET_CURRENT(start);
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	model_check_name(name);
	opts = PG_GETARG_JSONB_P(4);
	forest_options_parse(opts, &p);

	td.cxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco train_forest",
								   ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	model_read_training(PG_GETARG_OID(1), NameStr(*PG_GETARG_NAME(2)),
						PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3), &td);
	nf = td.rows.nf;

	old = MemoryContextSwitchTo(td.cxt);
	blob = forest_train(td.rows.n, td.rows.nf, td.rows.x, td.rows.y, &p, nthreads,
						work_memory_limit(), &interrupt_hooks, &info);
	MemoryContextSwitchTo(old);
	pfree(td.rows.x);
	pfree(td.rows.y);
	seconds = elapsed_seconds(start);

	memset(&shape, 0, sizeof(shape));
	shape.n_features = nf;
	shape.n_classes = info.n_classes;
	shape.classes = info.classes;
	{
		char	   *m = psprintf("{\"rows\": %lld, \"oob_score\": %s, \"seconds\": %.6f, "
								 "\"memory_bytes\": %zu, \"nodes\": %lld, \"threads\": %d}",
								 (long long) info.rows,
								 isnan(info.oob_score) ? "null" : psprintf("%.17g", info.oob_score),
								 seconds, info.memory, (long long) info.nodes, nthreads);

		metrics = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(m)));
	}
	model_store(name, "random_forest", p.task == FOREST_REGRESSION, &shape,
				inputs_feature_names(&td.mi), inputs_to_jsonb(&td.mi), forest_options_jsonb(&p, nf),
				metrics, td.label, td.relname, blob);
	SPI_finish();
	MemoryContextDelete(td.cxt);

	InitMaterializedSRF(fcinfo, 0);
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(name);
		values[1] = Int64GetDatum(info.rows);
		values[2] = Int32GetDatum(nf);
		values[3] = Int32GetDatum(info.n_classes);
		values[4] = Float8GetDatum(info.oob_score);
		nulls[4] = isnan(info.oob_score);
		values[5] = Float8GetDatum(seconds);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
