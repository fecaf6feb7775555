/*
 * neighbors.c
 *	  create_recommender, drop_recommender and refresh_neighbors.
 *
 * The neighbour lists of a recommender live in media_reco.neighbor_store,
 * one row per item with the neighbours as arrays in rank order (the view
 * media_reco.item_neighbors unnests them).  refresh_neighbors replaces a
 * recommender's rows inside the caller's transaction: it locks the
 * recommender's registry row (a second refresh of the same recommender waits
 * for the first), computes the new lists in memory, deletes the old rows and
 * bulk-inserts the new ones directly into the heap and its indexes.  Under
 * MVCC every reader sees either the whole old set or the whole new set, is
 * never blocked, and an error, cancel or crash before commit leaves the old
 * set in place.  The table is an ordinary WAL-logged table, so standbys and
 * pg_dump see it too.
 */
#include "postgres.h"

#include <math.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "citus.h"
#include "neighbors.h"
#include "plan_cache.h"
#include "similarity.h"
#include "util.h"

PG_FUNCTION_INFO_V1(create_recommender);
PG_FUNCTION_INFO_V1(drop_recommender);
PG_FUNCTION_INFO_V1(refresh_neighbors);

/*
 * The lookup (its plans kept in plan_cache.c, one per text), with and
 * without the row lock, and for older schemas, as a backend may run this
 * library against a database whose ALTER EXTENSION media_reco UPDATE has not
 * run yet: 0.1.0 has no dropped_source column, 0.2.0 none of the learned
 * models' options (their defaults apply).
 */
#define FETCH_SQL_COLUMNS \
	"SELECT id, source::pg_catalog.oid, user_col, item_col, weight_col, metric, k," \
	" min_support, shrinkage, refreshed_at IS NOT NULL, time_col," \
	" pg_catalog.date_part('epoch', half_life), bm25_k1, bm25_b"
#define FETCH_SQL_FROM \
	" FROM media_reco.recommenders WHERE name OPERATOR(pg_catalog.=) $1"
#define FETCH_SQL \
	FETCH_SQL_COLUMNS ", dropped_source, ease_lambda, rp3_alpha, rp3_beta, ease_max_items" FETCH_SQL_FROM
#define FETCH_SQL_020 FETCH_SQL_COLUMNS ", dropped_source" FETCH_SQL_FROM
#define FETCH_SQL_010 FETCH_SQL_COLUMNS FETCH_SQL_FROM
/* the columns of the learned models' options in FETCH_SQL */
#define FETCH_COL_LEARNED 16

/* OID of media_reco.recommenders */
static Oid
RegistryRelid(void)
{
	Oid			relid = get_relname_relid("recommenders", get_namespace_oid("media_reco", false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table media_reco.recommenders does not exist"),
				 errhint("Reinstall the extension.")));
	return relid;
}

static char *
CopyName(HeapTuple tup, TupleDesc td, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, col, &isnull);

	if (isnull)
		return NULL;
	return MemoryContextStrdup(cxt, NameStr(*DatumGetName(d)));
}

/* The registry has the learned models' options (0.3.0 and later). */
static bool
RegistryHasLearned(Oid registry)
{
	return get_attnum(registry, "ease_max_items") != InvalidAttrNumber;
}

/* The learned models' options of a registry row (columns col .. col + 3), re-checked, into *p. */
static void
FetchLearned(HeapTuple tup, TupleDesc td, int col, SimParams *p)
{
	double		v[3];
	int32		max_items = 0;
	bool		isnull[4];
	Datum		d;

	for (int i = 0; i < 3; i++)
	{
		d = SPI_getbinval(tup, td, col + i, &isnull[i]);
		if (!isnull[i])
			v[i] = DatumGetFloat8(d);
	}
	d = SPI_getbinval(tup, td, col + 3, &isnull[3]);
	if (!isnull[3])
		max_items = DatumGetInt32(d);
	check_learned_params(isnull[0] ? NULL : &v[0], isnull[1] ? NULL : &v[1],
						 isnull[2] ? NULL : &v[2], isnull[3] ? NULL : &max_items, p);
}

