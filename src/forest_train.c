/*
 * forest_train.c
 *	  train_forest: a random forest trained from a relation by column names
 *	  (training.c reads the rows, forest_core.c grows the trees) and stored
 *	  in the registry.  Beside forest.c, which holds the options and the
 *	  forest_fit aggregate; a file of its own because it is registry glue, not
 *	  aggregate glue.
 */
#include "postgres.h"

#include <math.h>

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "forest.h"
#include "forest_pg.h"
#include "inputs.h"
#include "models.h"
#include "training.h"
#include "util.h"

PG_FUNCTION_INFO_V1(train_forest);

/* every input layout the encoder accepts fits a forest */
StaticAssertDecl(INPUT_MAX_FEATURES <= FOREST_MAX_FEATURES,
				 "the input encoder's feature cap exceeds the forest's");

/*
 * train_forest(model_name, source, label_col, feature_cols, options): read
 * the rows (training.c), grow the forest on media_reco.threads threads, store
 * it under model_name (replacing one of that name); one result row.
 */
Datum
train_forest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	Jsonb	   *opts;
	ForestParams p;
	MemoryContext old;
	TrainingData td;
	instr_time	start;
	ForestTrainInfo info;
	bytea	   *blob;
	int			nthreads = media_reco_threads;
	double		seconds;
	char	   *metrics;
	int32		nf;

	check_not_null(fcinfo, 0, "model_name");
	check_not_null(fcinfo, 1, "source");
	check_not_null(fcinfo, 2, "label_col");
	check_not_null(fcinfo, 4, "options");
	INSTR_TIME_SET_CURRENT(start);
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	model_check_name(name);
	opts = PG_GETARG_JSONB_P(4);
	forest_options_parse(opts, &p);

	td.cxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco train_forest",
								   ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	model_read_training(PG_GETARG_OID(1), NameStr(*PG_GETARG_NAME(2)),
						PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3), &td);
	nf = td.rows.nf;

	old = MemoryContextSwitchTo(td.cxt);
	blob = forest_train_bytea(td.rows.n, td.rows.nf, td.rows.x, td.rows.y, &p, nthreads,
							  work_memory_limit(), &interrupt_hooks, &info);
	MemoryContextSwitchTo(old);
	pfree(td.rows.x);
	pfree(td.rows.y);
	seconds = elapsed_seconds(start);

	metrics = psprintf("{\"rows\": %lld, \"oob_score\": %s, \"seconds\": %.6f, "
					   "\"memory_bytes\": %zu, \"nodes\": %lld, \"threads\": %d}",
					   (long long) info.rows,
					   isnan(info.oob_score) ? "null" : psprintf("%.17g", info.oob_score),
					   seconds, info.memory, (long long) info.nodes, nthreads);
	training_store_model(name, "random_forest", p.task == FOREST_REGRESSION, &td,
						 info.n_classes, info.classes, forest_options_jsonb(&p, nf), metrics, blob);
	SPI_finish();
	MemoryContextDelete(td.cxt);

	InitMaterializedSRF(fcinfo, 0);
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(name);
		values[1] = Int64GetDatum(info.rows);
		values[2] = Int32GetDatum(nf);
		values[3] = Int32GetDatum(info.n_classes);
		values[4] = Float8GetDatum(info.oob_score);
		nulls[4] = isnan(info.oob_score);
		values[5] = Float8GetDatum(seconds);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
