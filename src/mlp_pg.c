/*
 * mlp_pg.c
 *	  The raising forms of the network core (mlp_core.h) for the SQL glue:
 *	  memory in CurrentMemoryContext, interrupts through CHECK_FOR_INTERRUPTS,
 *	  a returned CoreError ereported with its SQLSTATE.
 */
#include "postgres.h"

#include "core_pg.h"
#include "mlp_core.h"
#include "model_blob_pg.h"

bytea *
mlp_train(int64 n_rows, int32 n_in, const double *x, const double *y, const int32 *levels,
		  const MlpParams *p, size_t mem_limit, MlpTrainInfo *info)
{
	CoreAlloc	a;
	CoreBuf		buf;
	CoreError	err;
	char		hdr[VARHDRSZ] = {0};

	core_pg_alloc(&a, CurrentMemoryContext);
	core_buf_init(&buf, &a, 1024);
	/* room for the varlena header: model_blob_bytea fills it in */
	core_buf_append(&buf, hdr, VARHDRSZ);
	core_pg_check(mlp_core_train(&a, &interrupt_hooks, n_rows, n_in, x, y, levels, p, mem_limit,
								 &buf, info, &err), &err);
	return model_blob_bytea(&buf);
}

Mlp *
mlp_load(CoreReader *r)
{
	CoreAlloc	a;
	CoreError	err;
	Mlp		   *m;

	core_pg_alloc(&a, CurrentMemoryContext);
	core_pg_check(mlp_core_load(&a, r, &m, &err), &err);
	return m;
}

void
mlp_predict(const Mlp *m, const double *x, double *out)
{
	CoreError	err;

	core_pg_check(mlp_core_predict(m, x, out, &err), &err);
}
