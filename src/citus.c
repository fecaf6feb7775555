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
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "citus.h"

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
