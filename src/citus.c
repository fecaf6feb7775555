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
#include "utils/lsyscache.h"

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