void
recommender_fetch(const char *name, bool lock, MemoryContext cxt, Recommender *out)
{
	Oid			registry = RegistryRelid();
	bool		has_dropped = get_attnum(registry, "dropped_source") != InvalidAttrNumber;
	bool		has_learned = has_dropped && RegistryHasLearned(registry);
	const char *sql;
	Datum		arg = CStringGetTextDatum(name);
	Oid			argtype = TEXTOID;
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	char	   *metric;
	int			rc;

	if (has_learned)
		sql = lock ? FETCH_SQL " FOR NO KEY UPDATE" : FETCH_SQL;
	else if (has_dropped)
		sql = lock ? FETCH_SQL_020 " FOR NO KEY UPDATE" : FETCH_SQL_020;
	else
		sql = lock ? FETCH_SQL_010 " FOR NO KEY UPDATE" : FETCH_SQL_010;
	rc = plan_cache_execute(sql, 1, &argtype, &arg, NULL, !lock, 1);
	if (rc != SPI_OK_SELECT && rc != SPI_OK_SELINTO)
		elog(ERROR, "recommender lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("recommender \"%s\" does not exist", name),
				 errhint("Create it with media_reco.create_recommender().")));

	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	out->id = DatumGetInt32(SPI_getbinval(tup, td, 1, &isnull));
	out->name = MemoryContextStrdup(cxt, name);
	out->src.relid = DatumGetObjectId(SPI_getbinval(tup, td, 2, &isnull));
	if (isnull)
		out->src.relid = InvalidOid;
	out->dropped_source = NULL;
	if (has_dropped)
	{
		Datum		d = SPI_getbinval(tup, td, 15, &isnull);

		if (!isnull)
		{
			out->dropped_source = MemoryContextStrdup(cxt, TextDatumGetCString(d));
			out->src.relid = InvalidOid;	/* never an OID that a later relation could reuse */
		}
	}
	out->src.user_col = CopyName(tup, td, 3, cxt);
	out->src.item_col = CopyName(tup, td, 4, cxt);
	out->src.weight_col = CopyName(tup, td, 5, cxt);
	metric = TextDatumGetCString(SPI_getbinval(tup, td, 6, &isnull));
	/* the registry is an ordinary table: re-check what an UPDATE or a restore may have put there */
	check_sim_params(metric,
					 DatumGetInt32(SPI_getbinval(tup, td, 7, &isnull)),
					 DatumGetInt32(SPI_getbinval(tup, td, 8, &isnull)),
					 DatumGetFloat8(SPI_getbinval(tup, td, 9, &isnull)),
					 &out->params);
	check_bm25_params(DatumGetFloat8(SPI_getbinval(tup, td, 13, &isnull)),
					  DatumGetFloat8(SPI_getbinval(tup, td, 14, &isnull)), &out->params);
	if (has_learned)
		FetchLearned(tup, td, FETCH_COL_LEARNED, &out->params);
	out->refreshed = DatumGetBool(SPI_getbinval(tup, td, 10, &isnull));
	out->src.time_col = CopyName(tup, td, 11, cxt);
	out->src.half_life = 0;
	if (out->src.time_col)
	{
		out->src.half_life = DatumGetFloat8(SPI_getbinval(tup, td, 12, &isnull));
		if (isnull || !(out->src.half_life > 0) || isinf(out->src.half_life))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("recommender \"%s\" has an invalid half_life", name)));
	}
	/* decay is measured from now(): the transaction's start, stable within it */
	out->src.ref_ts = GetCurrentTransactionStartTimestamp();
}

void
recommender_require_refreshed(const Recommender *r)
{
	if (!r->refreshed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recommender \"%s\" has no neighbour table yet", r->name),
				 errhint("Run SELECT * FROM media_reco.refresh_neighbors('%s').", r->name)));
}

void
recommender_require_source(const Recommender *r)
{
	if (r->dropped_source != NULL || !OidIsValid(r->src.relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation %s of recommender \"%s\" was dropped",
						r->dropped_source ? r->dropped_source : "(unknown)", r->name),
				 errdetail("Its neighbour lists are kept as of its last refresh."),
				 errhint("Drop the recommender and create it again over the new source.")));
}

