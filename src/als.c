/*
 * als.c
 *	  train_als, drop_als_model, recommend_als, similar_items_als and
 *	  als_user_vector: implicit ALS (als_core.c) over a source relation,
 *	  its factor tables, and the per-backend cache that serves them.
 *
 * Training reads the source with the recommenders' rules (source.c: NULL
 * rows skipped, duplicates summed, optional time decay), so a user's
 * weights are the ones recommend() sees.  The registry row in
 * media_reco.als_models is inserted or updated first, which locks it: a
 * second train_als of the same name waits for the first.  The factors are
 * computed in memory, the model's old rows deleted and the new ones
 * inserted straight into the heap and its indexes, and the registry row
 * updated, all in the caller's transaction: under MVCC a reader sees the
 * whole old model or the whole new one, and an error, cancel or crash
 * leaves the old one.  The tables are ordinary WAL-logged tables (standbys
 * and pg_dump see them).
 *
 * Serving.  recommend_als scores every item, score = x_u . y_j, which is
 * one matrix-vector product (sgemv) over the item factors.  A backend keeps
 * each model's item factors it has used as one row-major float matrix with
 * the ids sorted beside it, their norms (similar_items_als) and Y'Y in
 * double (recalculate), keyed by name and tagged with the (xmin, ctid) of
 * the registry row it was loaded for, as model_registry.c does for
 * forests.  Every train_als writes a new registry row version, so a stale
 * copy is never used; the tag is checked with the registry row, which every
 * call reads anyway (source, columns, options).  The factor tables are
 * written by train_als only: rows changed by hand are seen after the next
 * train_als (or in a new backend).
 */
#include "postgres.h"

#include <math.h>
#include <cblas.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "portability/instr_time.h"
#include "storage/itemptr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "als.h"
#include "als_core.h"
#include "citus.h"
#include "plan_cache.h"
#include "serving.h"
#include "simcore.h"
#include "source.h"
#include "topk.h"
#include "util.h"

PG_FUNCTION_INFO_V1(train_als);
PG_FUNCTION_INFO_V1(drop_als_model);
PG_FUNCTION_INFO_V1(recommend_als);
PG_FUNCTION_INFO_V1(recommend_all_als);
PG_FUNCTION_INFO_V1(similar_items_als);
PG_FUNCTION_INFO_V1(als_user_vector);

/*
 * The defaults of the options without an obvious value; the README
 * ("Implicit ALS") says how they were chosen.
 */
#define ALS_DEFAULT_FACTORS 64
#define ALS_DEFAULT_LAMBDA 30.0
#define ALS_DEFAULT_ALPHA 2.0
#define ALS_DEFAULT_ITERATIONS 15
#define ALS_DEFAULT_CG_STEPS 3

#define ALS_NAME_MAX (NAMEDATALEN - 1)

/* ---------- options ---------- */

/* what the options object sets: the training parameters and the decay */
typedef struct AlsOptions
{
	AlsParams	p;
	char	   *time_col;		/* NULL: no decay */
	char	   *half_life;		/* as given (any IntervalStyle's input form) */
	double		half_life_s;
} AlsOptions;

static void
RaiseCore(CoreStatus st, const CoreError *err)
{
	if (st != CORE_OK)
		core_pg_raise(err);
}

/* Parse (and check) an options object; every bad key or value is 22023 naming it. */
static void
AlsOptionsParse(Jsonb *opts, AlsOptions *o)
{
	OptionReader r;
	char	   *key;
	JsonbValue	v;
	CoreError	err;

	memset(o, 0, sizeof(*o));
	o->p.factors = ALS_DEFAULT_FACTORS;
	o->p.regularization = ALS_DEFAULT_LAMBDA;
	o->p.alpha = ALS_DEFAULT_ALPHA;
	o->p.iterations = ALS_DEFAULT_ITERATIONS;
	o->p.cg_steps = ALS_DEFAULT_CG_STEPS;
	o->p.seed = 0;
	options_begin(&r, opts);
	while (options_next(&r, &key, &v))
	{
		if (strcmp(key, "factors") == 0)
			o->p.factors = (int32) option_number(key, &v, 1, ALS_MAX_FACTORS, true,
												 "an integer between 1 and 1024");
		else if (strcmp(key, "regularization") == 0)
		{
			o->p.regularization = option_number(key, &v, 0, 1e12, false, "a number > 0");
			if (!(o->p.regularization > 0))
				option_invalid(key, "a number > 0");
		}
		else if (strcmp(key, "alpha") == 0)
			o->p.alpha = option_number(key, &v, 0, 1e12, false, "a number >= 0");
		else if (strcmp(key, "iterations") == 0)
			o->p.iterations = (int32) option_number(key, &v, 1, ALS_MAX_ITERATIONS, true,
													"an integer between 1 and 10000");
		else if (strcmp(key, "cg_steps") == 0)
			o->p.cg_steps = (int32) option_number(key, &v, 0, ALS_MAX_CG_STEPS, true,
												  "an integer between 0 and 1000");
		else if (strcmp(key, "seed") == 0)
			o->p.seed = (int64) option_number(key, &v, -4503599627370496.0, 4503599627370496.0, true,
											  "an integer");
		else if (strcmp(key, "time_col") == 0)
			o->time_col = option_string(key, &v, "a column name");
		else if (strcmp(key, "half_life") == 0)
		{
			Interval   *iv;

			o->half_life = option_string(key, &v, "an interval such as '30 days'");
			iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(o->half_life),
													   ObjectIdGetDatum(InvalidOid),
													   Int32GetDatum(-1)));
			o->half_life_s = interval_seconds(iv);
			if (!(o->half_life_s > 0) || isinf(o->half_life_s))
				option_invalid(key, "a positive interval");
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\"", key),
					 errhint("Options are factors, regularization, alpha, iterations, cg_steps, seed, time_col and half_life.")));
	}
	if ((o->time_col == NULL) != (o->half_life == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options time_col and half_life must be given together")));
	RaiseCore(als_check_params(&o->p, &err), &err);
}

/* The options in effect as a JSON object's text (every key, defaults included). */
static char *
AlsOptionsText(const AlsOptions *o)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfo(&b, "{\"factors\": %d, \"regularization\": %.17g, \"alpha\": %.17g,"
					 " \"iterations\": %d, \"cg_steps\": %d, \"seed\": " INT64_FORMAT,
					 o->p.factors, o->p.regularization, o->p.alpha, o->p.iterations,
					 o->p.cg_steps, o->p.seed);
	if (o->time_col)
	{
		appendStringInfoString(&b, ", \"time_col\": ");
		escape_json(&b, o->time_col);
		appendStringInfoString(&b, ", \"half_life\": ");
		escape_json(&b, o->half_life);
	}
	appendStringInfoChar(&b, '}');
	return b.data;
}

