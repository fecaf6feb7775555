/*
 * citus.c
 *	  Recognising relations that Citus manages, without depending on Citus.
 *
 * On a Citus coordinator (and on a worker with synced metadata) a
 * distributed, reference or Citus-local table is a shell: its own heap is
 * empty, or holds stale rows left behind by create_distributed_table, and
 * its rows live in shards that only the planner (Citus's planner hook)
 * knows how to reach.  Every media_reco path that reads or writes a
 * relation's heap directly, bypassing the planner, asks here first and goes
 * through SPI for such a relation.
 *
 * The test is Citus's own catalogue, pg_catalog.pg_dist_partition (one row
 * per table Citus manages, logicalrelid its OID), read with a catalogue scan
 * so that it needs neither SPI nor Citus's library: when the citus
 * extension is not installed in the database the answer is false at the
 * cost of one pg_extension lookup, and media_reco never links against,
 * loads or requires Citus.  Shards themselves are not in pg_dist_partition:
 * a query Citus sends to a shard on a worker reads the shard's heap as any
 * local table.
 *
 * Not yet done: the refresh's pair sums on the workers.  Citus 13 splits a
 * custom aggregate into worker_partial_agg / coord_combine_agg only when its
 * state type is not a pseudo-type (log_loss's float8[] state is split;
 * internal states pull every row to the coordinator), so per-shard pair
 * sums need a bytea state and a combine function; and the merged lists must
 * equal one server's bit for bit, which floating sums added in another
 * order do not give (the partial sums need exact accumulation).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "citus.h"
#include "plan_cache.h"

bool
citus_installed(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

/*
 * Whether Citus manages relid (a distributed, reference or Citus-local
 * table): false when Citus is not installed in this database.
 */
bool
relation_is_citus_table(Oid relid)
{
	Oid			catalog;
	AttrNumber	att;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	bool		found;

	if (!citus_installed())
		return false;
	catalog = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(catalog))
		return false;
	att = get_attnum(catalog, "logicalrelid");
	if (att == InvalidAttrNumber)
		return false;
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, att, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Around a whole-source read that a function follows with writes to
 * media_reco's own tables: when those are reference tables
 * (media_reco.citus_setup()) and the source is a Citus table, the read runs
 * with citus.multi_shard_modify_mode = sequential (one connection per node),
 * because Citus refuses to modify a reference table in a transaction that
 * has read a distributed table over several connections per node ("cannot
 * modify table ... because there was a parallel operation on a distributed
 * table").  Returns the GUC nest level for citus_read_end, which restores
 * the setting; 0 when nothing was changed.
 */
int
citus_read_begin(Oid source)
{
	Oid			nsp;
	Oid			registry;
	int			nest;

	if (!relation_is_citus_table(source))
		return 0;
	nsp = get_namespace_oid("media_reco", true);
	registry = OidIsValid(nsp) ? get_relname_relid("recommenders", nsp) : InvalidOid;
	if (!OidIsValid(registry) || !relation_is_citus_table(registry))
		return 0;
	nest = NewGUCNestLevel();
	(void) set_config_option("citus.multi_shard_modify_mode", "sequential",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
citus_read_end(int nest)
{
	if (nest > 0)
		AtEOXact_GUC(true, nest);
}

/*
 * The schema-qualified, quoted name of this node's placement of reference
 * table relid (the shard table "<name>_<shardid>" beside it), or NULL when
 * relid is not a Citus table with exactly one shard placed here.
 *
 * A query on a worker that runs inside a shard query Citus pushed down
 * (predict(...) over a distributed table's rows) may not start a distributed
 * query of its own: Citus refuses even a read of a reference table then
 * ("cannot execute a distributed query from a query on a shard").  A
 * reference table's placements all hold the same rows (Citus writes them in
 * one distributed transaction), so its read-only lookups read the local
 * placement directly, as Citus's own local execution would.
 */
char *
citus_local_placement(Oid relid)
{
	Oid			catalog;
	AttrNumber	att_rel,
				att_shard;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	int64		shardid = 0;
	int			n = 0;
	char	   *shardname;
	Oid			nsp;

	if (!relation_is_citus_table(relid))
		return NULL;
	catalog = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(catalog))
		return NULL;
	att_rel = get_attnum(catalog, "logicalrelid");
	att_shard = get_attnum(catalog, "shardid");
	if (att_rel == InvalidAttrNumber || att_shard == InvalidAttrNumber)
		return NULL;
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, att_rel, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, att_shard, RelationGetDescr(rel), &isnull);

		if (!isnull)
			shardid = DatumGetInt64(d);
		n++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (n != 1)
		return NULL;
	nsp = get_rel_namespace(relid);
	shardname = psprintf("%s_" INT64_FORMAT, get_rel_name(relid), shardid);
	if (!OidIsValid(get_relname_relid(shardname, nsp)))
		return NULL;
	return quote_qualified_identifier(get_namespace_name(nsp), shardname);
}

/*
 * Batched INSERTs through the planner, for tables Citus manages: one
 * statement per CITUS_INSERT_BATCH rows ("INSERT INTO t (cols) VALUES
 * ($1, ..), (..), .."), so a reference table's placements get a few hundred
 * statements for a refresh rather than one per row (each a round trip to
 * every node).  Full batches run one cached plan; the last, shorter batch
 * runs unprepared.  Row values are copied into the batch's own context,
 * reset after each statement.
 */
#define CITUS_INSERT_BATCH_PARAMS 2500

CitusInsertBatch *
citus_insert_begin(const char *table_and_columns, int ncols, const Oid *types)
{
	CitusInsertBatch *b = palloc0(sizeof(CitusInsertBatch));

	Assert(ncols > 0 && ncols <= CITUS_INSERT_BATCH_PARAMS);
	b->target = pstrdup(table_and_columns);
	b->ncols = ncols;
	b->rows_per_batch = CITUS_INSERT_BATCH_PARAMS / ncols;
	b->types = palloc(sizeof(Oid) * b->rows_per_batch * ncols);
	for (int i = 0; i < b->rows_per_batch * ncols; i++)
		b->types[i] = types[i % ncols];
	b->values = palloc(sizeof(Datum) * b->rows_per_batch * ncols);
	b->cxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco batched insert",
								   ALLOCSET_DEFAULT_SIZES);
	return b;
}

