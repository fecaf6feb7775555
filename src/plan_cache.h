/*
 * plan_cache.h
 *	  The one per-backend cache of prepared SPI plans.
 *
 * Contract:
 * - Key: the exact query text together with its argument types.  A caller
 *	 that puts relation or column names into the text resolves them first
 *	 (from the OID it locked, through quote_identifier), so a renamed,
 *	 dropped or swapped relation gives a different text and a different plan;
 *	 two callers with the same text share one plan.  Never key on a pointer
 *	 or an OID alone.
 * - Invalidation: a kept plan is a plancache entry, so PostgreSQL re-plans it
 *	 (re-running parse analysis from the text) after any DDL, statistics,
 *	 role or search_path change that concerns it; privileges and row-level
 *	 security are checked at every execution.  A cached plan never means
 *	 anything other than what its text means now.
 * - Lifetime and memory: plans are kept (SPI_keepplan, under
 *	 CacheMemoryContext) and their texts copied into a child of
 *	 TopMemoryContext, until the backend exits or the entry is evicted (least
 *	 recently used first, PLAN_CACHE_SIZE entries).  An entry is pinned while
 *	 its plan executes, so a query that re-enters the cache (a view calling
 *	 recommend) never frees a plan in use; when every entry is pinned the
 *	 statement runs unkept.  An error in prepare or execute leaves the cache
 *	 consistent (nothing half-inserted, pins released).
 * - Callers are SPI-connected; only the backend's own thread may call.
 *	 One-shot statements (DDL, a CREATE TABLE AS per call) do not belong
 *	 here: use SPI_execute_with_args.
 */
#ifndef MEDIA_RECO_PLAN_CACHE_H
#define MEDIA_RECO_PLAN_CACHE_H

#include "postgres.h"

#include "storage/itemptr.h"

#define PLAN_CACHE_SIZE 64

/*
 * Execute `sql` with `nargs` parameters of types `argtypes` through a cached
 * plan, preparing it on first use; `values`, `nulls`, `read_only` and
 * `tcount` are as for SPI_execute_plan, and so is the return value (the
 * result is in SPI_tuptable / SPI_processed).
 */
extern int	plan_cache_execute(const char *sql, int nargs, const Oid *argtypes,
							   Datum *values, const char *nulls, bool read_only,
							   long tcount);

/*
 * The ctid of the first row `sql` (one parameter, returning one ctid column)
 * gives, read with a new snapshot (read_only = false, so changes this
 * transaction made are seen); false when there is none.  The registries'
 * row version: a changed ctid means the row was updated (a new training or
 * refresh) since it was last looked at.  Caller SPI-connected.
 */
extern bool plan_cache_row_ctid(const char *sql, Oid argtype, Datum arg, ItemPointer tid);

#endif