/*
 * A NOTICE with the CREATE INDEX statement when no index on the source
 * starts with its user column: recommend() reads a user's history with
 * "WHERE user_col = $1" on every call, a full scan of the source without
 * one (45 ms instead of 0.5 ms per call on 1M rows).  Only tables,
 * partitioned tables and materialized views are checked: a view or a
 * foreign table has no indexes of its own, and which base column a view
 * column comes from is not followed here.
 */
static void
SuggestUserIndex(const SourceSpec *src)
{
	char		relkind = get_rel_relkind(src->relid);
	AttrNumber	useratt;
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	bool		found = false;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_MATVIEW)
		return;
	useratt = get_attnum(src->relid, src->user_col);
	rel = relation_open(src->relid, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		HeapTuple	t = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index ix;

		if (!HeapTupleIsValid(t))
			continue;
		ix = (Form_pg_index) GETSTRUCT(t);
		/* a partial index serves only some users; an invalid one none */
		if (ix->indnkeyatts > 0 && ix->indkey.values[0] == useratt && ix->indisvalid &&
			heap_attisnull(t, Anum_pg_index_indpred, NULL))
			found = true;
		ReleaseSysCache(t);
	}
	list_free(indexes);
	relation_close(rel, AccessShareLock);

	if (!found)
	{
		StringInfoData stmt;
		char	   *qualname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(src->relid)),
														  get_rel_name(src->relid));

		initStringInfo(&stmt);
		appendStringInfo(&stmt, "CREATE INDEX ON %s (%s, %s)", qualname,
						 quote_identifier(src->user_col), quote_identifier(src->item_col));
		if (src->weight_col && src->time_col)
			appendStringInfo(&stmt, " INCLUDE (%s, %s)", quote_identifier(src->weight_col),
							 quote_identifier(src->time_col));
		else if (src->weight_col || src->time_col)
			appendStringInfo(&stmt, " INCLUDE (%s)",
							 quote_identifier(src->weight_col ? src->weight_col : src->time_col));
		ereport(NOTICE,
				(errmsg("no index on %s starts with its user column \"%s\"", qualname, src->user_col),
				 errdetail("recommend reads a user's history by the user column on every call, which without such an index scans the whole source."),
				 errhint("Create one (covering, so the history is an index-only scan): %s;", stmt.data)));
	}
}

static void
CheckName(const char *name)
{
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recommender name must not be empty")));
}

/*
 * create_recommender(name, source, ..., bm25_k1, bm25_b, ease_lambda,
 * rp3_alpha, rp3_beta, ease_max_items): validate everything, then insert the
 * registry row with the arguments as given (NULL options stay NULL: the
 * default is applied when the row is read).  Served by a 0.1.0 or 0.2.0
 * declaration (13 arguments, no option columns) too.
 */
#define CREATE_NARGS 17
#define CREATE_NARGS_020 13

