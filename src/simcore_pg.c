/*
 * simcore_pg.c
 *	  The raising forms of the similarity core (simcore.h) for the SQL glue:
 *	  memory in CurrentMemoryContext, interrupts through CHECK_FOR_INTERRUPTS
 *	  (the caller's hooks for sim_compute), a returned CoreError ereported
 *	  with its SQLSTATE.
 */
#include "postgres.h"

#include "core_pg.h"
#include "simcore.h"

/* the buffer keeps a copy of this allocator: its chunks go to the creating context */
TripleBuffer *
triples_create(size_t mem_limit, const char *limit_name)
{
	CoreAlloc	a;
	CoreError	err;
	TripleBuffer *tb;

	core_pg_alloc(&a, CurrentMemoryContext);
	tb = simcore_triples_create(&a, mem_limit, limit_name, &err);
	if (tb == NULL)
		core_pg_raise(&err);
	return tb;
}

void
triples_add(TripleBuffer *tb, int64 user, int64 item, double w)
{
	CoreError	err;

	if (unlikely(simcore_triples_add(tb, user, item, w, &err) != CORE_OK))
		core_pg_raise(&err);
}

InteractionMatrix *
matrix_build_ex(TripleBuffer *tb, bool with_items)
{
	CoreAlloc	a;
	CoreError	err;
	InteractionMatrix *m;

	core_pg_alloc(&a, CurrentMemoryContext);
	core_pg_check(simcore_matrix_build(&a, tb, with_items, &interrupt_hooks, &m, &err), &err);
	return m;
}

InteractionMatrix *
matrix_build(TripleBuffer *tb)
{
	return matrix_build_ex(tb, true);
}

NeighborLists *
sim_compute(InteractionMatrix *m, const SimParams *p, int nthreads, const SimInterruptHooks *hooks)
{
	CoreAlloc	a;
	CoreError	err;
	NeighborLists *nl;

	core_pg_alloc(&a, CurrentMemoryContext);
	core_pg_check(simcore_compute(&a, m, p, nthreads, hooks, &nl, &err), &err);
	return nl;
}
