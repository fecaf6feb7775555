/*
 * core_pg.c
 *	  Memory contexts and ereport for the plain-C cores (see core.h).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "core_pg.h"

static void *
ContextAlloc(void *ctx, size_t size)
{
	if (size > MaxAllocHugeSize)
		return NULL;
	return MemoryContextAllocExtended((MemoryContext) ctx, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static void
ContextFree(void *ctx, void *p)
{
	(void) ctx;
	pfree(p);
}

void
core_pg_alloc(CoreAlloc *a, MemoryContext cxt)
{
	a->alloc = ContextAlloc;
	a->free = ContextFree;
	a->ctx = cxt;
}

static int
StatusSqlState(CoreStatus st)
{
	switch (st)
	{
		case CORE_CORRUPT:
			return ERRCODE_INVALID_BINARY_REPRESENTATION;
		case CORE_NOMEM:
			return ERRCODE_OUT_OF_MEMORY;
		case CORE_LIMIT:
			return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		case CORE_DATA:
			return ERRCODE_DATA_EXCEPTION;
		case CORE_RANGE:
			return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
		case CORE_INVALID:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case CORE_OK:
			break;
	}
	return ERRCODE_INTERNAL_ERROR;
}

void
core_pg_raise(const CoreError *err)
{
	if (err->status == CORE_OK)
		elog(ERROR, "core_pg_raise called without an error");
	ereport(ERROR,
			(errcode(StatusSqlState(err->status)),
			 errmsg_internal("%s", err->message),
			 err->detail[0] ? errdetail_internal("%s", err->detail) : 0,
			 err->hint[0] ? errhint("%s", err->hint) : 0));
	pg_unreachable();
}