Datum
create_recommender(PG_FUNCTION_ARGS)
{
	char	   *name;
	SourceSpec	src;
	SimParams	p;
	Oid			types[CREATE_NARGS] = {TEXTOID, REGCLASSOID, NAMEOID, NAMEOID, NAMEOID,
		TEXTOID, INT4OID, INT4OID, FLOAT8OID, NAMEOID, INTERVALOID, FLOAT8OID, FLOAT8OID,
	FLOAT8OID, FLOAT8OID, FLOAT8OID, INT4OID};
	Datum		values[CREATE_NARGS];
	char		nulls[CREATE_NARGS];
	int			nargs = PG_NARGS() >= CREATE_NARGS ? CREATE_NARGS : CREATE_NARGS_020;
	int			rc;

	check_not_null(fcinfo, 0, "name");
	name = arg_text_or_null(fcinfo, 0);
	CheckName(name);
	source_args(fcinfo, 1, &src, &p);
	check_not_null(fcinfo, 11, "bm25_k1");
	check_not_null(fcinfo, 12, "bm25_b");
	check_bm25_params(PG_GETARG_FLOAT8(11), PG_GETARG_FLOAT8(12), &p);
	learned_args(fcinfo, 13, &p);
	if (PG_ARGISNULL(9) != PG_ARGISNULL(10))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time_col and half_life must be given together")));
	if (!PG_ARGISNULL(9))
	{
		double		hl = interval_seconds(PG_GETARG_INTERVAL_P(10));

		if (!(hl > 0) || isinf(hl))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("half_life must be a positive interval")));
		src.time_col = arg_name_or_null(fcinfo, 9);
		src.half_life = hl;
	}
	source_validate(&src);
	SuggestUserIndex(&src);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	for (int i = 0; i < nargs; i++)
	{
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	if (nargs == CREATE_NARGS)
		rc = SPI_execute_with_args("INSERT INTO media_reco.recommenders"
								   " (name, source, user_col, item_col, weight_col, metric, k, min_support, shrinkage,"
								   "  time_col, half_life, bm25_k1, bm25_b,"
								   "  ease_lambda, rp3_alpha, rp3_beta, ease_max_items)"
								   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
								   "  $14, $15, $16, $17)"
								   " ON CONFLICT (name) DO NOTHING",
								   nargs, types, values, nulls, false, 0);
	else
		rc = SPI_execute_with_args("INSERT INTO media_reco.recommenders"
								   " (name, source, user_col, item_col, weight_col, metric, k, min_support, shrinkage,"
								   "  time_col, half_life, bm25_k1, bm25_b)"
								   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
								   " ON CONFLICT (name) DO NOTHING",
								   nargs, types, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not register recommender: %s", SPI_result_code_string(rc));

	/*
	 * Nothing inserted: the name is taken.  ON CONFLICT also covers a
	 * concurrent creation of the same name: this call waits for it and
	 * reports the same error as when the name was already there.
	 */
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("recommender \"%s\" already exists", name),
				 errhint("Drop it with media_reco.drop_recommender() or choose another name.")));
	SPI_finish();
	PG_RETURN_VOID();
}

Datum
drop_recommender(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			type = TEXTOID;
	Datum		value;
	int			rc;

	check_not_null(fcinfo, 0, "name");
	name = arg_text_or_null(fcinfo, 0);
	value = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("DELETE FROM media_reco.recommenders WHERE name OPERATOR(pg_catalog.=) $1",
							   1, &type, &value, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "could not drop recommender: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("recommender \"%s\" does not exist", name)));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * The ctid of recommender `id`'s registry row as this transaction sees it
 * now (a new snapshot, so changes made by code the refresh ran are seen);
 * false when the row is gone.
 */
static bool
RegistryRowVersion(int32 id, ItemPointer tid)
{
	return plan_cache_row_ctid("SELECT ctid FROM media_reco.recommenders WHERE id OPERATOR(pg_catalog.=) $1",
							   INT4OID, Int32GetDatum(id), tid);
}

Oid
store_relid(void)
{
	Oid			nsp = get_namespace_oid("media_reco", false);
	Oid			relid = get_relname_relid("neighbor_store", nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table media_reco.neighbor_store does not exist"),
				 errhint("Reinstall the extension.")));
	return relid;
}

/*
 * Insert one row per item that has neighbours, straight into the heap with
 * a bulk-insert state, and into the table's indexes.  Returns rows written.
 */
/*
 * The neighbour rows are inserted straight into the heap and its indexes,
 * so what INSERT would check is checked here: the privilege, and row-level
 * security, which the direct path cannot apply and therefore refuses (as the
 * read path does).
 */
static void
CheckStoreWritable(Oid relid)
{
	AttrNumber	cols[5] = {1, 2, 3, 4, 5};

	check_relation_privilege(relid, ACL_INSERT, cols, 5);
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("row-level security on media_reco.neighbor_store is not supported")));
}

/*
 * The five column values of item i's row of the neighbour store, built in
 * the current memory context (the caller resets it per row)
 */