static void
CheckModelName(const char *name)
{
	if (name[0] == '\0' || strlen(name) > ALS_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ALS model names must be 1 to %d bytes long", ALS_NAME_MAX)));
}

static void
UnknownModel(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("ALS model \"%s\" does not exist", name),
			 errhint("Train one with media_reco.train_als, or list them in media_reco.als_models.")));
}

static Oid
MediaRecoRelid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, get_namespace_oid("media_reco", false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table media_reco.%s does not exist", relname),
				 errhint("Update the extension: ALTER EXTENSION media_reco UPDATE.")));
	return relid;
}

/* ---------- training ---------- */

/* what the per-iteration NOTICE needs */
typedef struct IterationReport
{
	const char *name;
	double	   *seconds;		/* summed */
} IterationReport;

static void
ReportIteration(void *arg, int iteration, double loss, double seconds)
{
	IterationReport *ir = arg;

	*ir->seconds += seconds;
	ereport(NOTICE,
			(errmsg("media_reco: als model \"%s\": iteration %d loss %.6g in %.3f s",
					ir->name, iteration, loss, seconds)));
}

/*
 * 22023 naming the weight column when a (user, item) pair's summed weight
 * is <= 0: its confidence 1 + alpha w would not exceed an unobserved
 * pair's.
 */
static void
CheckPositiveWeights(const InteractionMatrix *m, const SourceSpec *src)
{
	for (int32 u = 0; u < m->n_users; u++)
		for (int64 e = m->u_ptr[u]; e < m->u_ptr[u + 1]; e++)
			if (!(m->u_w[e] > 0))
			{
				if (src->weight_col)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("weight column \"%s\" sums to %g for user " INT64_FORMAT " and item " INT64_FORMAT,
									src->weight_col, m->u_w[e], m->user_ids[u], m->item_ids[m->u_item[e]]),
							 errdetail("ALS needs every (user, item) pair's summed weight to be > 0: its confidence is 1 + alpha * weight."),
							 errhint("Filter the rows with a view, e.g. WHERE %s > 0.",
									 quote_identifier(src->weight_col))));
				else
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("decayed weight is 0 for user " INT64_FORMAT " and item " INT64_FORMAT,
									m->user_ids[u], m->item_ids[m->u_item[e]]),
							 errdetail("The interaction is so old that 0.5^(age / half_life) underflows."),
							 errhint("Use a longer half_life or filter old rows.")));
			}
}

/* The heap insert path checks what INSERT would: the privilege, and refuses row-level security. */
static void
CheckWritable(Oid relid, const char *relname)
{
	AttrNumber	cols[3] = {1, 2, 3};

	check_relation_privilege(relid, ACL_INSERT, cols, 3);
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("row-level security on media_reco.%s is not supported", relname)));
}

/*
 * WriteFactors for a table that Citus manages (a reference table after
 * media_reco.citus_setup()): its heap here is a shell, so the rows are
 * INSERTs through the planner (batched).
 */
static void
WriteFactorsByQuery(Oid relid, const char *model, const int64 *ids, const double *f_, int32 n, int32 f)
{
	Oid			types[3] = {TEXTOID, INT8OID, FLOAT4ARRAYOID};
	bool		items = strcmp(get_rel_name(relid), "item_factors") == 0;
	CitusInsertBatch *batch = citus_insert_begin(items
												 ? "media_reco.item_factors (model, item_id, factors)"
												 : "media_reco.user_factors (model, user_id, factors)",
												 3, types);
	Datum		args[3];
	Datum	   *el = palloc(sizeof(Datum) * f);

	args[0] = CStringGetTextDatum(model);
	for (int32 r = 0; r < n; r++)
	{
		MemoryContext old = MemoryContextSwitchTo(citus_insert_context(batch));

		for (int32 k = 0; k < f; k++)
			el[k] = Float4GetDatum((float4) f_[(size_t) r * f + k]);
		args[1] = Int64GetDatum(ids[r]);
		args[2] = PointerGetDatum(construct_array(el, f, FLOAT4OID, 4, true, TYPALIGN_INT));
		MemoryContextSwitchTo(old);
		citus_insert_row(batch, args);
	}
	citus_insert_end(batch);
}

