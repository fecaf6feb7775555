/*
 * plan_cache.c
 *	  The per-backend cache of prepared SPI plans (contract in plan_cache.h).
 *
 * A small array searched linearly: the hot callers (recommend's history
 * query, the registry lookups) hit one of a handful of entries, and a hash
 * of the text is compared before the text itself.  Eviction detaches an
 * entry before freeing it, so an error part-way never leaves a slot pointing
 * at freed memory.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/memutils.h"

#include "plan_cache.h"

typedef struct PlanEntry
{
	char	   *sql;			/* NULL: free slot */
	uint32		hash;			/* of sql and argtypes */
	int			nargs;
	Oid		   *argtypes;
	SPIPlanPtr	plan;
	int			pins;			/* executions in progress */
	uint64		last_used;
} PlanEntry;

static PlanEntry entries[PLAN_CACHE_SIZE];
static uint64 plan_clock = 0;
static MemoryContext key_cxt = NULL;

static uint32
KeyHash(const char *sql, int nargs, const Oid *argtypes)
{
	uint32		h = hash_bytes((const unsigned char *) sql, (int) strlen(sql));

	if (nargs > 0)
		h = hash_combine(h, hash_bytes((const unsigned char *) argtypes,
									   (int) (sizeof(Oid) * nargs)));
	return h;
}

static PlanEntry *
Lookup(const char *sql, uint32 hash, int nargs, const Oid *argtypes)
{
	for (int i = 0; i < PLAN_CACHE_SIZE; i++)
	{
		PlanEntry  *e = &entries[i];

		if (e->sql && e->hash == hash && e->nargs == nargs &&
			(nargs == 0 || memcmp(e->argtypes, argtypes, sizeof(Oid) * nargs) == 0) &&
			strcmp(e->sql, sql) == 0)
			return e;
	}
	return NULL;
}

/* a free slot, or the least recently used unpinned one emptied; NULL if all are pinned */
static PlanEntry *
FreeSlot(void)
{
	PlanEntry  *victim = NULL;

	for (int i = 0; i < PLAN_CACHE_SIZE; i++)
	{
		PlanEntry  *e = &entries[i];

		if (e->sql == NULL)
			return e;
		if (e->pins == 0 && (victim == NULL || e->last_used < victim->last_used))
			victim = e;
	}
	if (victim)
	{
		SPIPlanPtr	plan = victim->plan;
		char	   *sql = victim->sql;
		Oid		   *types = victim->argtypes;

		victim->sql = NULL;
		victim->plan = NULL;
		victim->argtypes = NULL;
		SPI_freeplan(plan);
		pfree(sql);
		if (types)
			pfree(types);
	}
	return victim;
}

/* prepare and keep a plan for the key, in `slot` */
static void
Fill(PlanEntry *slot, const char *sql, uint32 hash, int nargs, const Oid *argtypes)
{
	SPIPlanPtr	plan;
	char	   *sql_copy;
	Oid		   *types_copy = NULL;

	if (key_cxt == NULL)
		key_cxt = AllocSetContextCreate(TopMemoryContext, "media_reco plan cache",
										ALLOCSET_SMALL_SIZES);
	plan = SPI_prepare(sql, nargs, (Oid *) argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare a cached query: %s", SPI_result_code_string(SPI_result));
	/* copies first: if one fails, the unkept plan goes with SPI's memory */
	sql_copy = MemoryContextStrdup(key_cxt, sql);
	if (nargs > 0)
	{
		types_copy = MemoryContextAlloc(key_cxt, sizeof(Oid) * nargs);
		memcpy(types_copy, argtypes, sizeof(Oid) * nargs);
	}
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep a cached query plan");
	slot->hash = hash;
	slot->nargs = nargs;
	slot->argtypes = types_copy;
	slot->plan = plan;
	slot->pins = 0;
	slot->sql = sql_copy;
}

int
plan_cache_execute(const char *sql, int nargs, const Oid *argtypes,
				   Datum *values, const char *nulls, bool read_only, long tcount)
{
	uint32		hash = KeyHash(sql, nargs, argtypes);
	PlanEntry  *volatile e = Lookup(sql, hash, nargs, argtypes);
	int			rc = 0;

	if (e == NULL)
	{
		PlanEntry  *slot = FreeSlot();

		if (slot == NULL)
		{
			/* every entry is executing (deep re-entry): run this one unkept */
			SPIPlanPtr	plan = SPI_prepare(sql, nargs, (Oid *) argtypes);

			if (plan == NULL)
				elog(ERROR, "could not prepare a query: %s", SPI_result_code_string(SPI_result));
			rc = SPI_execute_plan(plan, values, nulls, read_only, tcount);
			SPI_freeplan(plan);
			return rc;
		}
		Fill(slot, sql, hash, nargs, argtypes);
		e = slot;
	}
	e->last_used = ++plan_clock;
	e->pins++;
	PG_TRY();
	{
		rc = SPI_execute_plan(e->plan, values, nulls, read_only, tcount);
	}
	PG_FINALLY();
	{
		e->pins--;
	}
	PG_END_TRY();
	return rc;
}

bool
plan_cache_row_ctid(const char *sql, Oid argtype, Datum arg, ItemPointer tid)
{
	bool		isnull;

	if (plan_cache_execute(sql, 1, &argtype, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "registry check failed");
	if (SPI_processed == 0)
		return false;
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
																SPI_tuptable->tupdesc, 1, &isnull)),
					tid);
	return true;
}