static void
NeighborRowValues(int32 rec_id, const InteractionMatrix *m, const NeighborLists *nl, int32 i,
				  Datum *values)
{
	int32		n = nl->n_out[i];
	int64		base = (int64) i * nl->k_cap;
	Datum	   *ids = palloc(sizeof(Datum) * n),
			   *sims = palloc(sizeof(Datum) * n),
			   *sups = palloc(sizeof(Datum) * n);

	for (int32 r = 0; r < n; r++)
	{
		ids[r] = Int64GetDatum(m->item_ids[nl->nb[base + r]]);
		sims[r] = Float8GetDatum(nl->sim[base + r]);
		sups[r] = Int32GetDatum(nl->support[base + r]);
	}
	values[0] = Int32GetDatum(rec_id);
	values[1] = Int64GetDatum(m->item_ids[i]);
	values[2] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = PointerGetDatum(construct_array(sims, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[4] = PointerGetDatum(construct_array(sups, n, INT4OID, 4, true, TYPALIGN_INT));
}

/*
 * WriteNeighbors for a store that Citus manages (a reference table after
 * media_reco.citus_setup()): the heap here is a shell, so the rows are
 * INSERTs through the planner (batched), which write every placement.
 */
static int64
WriteNeighborsByQuery(int32 rec_id, const InteractionMatrix *m, const NeighborLists *nl)
{
	Oid			types[5] = {INT4OID, INT8OID, INT8ARRAYOID, FLOAT8ARRAYOID, INT4ARRAYOID};
	CitusInsertBatch *batch = citus_insert_begin("media_reco.neighbor_store (recommender_id, item_id,"
												 " neighbor_ids, similarities, supports)", 5, types);

	for (int32 i = 0; i < nl->n_items; i++)
	{
		Datum		args[5];
		MemoryContext old;

		if (nl->n_out[i] == 0)
			continue;
		old = MemoryContextSwitchTo(citus_insert_context(batch));
		NeighborRowValues(rec_id, m, nl, i, args);
		MemoryContextSwitchTo(old);
		citus_insert_row(batch, args);
	}
	return citus_insert_end(batch);
}

static int64
WriteNeighbors(int32 rec_id, const InteractionMatrix *m, const NeighborLists *nl)
{
	Oid			relid = store_relid();
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	BulkInsertState bistate;
	CommandId	cid;
	MemoryContext rowcxt,
				old;
	int64		rows = 0;

	CheckStoreWritable(relid);
	if (relation_is_citus_table(relid))
		return WriteNeighborsByQuery(rec_id, m, nl);
	rel = table_open(relid, RowExclusiveLock);
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), table_slot_callbacks(rel));
	bistate = GetBulkInsertState();
	cid = GetCurrentCommandId(true);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco neighbour row",
								   ALLOCSET_DEFAULT_SIZES);

	for (int32 i = 0; i < nl->n_items; i++)
	{
		if (nl->n_out[i] == 0)
			continue;
		old = MemoryContextSwitchTo(rowcxt);
		ExecClearTuple(slot);
		NeighborRowValues(rec_id, m, nl, i, slot->tts_values);
		memset(slot->tts_isnull, 0, sizeof(bool) * 5);
		ExecStoreVirtualTuple(slot);
		table_tuple_insert(rel, slot, cid, 0, bistate);
		if (rri->ri_NumIndices > 0)
			ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
		MemoryContextSwitchTo(old);
		ResetPerTupleExprContext(estate);
		MemoryContextReset(rowcxt);
		rows++;
		if ((rows & 255) == 0)
			CHECK_FOR_INTERRUPTS();
	}

	FreeBulkInsertState(bistate);
	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	MemoryContextDelete(rowcxt);
	CommandCounterIncrement();
	return rows;
}

/*
 * The refresh history's parameters beyond the registry row, as a jsonb
 * object's text: for EASE the items its dense matrix covers and the seconds
 * of each phase ({"ease_items": n, "phases": {"gram": s, ...}}); for a
 * Citus source whether the pair sums ran on the workers ("citus":
 * {"pushed_down": true, "fixed_point" (the sums merged in fixed point),
 * "states", "state_bytes", "gather_seconds",
 * "merge_seconds", "shard_cpu_seconds", "shard_cpu_seconds_max",
 * "node_cpu_seconds": {port: s}, for bm25 "first_pass_seconds" (its
 * lengths pass, within gather_seconds)}, or false and "why"); else {}.
 */
