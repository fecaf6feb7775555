/*
 * training.h
 *	  Reading training rows from a relation by column names, shared by every
 *	  supervised model (train_forest, train_mlp).  The plain-C parts (row
 *	  order, class sets) are in training_core.h.
 */
#ifndef MEDIA_RECO_TRAINING_H
#define MEDIA_RECO_TRAINING_H

#include "postgres.h"
#include "utils/array.h"

#include "forest.h"				/* TrainRows */
#include "inputs.h"

/* training rows read from a relation by column names */
typedef struct TrainingData
{
	MemoryContext cxt;			/* rows and category lists live here (the caller creates it) */
	ModelInputs mi;
	TrainRows	rows;
	char	   *relname;
	char	   *label;
	Oid			label_type;
} TrainingData;

/*
 * Read the rows of relation relid (caller connected to SPI, td->cxt set):
 * the label column (a number or boolean; rows with a NULL label skipped,
 * a non-finite label 22003) and the feature columns `cols` (NULL: every
 * other supported column), encoded by inputs.c into td->rows in td->cxt,
 * bounded by maintenance_work_mem.  Checks interrupts per batch.
 */
extern void model_read_training(Oid relid, const char *label, ArrayType *cols, TrainingData *td);

#endif