static char *
BatchSql(const CitusInsertBatch *b, int rows)
{
	StringInfoData sql;
	int			p = 1;

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s VALUES ", b->target);
	for (int r = 0; r < rows; r++)
	{
		appendStringInfoString(&sql, r ? ", (" : "(");
		for (int c = 0; c < b->ncols; c++)
			appendStringInfo(&sql, c ? ", $%d" : "$%d", p++);
		appendStringInfoChar(&sql, ')');
	}
	return sql.data;
}

static void
BatchFlush(CitusInsertBatch *b)
{
	int			rc;

	if (b->rows == 0)
		return;
	if (b->rows == b->rows_per_batch)
	{
		if (b->full_sql == NULL)
			b->full_sql = MemoryContextStrdup(GetMemoryChunkContext(b), BatchSql(b, b->rows));
		rc = plan_cache_execute(b->full_sql, b->rows * b->ncols, b->types, b->values, NULL, false, 0);
	}
	else
		rc = SPI_execute_with_args(BatchSql(b, b->rows), b->rows * b->ncols, b->types, b->values,
								   NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "batched insert into %s failed: %s", b->target, SPI_result_code_string(rc));
	b->total += b->rows;
	b->rows = 0;
	MemoryContextReset(b->cxt);
	CHECK_FOR_INTERRUPTS();
}

/* the batch's context: build a row's values in it, then add them */
MemoryContext
citus_insert_context(CitusInsertBatch *b)
{
	return b->cxt;
}

/* one row of ncols values (built in citus_insert_context(b), or by value) */
void
citus_insert_row(CitusInsertBatch *b, const Datum *row)
{
	memcpy(b->values + (size_t) b->rows * b->ncols, row, sizeof(Datum) * b->ncols);
	if (++b->rows == b->rows_per_batch)
		BatchFlush(b);
}

/* flushes the last rows; returns the rows inserted */
int64
citus_insert_end(CitusInsertBatch *b)
{
	int64		total;

	BatchFlush(b);
	total = b->total;
	MemoryContextDelete(b->cxt);
	CommandCounterIncrement();
	return total;
}
