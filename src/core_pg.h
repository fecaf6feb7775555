/*
 * core_pg.h
 *	  The server side of core.h: an allocator over a memory context and the
 *	  ereport of a CoreError, for the SQL glue only (never a core).
 */
#ifndef MEDIA_RECO_CORE_PG_H
#define MEDIA_RECO_CORE_PG_H

#include "postgres.h"

#include "core.h"

/*
 * An allocator over `cxt` (huge allocations allowed, NULL on failure so the
 * core reports CORE_NOMEM).  The struct is filled in place: keep it alive as
 * long as the core uses it.
 */
extern void core_pg_alloc(CoreAlloc *a, MemoryContext cxt);

/* ereport(ERROR) a core's error with its SQLSTATE; never returns. */
extern void core_pg_raise(const CoreError *err) pg_attribute_noreturn();

/* Raise unless st is CORE_OK. */
static inline void
core_pg_check(CoreStatus st, const CoreError *err)
{
	if (st != CORE_OK)
		core_pg_raise(err);
}

/* The server's interrupt hooks (CHECK_FOR_INTERRUPTS), from util.c. */
extern const CoreInterrupts interrupt_hooks;

#endif
