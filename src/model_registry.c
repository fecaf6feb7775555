/*
 * model_registry.c
 *	  The model registry: named models in media_reco.models, the per-backend
 *	  cache of loaded models, the per-call-site cache in front of it, and
 *	  storing, saving and dropping models.
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

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/itemptr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "citus.h"
#include "inputs.h"
#include "models.h"
#include "plan_cache.h"
#include "util.h"

PG_FUNCTION_INFO_V1(drop_model);
PG_FUNCTION_INFO_V1(save_model);
PG_FUNCTION_INFO_V1(model_cache_info);

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

void
model_check_name(const char *name)
{
	if (name[0] == '\0' || strlen(name) > MODEL_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model names must be 1 to %d bytes long", MODEL_NAME_MAX)));
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
 * The relation model lookups read: media_reco.models, or under Citus this
 * node's placement of it when citus_setup() made it a reference table, so
 * that predict() pushed down into a shard query on a worker can read it
 * (citus_local_placement).  Writes always go through media_reco.models.
 */
static const char *
ModelsForReading(void)
{
	Oid			relid = get_relname_relid("models", get_namespace_oid("media_reco", false));
	char	   *placement = OidIsValid(relid) ? citus_local_placement(relid) : NULL;

	return placement ? placement : "media_reco.models";
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
	const char *models;

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
	models = ModelsForReading();
	if (plan_cache_execute(psprintf("SELECT xmin, ctid FROM %s "
									"WHERE name OPERATOR(pg_catalog.=) $1", models),
						   1, types, args, NULL, true, 1) != SPI_OK_SELECT)
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

	if (plan_cache_execute(psprintf("SELECT model, inputs, feature_names FROM %s "
									"WHERE name OPERATOR(pg_catalog.=) $1", models),
						   1, types, args, NULL, true, 1) != SPI_OK_SELECT)
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

SiteModel *
model_site_for_call(FunctionCallInfo fcinfo)
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
	return model_site_for_call(fcinfo)->model;
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
