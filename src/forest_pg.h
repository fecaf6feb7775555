/*
 * forest_pg.h
 *	  The server side of forest_core.h: training into a bytea and loading
 *	  from a BlobReader with errors raised, for the SQL glue (forest.c,
 *	  forest_train.c, predict.c).
 */
#ifndef MEDIA_RECO_FOREST_PG_H
#define MEDIA_RECO_FOREST_PG_H

#include "postgres.h"

#include "forest_core.h"
#include "model_blob_pg.h"

/*
 * Train (forest_core_train) in CurrentMemoryContext and return the model
 * value; errors are raised with their SQLSTATE.  An interrupt that unwinds
 * out of training frees the helper threads' buffers with the context.
 */
extern bytea *forest_train_bytea(int64 n_rows, int32 n_features, const double *x, const double *y,
								 const ForestParams *p, int nthreads, Size mem_limit,
								 const CoreInterrupts *hooks, ForestTrainInfo *info);

/* Load the payload r covers (forest_core_load) into CurrentMemoryContext; 22P03 on bad bytes. */
extern Forest *forest_load_pg(BlobReader *r);

/* The features tried per split (forest_core_mtry); 22023 on a bad count. */
extern int32 forest_mtry(const ForestParams *p, int32 n_features);

#endif