/* Insert (model, id, factors real[]) for every row straight into the heap and its indexes. */
static void
WriteFactors(Oid relid, const char *model, const int64 *ids, const double *f_, int32 n, int32 f)
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	BulkInsertState bistate;
	CommandId	cid;
	MemoryContext rowcxt,
				old;
	Datum		model_d = CStringGetTextDatum(model);
	Datum	   *el;

	if (relation_is_citus_table(relid))
	{
		WriteFactorsByQuery(relid, model, ids, f_, n, f);
		return;
	}
	el = palloc(sizeof(Datum) * f);
	rel = table_open(relid, RowExclusiveLock);
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), table_slot_callbacks(rel));
	bistate = GetBulkInsertState();
	cid = GetCurrentCommandId(true);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco factor row",
								   ALLOCSET_DEFAULT_SIZES);
	for (int32 r = 0; r < n; r++)
	{
		old = MemoryContextSwitchTo(rowcxt);
		for (int32 k = 0; k < f; k++)
			el[k] = Float4GetDatum((float4) f_[(size_t) r * f + k]);
		ExecClearTuple(slot);
		slot->tts_values[0] = model_d;
		slot->tts_values[1] = Int64GetDatum(ids[r]);
		slot->tts_values[2] = PointerGetDatum(construct_array(el, f, FLOAT4OID, 4, true, TYPALIGN_INT));
		memset(slot->tts_isnull, 0, sizeof(bool) * 3);
		ExecStoreVirtualTuple(slot);
		table_tuple_insert(rel, slot, cid, 0, bistate);
		if (rri->ri_NumIndices > 0)
			ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
		MemoryContextSwitchTo(old);
		ResetPerTupleExprContext(estate);
		MemoryContextReset(rowcxt);
		if ((r & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	FreeBulkInsertState(bistate);
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	MemoryContextDelete(rowcxt);
	CommandCounterIncrement();
}

/* the ctid of the model's registry row as seen now (a new snapshot); false when gone */
static bool
RegistryRowVersion(const char *name, ItemPointer tid)
{
	return plan_cache_row_ctid("SELECT ctid FROM media_reco.als_models WHERE name OPERATOR(pg_catalog.=) $1",
							   TEXTOID, CStringGetTextDatum(name), tid);
}

/* 54000 before training when the model would not fit maintenance_work_mem */
static void
CheckBudget(const InteractionMatrix *m, const AlsParams *p, Size held)
{
	Size		limit = work_memory_limit();
	size_t		est = als_memory_estimate(m, p, media_reco_threads);
	Size		need = est >= SIZE_MAX - held ? SIZE_MAX : held + est;
	Size		mb = 1024 * 1024;

	if (need > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("als training does not fit in maintenance_work_mem"),
				 errdetail("%d users and %d items with %d factors need about %zu bytes (%.1f MB: %.1f MB of interactions, %.1f MB of factors and scratch); the limit is %.1f MB.",
						   m->n_users, m->n_items, p->factors, need, (double) need / mb,
						   (double) held / mb, (double) est / mb, (double) limit / mb),
				 errhint("Raise maintenance_work_mem (for example SET maintenance_work_mem = '%zuMB'), or lower factors.",
						 (need + need / 10) / mb + 1)));
}

/*
 * train_als(model_name, source, user_col, item_col, weight_col, options):
 * rows (model_name, users, items, factors, iterations, train_loss, seconds).
 */
Datum
train_als(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext work,
				old;
	char	   *name;
	SourceSpec	src;
	AlsOptions	o;
	AlsProgress progress;
	IterationReport ir;
	double		train_seconds = 0;
	TripleBuffer *tb;
	InteractionMatrix *m;
	AlsModel   *model;
	CoreAlloc	alloc;
	CoreError	err;
	instr_time	start;
	double		total;
	ItemPointerData row_tid,
				now_tid;
	Size		peak;
	Oid			item_rel,
				user_rel;
	int			rc;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "source");
	check_not_null(fcinfo, 2, "user_col");
	check_not_null(fcinfo, 3, "item_col");
	check_not_null(fcinfo, 5, "options");
	name = arg_text_or_null(fcinfo, 0);
	CheckModelName(name);
	PreventCommandDuringRecovery("media_reco.train_als()");
	memset(&src, 0, sizeof(src));
	src.relid = PG_GETARG_OID(1);
	src.user_col = arg_name_or_null(fcinfo, 2);
	src.item_col = arg_name_or_null(fcinfo, 3);
	src.weight_col = arg_name_or_null(fcinfo, 4);
	AlsOptionsParse(PG_GETARG_JSONB_P(5), &o);
	src.time_col = o.time_col;
	src.half_life = o.half_life_s;
	src.ref_ts = GetCurrentTransactionStartTimestamp();
	source_validate(&src);
	item_rel = MediaRecoRelid("item_factors");
	user_rel = MediaRecoRelid("user_factors");
	CheckWritable(item_rel, "item_factors");
	CheckWritable(user_rel, "user_factors");
	InitMaterializedSRF(fcinfo, 0);
	INSTR_TIME_SET_CURRENT(start);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* insert or lock the registry row: a concurrent train_als of this name waits here */
	{
		Oid			types[7] = {TEXTOID, OIDOID, NAMEOID, NAMEOID, NAMEOID, TEXTOID, TIMESTAMPTZOID};
		Datum		v[7];
		char		n[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

		v[0] = CStringGetTextDatum(name);
		v[1] = ObjectIdGetDatum(src.relid);
		v[2] = PG_GETARG_DATUM(2);
		v[3] = PG_GETARG_DATUM(3);
		v[4] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
		n[4] = PG_ARGISNULL(4) ? 'n' : ' ';
		v[5] = CStringGetTextDatum(AlsOptionsText(&o));
		/* clock time as a parameter: Citus refuses volatile calls in writes to a reference table */
		v[6] = TimestampTzGetDatum(GetCurrentTimestamp());
		rc = SPI_execute_with_args("INSERT INTO media_reco.als_models AS m (name, source, user_col, item_col,"
								   "  weight_col, options, users, items, factors, iterations, loss, train_loss,"
								   "  seconds, trained_at)"
								   " VALUES ($1, $2::pg_catalog.regclass, $3, $4, $5, $6::pg_catalog.jsonb, 0, 0, 0, 0,"
								   "  '{}', 0, 0, $7)"
								   " ON CONFLICT (name) DO UPDATE SET source = excluded.source,"
								   "  dropped_source = NULL, user_col = excluded.user_col,"
								   "  item_col = excluded.item_col, weight_col = excluded.weight_col,"
								   "  options = excluded.options",
								   7, types, v, n, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not register ALS model: %s", SPI_result_code_string(rc));
	}
	if (!RegistryRowVersion(name, &row_tid))
		UnknownModel(name);		/* hidden by row-level security */

	work = AllocSetContextCreate(callcxt, "media_reco train_als", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	tb = triples_create(work_memory_limit(), "maintenance_work_mem");
	MemoryContextSwitchTo(old);
	source_read(&src, tb, work, false);
	old = MemoryContextSwitchTo(work);
	m = matrix_build_ex(tb, true);
	MemoryContextSwitchTo(old);
	ereport(NOTICE,
			(errmsg("media_reco: als model \"%s\": read " INT64_FORMAT " interactions (%d users, %d items, " INT64_FORMAT " distinct pairs) in %.3f s",
					name, m->raw_rows, m->n_users, m->n_items, m->nnz, elapsed_seconds(start))));
	if (m->nnz == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no training rows"),
				 errdetail("Rows with a NULL user, item%s are skipped.",
						   src.weight_col || src.time_col ? ", weight or time" : "")));
	CheckPositiveWeights(m, &src);
	CheckBudget(m, &o.p, MemoryContextMemAllocated(work, true));

	ir.name = name;
	ir.seconds = &train_seconds;
	progress.iteration = ReportIteration;
	progress.arg = &ir;
	o.p.progress = &progress;
	core_pg_alloc(&alloc, work);
	RaiseCore(als_train(&alloc, m, &o.p, media_reco_threads, &interrupt_hooks, &model, &err), &err);
	/* what training held at its peak: the matrix, the factors and the scratch released by now */
	peak = MemoryContextMemAllocated(work, true) +
		((Size) o.p.factors * o.p.factors + (Size) Max(1, Min(media_reco_threads, 64)) *
		 ((Size) o.p.factors * o.p.factors + 3 * (Size) o.p.factors)) * sizeof(double);

	/*
	 * Reading the source ran the user's code (a view over a function), which
	 * may have dropped or changed this model in our own transaction; the
	 * factor rows go straight into the heap, where the foreign key is not
	 * checked, so the registry row must be the one locked above.
	 */
	if (!RegistryRowVersion(name, &now_tid) || !ItemPointerEquals(&row_tid, &now_tid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ALS model \"%s\" was dropped or changed while its source was read", name),
				 errdetail("Reading the source ran code that dropped or updated the model; nothing was written."),
				 errhint("A source must not call train_als or drop_als_model, or modify media_reco.als_models.")));
	{
		Oid			t = TEXTOID;
		Datum		v = CStringGetTextDatum(name);

		if (SPI_execute_with_args("DELETE FROM media_reco.item_factors WHERE model OPERATOR(pg_catalog.=) $1",
								  1, &t, &v, NULL, false, 0) != SPI_OK_DELETE ||
			SPI_execute_with_args("DELETE FROM media_reco.user_factors WHERE model OPERATOR(pg_catalog.=) $1",
								  1, &t, &v, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete the old factors");
	}
	WriteFactors(item_rel, name, m->item_ids, model->y, m->n_items, model->factors);
	WriteFactors(user_rel, name, m->user_ids, model->x, m->n_users, model->factors);
	total = elapsed_seconds(start);
	{
		Oid			types[9] = {TEXTOID, INT8OID, INT8OID, INT4OID, INT4OID, FLOAT8ARRAYOID, FLOAT8OID,
		TIMESTAMPTZOID, FLOAT8OID};
		Datum		v[9];
		Datum	   *ld = palloc(sizeof(Datum) * model->iterations);

		for (int i = 0; i < model->iterations; i++)
			ld[i] = Float8GetDatum(model->loss[i]);
		v[0] = CStringGetTextDatum(name);
		v[1] = Int64GetDatum(m->n_users);
		v[2] = Int64GetDatum(m->n_items);
		v[3] = Int32GetDatum(model->factors);
		v[4] = Int32GetDatum(model->iterations);
		v[5] = PointerGetDatum(construct_array(ld, model->iterations, FLOAT8OID, 8,
											   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		v[6] = Float8GetDatum(total);
		v[7] = TimestampTzGetDatum(GetCurrentTimestamp());
		/* the last loss as a value: Citus 13's deparser crashes on ($6)[$5] (a reference table) */
		v[8] = Float8GetDatum(model->loss[model->iterations - 1]);
		rc = SPI_execute_with_args("UPDATE media_reco.als_models SET users = $2, items = $3, factors = $4,"
								   " iterations = $5, loss = $6, train_loss = $9, seconds = $7,"
								   " trained_at = $8"
								   " WHERE name OPERATOR(pg_catalog.=) $1",
								   9, types, v, NULL, false, 0);
		if (rc != SPI_OK_UPDATE || SPI_processed != 1)
			elog(ERROR, "could not record the ALS model");
	}
	SPI_finish();
	ereport(NOTICE,
			(errmsg("media_reco: als model \"%s\": %d iterations in %.3f s (%.3f s per iteration), total %.3f s, about %zu MB held at the peak",
					name, model->iterations, train_seconds, train_seconds / model->iterations, total,
					peak / (1024 * 1024) + 1)));
	{
		Datum		out[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		out[0] = CStringGetTextDatum(name);
		out[1] = Int64GetDatum(m->n_users);
		out[2] = Int64GetDatum(m->n_items);
		out[3] = Int32GetDatum(model->factors);
		out[4] = Int32GetDatum(model->iterations);
		out[5] = Float8GetDatum(model->loss[model->iterations - 1]);
		out[6] = Float8GetDatum(total);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	MemoryContextDelete(work);
	return (Datum) 0;
}

Datum
drop_als_model(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			type = TEXTOID;
	Datum		value;

	check_not_null(fcinfo, 0, "model_name");
	name = arg_text_or_null(fcinfo, 0);
	value = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("DELETE FROM media_reco.als_models WHERE name OPERATOR(pg_catalog.=) $1",
							  1, &type, &value, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not drop ALS model");
	if (SPI_processed == 0)
		UnknownModel(name);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---------- the per-backend cache of item factors ---------- */

typedef struct AlsCached
{
	MemoryContext cxt;
	int32		n_items;
	int32		f;
	int64	   *item_ids;		/* ascending */
	float	   *y;				/* [n_items * f], row-major */
	float	   *norm;			/* |y_i| */
	double	   *gram;			/* Y'Y, f x f, in double from the stored reals */
} AlsCached;

typedef struct AlsCacheEntry
{
	char		name[NAMEDATALEN];	/* key */
	TransactionId xmin;
	ItemPointerData tid;
	AlsCached  *model;
} AlsCacheEntry;

static HTAB *als_cache = NULL;

/* a model's registry row, read on every call */
typedef struct AlsServing
{
	char	   *name;
	SourceSpec	src;
	char	   *dropped_source;
	AlsOptions	o;
	int32		factors;
	int64		items;
	TransactionId xmin;
	ItemPointerData tid;
	AlsCached  *cached;
} AlsServing;

static void
Corrupt(const char *what, int64 id)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("malformed factors of %s " INT64_FORMAT " in an ALS factor table", what, id),
			 errhint("Train the model again with media_reco.train_als.")));
}

/* the reals of a stored factor array, checked to be f finite numbers */
static float *
FactorArray(Datum d, int32 f, const char *what, int64 id)
{
	ArrayType  *a = DatumGetArrayTypeP(d);
	float	   *x;

	if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT4OID || ARR_DIMS(a)[0] != f)
		Corrupt(what, id);
	x = (float *) ARR_DATA_PTR(a);
	for (int32 k = 0; k < f; k++)
		if (!isfinite(x[k]))
			Corrupt(what, id);
	return x;
}

/* Load the item factors of sv into a new cache context (caller SPI-connected). */
static AlsCached *
LoadItems(const AlsServing *sv)
{
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(sv->name);
	int32		f = sv->factors;
	MemoryContext cxt,
				old;
	AlsCached  *c;
	uint64		n;
	double	   *block;
	double	   *g;

	if (plan_cache_execute("SELECT item_id, factors FROM media_reco.item_factors"
						   " WHERE model OPERATOR(pg_catalog.=) $1 ORDER BY item_id",
						   1, &t, &v, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the item factors failed");
	n = SPI_processed;
	if (n == 0 || n > (uint64) PG_INT32_MAX || (int64) n != sv->items)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ALS model \"%s\" has " UINT64_FORMAT " rows in media_reco.item_factors, its registry row says " INT64_FORMAT,
						sv->name, n, sv->items),
				 errhint("Train the model again with media_reco.train_als.")));
	cxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco ALS item factors",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	c = palloc0(sizeof(AlsCached));
	c->cxt = cxt;
	c->n_items = (int32) n;
	c->f = f;
	c->item_ids = palloc_extended(sizeof(int64) * n, MCXT_ALLOC_HUGE);
	c->y = palloc_extended(sizeof(float) * n * f, MCXT_ALLOC_HUGE);
	c->norm = palloc_extended(sizeof(float) * n, MCXT_ALLOC_HUGE);
	c->gram = palloc0(sizeof(double) * f * f);
	MemoryContextSwitchTo(old);
	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		Datum		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);
		float	   *x;
		double		s = 0;

		if (isnull)
			Corrupt("item", id);
		x = FactorArray(d, f, "item", id);
		c->item_ids[r] = id;
		memcpy(c->y + r * f, x, sizeof(float) * f);
		for (int32 k = 0; k < f; k++)
			s += (double) x[k] * x[k];
		c->norm[r] = (float) sqrt(s);
		if ((r & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	SPI_freetuptable(SPI_tuptable);
	/* Y'Y in double, blocks of rows converted and added in order */
	block = palloc(sizeof(double) * 4096 * f);
	g = palloc(sizeof(double) * f * f);
	for (uint64 s = 0; s < n; s += 4096)
	{
		int64		rows = Min((int64) 4096, (int64) (n - s));

		for (int64 k = 0; k < rows * f; k++)
			block[k] = c->y[s * f + k];
		als_gram(block, rows, f, g, &interrupt_hooks);
		for (int32 k = 0; k < f * f; k++)
			c->gram[k] += g[k];
	}
	pfree(block);
	pfree(g);
	return c;
}

#define SERVING_SQL \
	"SELECT xmin, ctid, source::pg_catalog.oid, dropped_source, user_col, item_col, weight_col," \
	" options, factors, items FROM media_reco.als_models WHERE name OPERATOR(pg_catalog.=) $1"

/* The model's registry row (caller SPI-connected; strings in callcxt). */
static void
AlsFetchRow(const char *name, MemoryContext callcxt, AlsServing *sv)
{
	Oid			t = TEXTOID;
	Datum		v = CStringGetTextDatum(name);
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	Datum		d;
	MemoryContext old;

	if (name[0] == '\0' || strlen(name) > ALS_NAME_MAX)
		UnknownModel(name);
	if (plan_cache_execute(SERVING_SQL, 1, &t, &v, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ALS model lookup failed");
	if (SPI_processed == 0)
	{
		/* a dropped model: free its cached factors */
		if (als_cache != NULL)
		{
			char		key[NAMEDATALEN];
			AlsCacheEntry *e;

			memset(key, 0, sizeof(key));
			strlcpy(key, name, sizeof(key));
			e = hash_search(als_cache, key, HASH_FIND, NULL);
			if (e && e->model)
				MemoryContextDelete(e->model->cxt);
			if (e)
				hash_search(als_cache, key, HASH_REMOVE, NULL);
		}
		UnknownModel(name);
	}
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	old = MemoryContextSwitchTo(callcxt);
	memset(sv, 0, sizeof(*sv));
	sv->name = pstrdup(name);
	sv->xmin = DatumGetTransactionId(SPI_getbinval(tup, td, 1, &isnull));
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(tup, td, 2, &isnull)), &sv->tid);
	d = SPI_getbinval(tup, td, 3, &isnull);
	sv->src.relid = isnull ? InvalidOid : DatumGetObjectId(d);
	d = SPI_getbinval(tup, td, 4, &isnull);
	if (!isnull)
	{
		sv->dropped_source = TextDatumGetCString(d);
		sv->src.relid = InvalidOid;
	}
	sv->src.user_col = pstrdup(NameStr(*DatumGetName(SPI_getbinval(tup, td, 5, &isnull))));
	sv->src.item_col = pstrdup(NameStr(*DatumGetName(SPI_getbinval(tup, td, 6, &isnull))));
	d = SPI_getbinval(tup, td, 7, &isnull);
	sv->src.weight_col = isnull ? NULL : pstrdup(NameStr(*DatumGetName(d)));
	/* the registry is an ordinary table: re-check what an UPDATE or a restore may have put there */
	AlsOptionsParse(DatumGetJsonbP(SPI_getbinval(tup, td, 8, &isnull)), &sv->o);
	sv->src.time_col = sv->o.time_col;
	sv->src.half_life = sv->o.half_life_s;
	sv->src.ref_ts = GetCurrentTransactionStartTimestamp();
	sv->factors = DatumGetInt32(SPI_getbinval(tup, td, 9, &isnull));
	sv->items = DatumGetInt64(SPI_getbinval(tup, td, 10, &isnull));
	MemoryContextSwitchTo(old);
	if (sv->factors != sv->o.p.factors || sv->items < 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ALS model \"%s\" has no factors", name),
				 errhint("Train it with media_reco.train_als.")));
}

/*
 * The model's registry row, and its item factors from the cache (loaded when
 * the row version changed).  Caller SPI-connected; strings in callcxt.
 */
static void
AlsFetch(const char *name, MemoryContext callcxt, AlsServing *sv)
{
	char		key[NAMEDATALEN];
	AlsCacheEntry *e;
	bool		found;

	AlsFetchRow(name, callcxt, sv);
	if (als_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(AlsCacheEntry);
		ctl.hcxt = CacheMemoryContext;
		als_cache = hash_create("media_reco ALS models", 16, &ctl,
								HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	e = hash_search(als_cache, key, HASH_ENTER, &found);
	if (!found)
		e->model = NULL;
	if (e->model && TransactionIdEquals(e->xmin, sv->xmin) && ItemPointerEquals(&e->tid, &sv->tid))
	{
		sv->cached = e->model;
		return;
	}
	if (e->model)
	{
		MemoryContextDelete(e->model->cxt);
		e->model = NULL;
	}
	sv->cached = LoadItems(sv);
	/* only a fully loaded model enters the cache */
	MemoryContextSetParent(sv->cached->cxt, CacheMemoryContext);
	e->model = sv->cached;
	e->xmin = sv->xmin;
	e->tid = sv->tid;
}

static void
RequireSource(const AlsServing *sv)
{
	if (sv->dropped_source != NULL || !OidIsValid(sv->src.relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation %s of ALS model \"%s\" was dropped",
						sv->dropped_source ? sv->dropped_source : "(unknown)", sv->name),
				 errdetail("Its factors are kept as of its last training."),
				 errhint("Train the model again over the new source with media_reco.train_als.")));
}

void
als_model_source(const char *name, MemoryContext cxt, SourceSpec *src)
{
	AlsServing	sv;

	AlsFetchRow(name, cxt, &sv);
	RequireSource(&sv);
	*src = sv.src;
}

static int32
ItemIndex(const AlsCached *c, int64 id)
{
	int32		lo = 0,
				hi = c->n_items - 1;

	while (lo <= hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (c->item_ids[mid] == id)
			return mid;
		if (c->item_ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * x_u (f doubles) solved exactly from a history against the cached item
 * factors; items the model does not know are skipped.  False when none is
 * known.
 */
static bool
SolveUser(const AlsServing *sv, const HistItem *hist, int nhist, double *x)
{
	const AlsCached *c = sv->cached;
	int32		f = c->f;
	double	   *z = palloc(sizeof(double) * Max(nhist, 1) * f);
	double	   *w = palloc(sizeof(double) * Max(nhist, 1));
	double	   *scratch = palloc(sizeof(double) * ((size_t) f * f + 3 * f));
	int			n = 0;

	for (int h = 0; h < nhist; h++)
	{
		int32		i = ItemIndex(c, hist[h].item);

		if (i < 0)
			continue;
		if (!(hist[h].w > 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weight column \"%s\" sums to %g for item " INT64_FORMAT,
							sv->src.weight_col ? sv->src.weight_col : "(decayed)", hist[h].w, hist[h].item),
					 errdetail("ALS needs every (user, item) pair's summed weight to be > 0.")));
		for (int32 k = 0; k < f; k++)
			z[(size_t) n * f + k] = c->y[(size_t) i * f + k];
		w[n++] = hist[h].w;
	}
	if (n == 0)
		return false;
	if (!als_solve_exact(f, c->gram, sv->o.p.regularization, sv->o.p.alpha, z, NULL, w, n, x, scratch))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the user's factors are not finite")));
	return true;
}

/* the stored x_u, or false when the user was not in training */
static bool
StoredUser(const AlsServing *sv, int64 user_id, double *x)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		v[2];
	bool		isnull;
	float	   *xf;

	v[0] = CStringGetTextDatum(sv->name);
	v[1] = Int64GetDatum(user_id);
	if (plan_cache_execute("SELECT factors FROM media_reco.user_factors"
						   " WHERE model OPERATOR(pg_catalog.=) $1 AND user_id OPERATOR(pg_catalog.=) $2",
						   2, types, v, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the user factors failed");
	if (SPI_processed == 0)
		return false;
	xf = FactorArray(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
					 sv->factors, "user", user_id);
	for (int32 k = 0; k < sv->factors; k++)
		x[k] = xf[k];
	return true;
}

/*
 * Look the model up, read the user's live history, and find x_u: stored,
 * or (recalculate, or a user absent from training) solved from the
 * history.  False when there is no x_u (no known history).  SPI finished.
 */
static bool
UserVector(FunctionCallInfo fcinfo, MemoryContext callcxt, const char *name, int64 user_id,
		   bool recalculate, AlsServing *sv, HistItem **hist, int *nhist, double **x)
{
	bool		have;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	AlsFetch(name, callcxt, sv);
	RequireSource(sv);
	source_validate(&sv->src);
	*hist = serving_read_history(&sv->src, user_id, callcxt, nhist);
	*x = MemoryContextAlloc(callcxt, sizeof(double) * sv->factors);
	have = !recalculate && StoredUser(sv, user_id, *x);
	SPI_finish();
	if (!have)
		have = SolveUser(sv, *hist, *nhist, *x);
	return have;
}

static void
ParseFilters(FunctionCallInfo fcinfo, int exclude_arg, ResultFilter *f)
{
	memset(f, 0, sizeof(*f));
	f->exclude_seen = true;
	f->with_reason = true;
	if (!PG_ARGISNULL(exclude_arg))
		f->exclude = sorted_unique_ids(PG_GETARG_ARRAYTYPE_P(exclude_arg), &f->nexclude);
	if (!PG_ARGISNULL(exclude_arg + 1))
		f->only = sorted_unique_ids(PG_GETARG_ARRAYTYPE_P(exclude_arg + 1), &f->nonly);
	if (!PG_ARGISNULL(exclude_arg + 2))
	{
		char	   *fb = text_to_cstring(PG_GETARG_TEXT_PP(exclude_arg + 2));

		if (strcmp(fb, "popular") == 0)
			f->fallback_popular = true;
		else if (strcmp(fb, "none") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown fallback \"%s\"", fb),
					 errhint("Use 'none' or 'popular' (NULL means 'none').")));
	}
}

/* skip[i] := v for the cached items among hist's and f's exclude */
static void
MarkSkipped(const AlsCached *c, const HistItem *hist, int nhist, const ResultFilter *f, uint8 *skip,
			uint8 v)
{
	for (int h = 0; h < nhist; h++)
	{
		int32		i = ItemIndex(c, hist[h].item);

		if (i >= 0)
			skip[i] = v;
	}
	for (int e = 0; e < f->nexclude; e++)
	{
		int32		i = ItemIndex(c, f->exclude[e]);

		if (i >= 0)
			skip[i] = v;
	}
}

/*
 * The k best items for x (one sgemv over the cached item factors), the
 * items of hist and f's exclude skipped, f's allowlist applied; ties to the
 * smaller id.  skip (n_items bytes, zero) and scores (n_items floats) are
 * the caller's scratch; skip is zero again on return.  Returns the count.
 */
static int
ScoreUserAls(const AlsCached *c, const double *x, const HistItem *hist, int nhist,
			 const ResultFilter *f, int k, Scored *cand, float *scores, uint8 *skip, float *xf)
{
	int32		fct = c->f;
	int			ncand = 0;

	for (int32 q = 0; q < fct; q++)
		xf[q] = (float) x[q];
	cblas_sgemv(CblasRowMajor, CblasNoTrans, c->n_items, fct, 1.0f, c->y, fct, xf, 1,
				0.0f, scores, 1);
	/* seen and excluded items never score */
	MarkSkipped(c, hist, nhist, f, skip, 1);
	if (f->only)
	{
		for (int e = 0; e < f->nonly; e++)
		{
			int32		i = ItemIndex(c, f->only[e]);
			Scored		s;

			if (i < 0 || skip[i])
				continue;
			s.item = c->item_ids[i];
			s.score = scores[i];
			ScoredOffer(cand, &ncand, k, s);
		}
	}
	else
		for (int32 i = 0; i < c->n_items; i++)
		{
			Scored		s;

			if (skip[i])
				continue;
			s.item = c->item_ids[i];
			s.score = scores[i];
			ScoredOffer(cand, &ncand, k, s);
		}
	qsort(cand, ncand, sizeof(Scored), CmpScored);
	MarkSkipped(c, hist, nhist, f, skip, 0);
	return ncand;
}

/*
 * recommend_als(model_name, user_id, k, exclude, only, fallback,
 * recalculate): rows (item_id, score, rank, reason), best first, ties to
 * the smaller id.
 */
Datum
recommend_als(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	AlsServing	sv;
	ResultFilter f;
	HistItem   *hist;
	int			nhist;
	double	   *x;
	int64		user_id;
	int			k;
	Scored	   *cand;
	int			ncand = 0;
	int64	   *taken;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "user_id");
	check_not_null(fcinfo, 2, "k");
	check_not_null(fcinfo, 6, "recalculate");
	user_id = PG_GETARG_INT64(1);
	k = PG_GETARG_INT32(2);
	check_k(k, "k");
	ParseFilters(fcinfo, 3, &f);
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	cand = palloc(sizeof(Scored) * k);
	if (UserVector(fcinfo, callcxt, arg_text_or_null(fcinfo, 0), user_id, PG_GETARG_BOOL(6),
				   &sv, &hist, &nhist, &x))
	{
		const AlsCached *c = sv.cached;

		ncand = ScoreUserAls(c, x, hist, nhist, &f, k, cand,
							 palloc_extended(sizeof(float) * c->n_items, MCXT_ALLOC_HUGE),
							 palloc_extended(c->n_items, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO),
							 palloc(sizeof(float) * c->f));
	}
	taken = palloc(sizeof(int64) * Max(ncand, 1));
	for (int i = 0; i < ncand; i++)
	{
		serving_emit_row(rsinfo, &f, cand[i].item, cand[i].score, false, i + 1, "als");
		taken[i] = cand[i].item;
	}
	if (f.fallback_popular && ncand < k)
		serving_fill_popular(rsinfo, &sv.src, hist, nhist, &f, taken, ncand, k, ncand + 1);
	return (Datum) 0;
}

/*
 * recommend_all_als(model_name, k, users): recommend_als's top k for every
 * user of the source, or for the given users, in one pass: one scan of the
 * source (its rules: NULL rows skipped, duplicates summed, decay), one read
 * of the user factors; each user scored as recommend_als scores it (the
 * stored x_u, or for a user absent from training the solve of its
 * history), so the rows are the same.  Rows by user id, then rank.
 */
Datum
recommend_all_als(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext work,
				old;
	AlsServing	sv;
	ResultFilter f;
	const AlsCached *c;
	TripleBuffer *tb;
	InteractionMatrix *m;
	int64	   *want = NULL;
	int			nwant = 0;
	int			k;
	int32		fct;
	int64	   *xu_ids = NULL;
	float	   *xu = NULL;
	uint64		nxu = 0;
	Scored	   *cand;
	float	   *scores,
			   *xf;
	uint8	   *skip;
	double	   *x;
	HistItem   *hist;
	int64		maxlen = 0;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "k");
	k = PG_GETARG_INT32(1);
	check_k(k, "k");
	if (!PG_ARGISNULL(2))
		want = sorted_unique_ids(PG_GETARG_ARRAYTYPE_P(2), &nwant);
	memset(&f, 0, sizeof(f));
	f.exclude_seen = true;
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	AlsFetch(arg_text_or_null(fcinfo, 0), callcxt, &sv);
	RequireSource(&sv);
	source_validate(&sv.src);
	c = sv.cached;
	fct = c->f;
	work = AllocSetContextCreate(callcxt, "media_reco recommend_all_als", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	tb = triples_create(work_memory_limit(), "maintenance_work_mem");
	MemoryContextSwitchTo(old);
	source_read(&sv.src, tb, work, true);
	old = MemoryContextSwitchTo(work);
	m = matrix_build_ex(tb, false);
	MemoryContextSwitchTo(old);
	/* the stored user factors, ids ascending */
	{
		Oid			t = TEXTOID;
		Datum		v = CStringGetTextDatum(sv.name);

		if (plan_cache_execute("SELECT user_id, factors FROM media_reco.user_factors"
							   " WHERE model OPERATOR(pg_catalog.=) $1 ORDER BY user_id",
							   1, &t, &v, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "reading the user factors failed");
		nxu = SPI_processed;
		xu_ids = MemoryContextAllocHuge(work, sizeof(int64) * Max(nxu, 1));
		xu = MemoryContextAllocHuge(work, sizeof(float) * Max(nxu, 1) * fct);
		for (uint64 r = 0; r < nxu; r++)
		{
			bool		isnull;
			HeapTuple	tup = SPI_tuptable->vals[r];

			xu_ids[r] = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
			memcpy(xu + r * fct, FactorArray(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull),
											 fct, "user", xu_ids[r]), sizeof(float) * fct);
			if ((r & 4095) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_finish();

	for (int32 u = 0; u < m->n_users; u++)
		maxlen = Max(maxlen, m->u_ptr[u + 1] - m->u_ptr[u]);
	old = MemoryContextSwitchTo(work);
	cand = palloc(sizeof(Scored) * k);
	scores = palloc_extended(sizeof(float) * c->n_items, MCXT_ALLOC_HUGE);
	skip = palloc_extended(c->n_items, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	xf = palloc(sizeof(float) * fct);
	x = palloc(sizeof(double) * fct);
	hist = palloc_extended(sizeof(HistItem) * Max(maxlen, 1), MCXT_ALLOC_HUGE);
	MemoryContextSwitchTo(old);
	for (int32 u = 0; u < m->n_users; u++)
	{
		int64		uid = m->user_ids[u];
		int			nhist = 0;
		int			ncand;
		int64		lo = 0,
					hi = (int64) nxu - 1,
					at = -1;
		bool		have;

		if (want && !sorted_ids_contain(want, nwant, uid))
			continue;
		for (int64 e = m->u_ptr[u]; e < m->u_ptr[u + 1]; e++)
		{
			hist[nhist].item = m->item_ids[m->u_item[e]];
			hist[nhist++].w = m->u_w[e];
		}
		while (lo <= hi)
		{
			int64		mid = lo + (hi - lo) / 2;

			if (xu_ids[mid] == uid)
			{
				at = mid;
				break;
			}
			if (xu_ids[mid] < uid)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		if (at >= 0)
		{
			for (int32 q = 0; q < fct; q++)
				x[q] = xu[at * fct + q];
			have = true;
		}
		else
		{
			old = MemoryContextSwitchTo(work);
			have = SolveUser(&sv, hist, nhist, x);
			MemoryContextSwitchTo(old);
		}
		if (!have)
			continue;
		ncand = ScoreUserAls(c, x, hist, nhist, &f, k, cand, scores, skip, xf);
		for (int i = 0; i < ncand; i++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			values[0] = Int64GetDatum(uid);
			values[1] = Int64GetDatum(cand[i].item);
			values[2] = Float8GetDatum(cand[i].score);
			values[3] = Int32GetDatum(i + 1);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(work);
	return (Datum) 0;
}

/* similar_items_als(model_name, item_id, k): cosine of item factors, rows (neighbor_id, similarity, rank) */
Datum
similar_items_als(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	AlsServing	sv;
	const AlsCached *c;
	int64		item_id;
	int			k;
	int32		target;
	Scored	   *cand;
	int			ncand = 0;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "item_id");
	check_not_null(fcinfo, 2, "k");
	item_id = PG_GETARG_INT64(1);
	k = PG_GETARG_INT32(2);
	check_k(k, "k");
	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	AlsFetch(arg_text_or_null(fcinfo, 0), callcxt, &sv);
	SPI_finish();
	c = sv.cached;
	target = ItemIndex(c, item_id);
	if (target < 0 || c->norm[target] == 0)
		return (Datum) 0;		/* an unknown item has no neighbours (as similar_items) */
	{
		float	   *dots = palloc_extended(sizeof(float) * c->n_items, MCXT_ALLOC_HUGE);

		cand = palloc(sizeof(Scored) * k);
		cblas_sgemv(CblasRowMajor, CblasNoTrans, c->n_items, c->f, 1.0f, c->y, c->f,
					c->y + (size_t) target * c->f, 1, 0.0f, dots, 1);
		for (int32 i = 0; i < c->n_items; i++)
		{
			Scored		s;

			if (i == target || c->norm[i] == 0)
				continue;
			s.item = c->item_ids[i];
			s.score = (double) dots[i] / ((double) c->norm[i] * c->norm[target]);
			ScoredOffer(cand, &ncand, k, s);
		}
		qsort(cand, ncand, sizeof(Scored), CmpScored);
	}
	for (int i = 0; i < ncand; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int64GetDatum(cand[i].item);
		values[1] = Float8GetDatum(cand[i].score);
		values[2] = Int32GetDatum(i + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * als_user_vector(model_name, user_id, recalculate): the x_u recommend_als
 * would use (stored, or solved from the live history), or NULL when there
 * is none.
 */
Datum
als_user_vector(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	AlsServing	sv;
	HistItem   *hist;
	int			nhist;
	double	   *x;
	Datum	   *el;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "user_id");
	check_not_null(fcinfo, 2, "recalculate");
	if (!UserVector(fcinfo, callcxt, arg_text_or_null(fcinfo, 0), PG_GETARG_INT64(1),
					PG_GETARG_BOOL(2), &sv, &hist, &nhist, &x))
		PG_RETURN_NULL();
	el = palloc(sizeof(Datum) * sv.factors);
	for (int32 k = 0; k < sv.factors; k++)
		el[k] = Float8GetDatum(x[k]);
	PG_RETURN_ARRAYTYPE_P(construct_array(el, sv.factors, FLOAT8OID, 8, FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}