static char *
HistoryExtras(const SimRunStats *stats)
{
	StringInfoData buf;
	bool		any = false;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (stats->n_phases > 0)
	{
		appendStringInfo(&buf, "\"ease_items\": %d, \"phases\": {", stats->dense_items);
		for (int i = 0; i < stats->n_phases; i++)
		{
			if (i > 0)
				appendStringInfoString(&buf, ", ");
			escape_json(&buf, stats->phase_name[i]);
			appendStringInfo(&buf, ": %.6f", stats->phase_seconds[i]);
		}
		appendStringInfoChar(&buf, '}');
		any = true;
	}
	if (stats->citus)
	{
		appendStringInfo(&buf, "%s\"citus\": {\"pushed_down\": %s", any ? ", " : "",
						 stats->pushed_down ? "true" : "false");
		if (stats->pushed_down)
			appendStringInfo(&buf, ", \"fixed_point\": %s", stats->fixed_point ? "true" : "false");
		if (!stats->pushed_down)
		{
			appendStringInfoString(&buf, ", \"why\": ");
			escape_json(&buf, stats->citus_why);
		}
		if (stats->states > 0 || stats->pushed_down)
		{
			appendStringInfo(&buf, ", \"states\": %d, \"state_bytes\": " INT64_FORMAT
							 ", \"gather_seconds\": %.6f, \"merge_seconds\": %.6f"
							 ", \"shard_cpu_seconds\": %.6f, \"shard_cpu_seconds_max\": %.6f"
							 ", \"node_cpu_seconds\": {",
							 stats->states, stats->state_bytes, stats->gather_seconds,
							 stats->merge_seconds, stats->shard_seconds_sum, stats->shard_seconds_max);
			for (int i = 0; i < stats->n_nodes; i++)
				appendStringInfo(&buf, "%s\"%u\": %.6f", i > 0 ? ", " : "",
								 (unsigned) stats->node_port[i], stats->node_seconds[i]);
			appendStringInfoChar(&buf, '}');
			if (stats->first_pass_seconds > 0)
				appendStringInfo(&buf, ", \"first_pass_seconds\": %.6f", stats->first_pass_seconds);
		}
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

Datum
refresh_neighbors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext work;
	Recommender r;
	InteractionMatrix *m;
	NeighborLists *nl;
	SimRunStats stats;
	instr_time	start,
				wstart;
	double		write_seconds,
				total;
	int64		rows;
	Datum		out[5];
	bool		outnulls[5] = {false, false, false, false, false};
	char	   *name;
	int			rc;
	TimestampTz started_at;
	ItemPointerData row_tid;
	ItemPointerData now_tid;

	check_not_null(fcinfo, 0, "name");
	name = arg_text_or_null(fcinfo, 0);
	PreventCommandDuringRecovery("media_reco.refresh_neighbors()");
	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* waits here while another refresh of this recommender runs */
	recommender_fetch(name, true, callcxt, &r);
	recommender_require_source(&r);
	CheckStoreWritable(store_relid());	/* before the work, not only after it */
	started_at = GetCurrentTimestamp();
	INSTR_TIME_SET_CURRENT(start);
	source_validate(&r.src);
	SuggestUserIndex(&r.src);
	RegistryRowVersion(r.id, &row_tid);

	work = AllocSetContextCreate(callcxt, "media_reco refresh", ALLOCSET_DEFAULT_SIZES);
	nl = similarity_run(&r.src, &r.params, work, false, r.name, &m, &stats);

	/*
	 * Reading the source ran the user's code (a view over a function), which
	 * may have dropped or changed this recommender in our own transaction:
	 * the row lock does not stop our own backend.  The neighbour rows are
	 * written straight into the heap, where the foreign key is not checked,
	 * so the registry row is checked here: the same row version, or nothing
	 * is written.
	 */
	if (!RegistryRowVersion(r.id, &now_tid) || !ItemPointerEquals(&row_tid, &now_tid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recommender \"%s\" was dropped or changed while its source was read", r.name),
				 errdetail("Reading the source ran code that dropped, re-created or updated the recommender; nothing was written."),
				 errhint("A source must not call drop_recommender, create_recommender or modify media_reco.recommenders.")));

	INSTR_TIME_SET_CURRENT(wstart);
	{
		Oid			t = INT4OID;
		Datum		v = Int32GetDatum(r.id);

		rc = SPI_execute_with_args("DELETE FROM media_reco.neighbor_store"
								   " WHERE recommender_id OPERATOR(pg_catalog.=) $1",
								   1, &t, &v, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "could not delete old neighbours: %s", SPI_result_code_string(rc));
	}
	rows = WriteNeighbors(r.id, m, nl);
	write_seconds = elapsed_seconds(wstart);
	total = elapsed_seconds(start);
	ereport(NOTICE,
			(errmsg("media_reco: recommender \"%s\": wrote " INT64_FORMAT " items with " INT64_FORMAT " neighbour pairs in %.3f s (total %.3f s)",
					r.name, rows, stats.pairs, write_seconds, total)));

	{
		Oid			types[20] = {INT4OID, INT8OID, INT8OID, INT8OID, INT8OID,
			TEXTOID, TIMESTAMPTZOID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
			FLOAT8OID, INT8OID, INT8OID, INT4OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, INT4OID,
		TEXTOID, TIMESTAMPTZOID};
		Datum		v[20];
		char		n[20];

		v[0] = Int32GetDatum(r.id);
		v[1] = Int64GetDatum(stats.interactions);
		v[2] = Int64GetDatum(stats.users);
		v[3] = Int64GetDatum(stats.items);
		v[4] = Int64GetDatum(stats.pairs);
		v[5] = CStringGetTextDatum(r.name);
		v[6] = TimestampTzGetDatum(started_at);
		v[7] = Float8GetDatum(total);
		v[8] = Float8GetDatum(stats.read_seconds);
		v[9] = Float8GetDatum(stats.compute_seconds);
		v[10] = Float8GetDatum(write_seconds);
		v[11] = Int64GetDatum((int64) stats.peak_bytes);
		v[12] = Int64GetDatum(stats.nnz);
		v[13] = Int32GetDatum(media_reco_threads);
		/* the options in effect (ease_max_items NULL: every item) */
		v[14] = Float8GetDatum(r.params.ease_lambda);
		v[15] = Float8GetDatum(r.params.rp3_alpha);
		v[16] = Float8GetDatum(r.params.rp3_beta);
		v[17] = Int32GetDatum(r.params.max_items);
		v[18] = CStringGetTextDatum(HistoryExtras(&stats));
		/* clock time as a parameter: Citus refuses volatile calls in writes to a reference table */
		v[19] = TimestampTzGetDatum(GetCurrentTimestamp());
		memset(n, ' ', sizeof(n));
		if (r.params.max_items <= 0)
			n[17] = 'n';
		rc = SPI_execute_with_args(
			"WITH upd AS ("
			" UPDATE media_reco.recommenders SET refreshed_at = $20,"
			"  interactions = $2, users = $3, items = $4, pairs = $5"
			" WHERE id OPERATOR(pg_catalog.=) $1"
			" RETURNING source, user_col, item_col, weight_col, metric, k, min_support, shrinkage,"
			"  time_col, half_life, bm25_k1, bm25_b)"
			" INSERT INTO media_reco.refresh_history (recommender, started_at, finished_at,"
			"  interactions, users, items, pairs, seconds, read_seconds, compute_seconds,"
			"  write_seconds, peak_memory_bytes, parameters)"
			" SELECT $6, $7, $20, $2, $3, $4, $5, $8, $9, $10, $11, $12,"
			"  pg_catalog.jsonb_build_object('source', upd.source::pg_catalog.text,"
			"   'user_col', upd.user_col, 'item_col', upd.item_col, 'weight_col', upd.weight_col,"
			"   'metric', upd.metric, 'k', upd.k, 'min_support', upd.min_support,"
			"   'shrinkage', upd.shrinkage, 'time_col', upd.time_col, 'half_life', upd.half_life,"
			"   'distinct_pairs', $13, 'threads', $14, 'bm25_k1', upd.bm25_k1, 'bm25_b', upd.bm25_b,"
			"   'ease_lambda', $15, 'rp3_alpha', $16, 'rp3_beta', $17, 'ease_max_items', $18)"
			"  OPERATOR(pg_catalog.||) $19::jsonb"
			" FROM upd",
			20, types, v, n, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not record the refresh: %s", SPI_result_code_string(rc));
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("recommender \"%s\" was dropped while it was being refreshed", r.name)));
	}
	SPI_finish();
	MemoryContextDelete(work);

	out[0] = Int64GetDatum(stats.interactions);
	out[1] = Int64GetDatum(stats.users);
	out[2] = Int64GetDatum(stats.items);
	out[3] = Int64GetDatum(stats.pairs);
	out[4] = Float8GetDatum(total);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnulls);
	return (Datum) 0;
}
