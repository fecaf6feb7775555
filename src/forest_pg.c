/*
 * forest_pg.c
 *	  Memory contexts, ereport and bytea around the plain-C forest core
 *	  (see forest_pg.h).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "core_pg.h"
#include "forest_pg.h"

/* ForestTrainEnv.on_release: run fn(arg) when the context is reset or deleted */
static void
OnContextRelease(void *ctx, void (*fn) (void *arg), void *arg)
{
	MemoryContextCallback *cb = MemoryContextAlloc((MemoryContext) ctx, sizeof(MemoryContextCallback));

	cb->func = fn;
	cb->arg = arg;
	MemoryContextRegisterResetCallback((MemoryContext) ctx, cb);
}

bytea *
forest_train_bytea(int64 n_rows, int32 nf, const double *x, const double *y,
				   const ForestParams *p, int nthreads, Size mem_limit,
				   const CoreInterrupts *hooks, ForestTrainInfo *info)
{
	CoreAlloc	a;
	CoreError	err;
	CoreBuf		b;
	ForestTrainEnv env;
	char		varhdr[VARHDRSZ] = {0};

	core_pg_alloc(&a, CurrentMemoryContext);
	env.alloc = &a;
	env.hooks = hooks;
	env.on_release = OnContextRelease;
	env.release_ctx = CurrentMemoryContext;
	env.nthreads = nthreads;
	env.mem_limit = mem_limit;
	/* room for the varlena header: model_blob_bytea fills it in */
	core_buf_init(&b, &a, 1024);
	core_buf_append(&b, varhdr, VARHDRSZ);
	core_pg_check(forest_core_train(n_rows, nf, x, y, p, &env, &b, info, &err), &err);
	return model_blob_bytea(&b);
}

Forest *
forest_load_pg(BlobReader *r)
{
	CoreAlloc	a;
	CoreError	err;
	Forest	   *f;

	core_pg_alloc(&a, CurrentMemoryContext);
	core_pg_check(forest_core_load(&a, r, &interrupt_hooks, &f, &err), &err);
	return f;
}

int32
forest_mtry(const ForestParams *p, int32 nf)
{
	CoreError	err;
	int32		m;

	core_pg_check(forest_core_mtry(p, nf, &m, &err), &err);
	return m;
}
