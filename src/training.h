/*
 * training.h
 *	  The SQL glue every supervised model (forest_fit, train_forest,
 *	  train_mlp) shares: the growing matrix of training rows, the label
 *	  check, reading the rows of a relation by column names and storing the
 *	  trained model.  The plain-C parts (row order, class sets) are in
 *	  training_core.h.
 */
#ifndef MEDIA_RECO_TRAINING_H
#define MEDIA_RECO_TRAINING_H

#include "postgres.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "inputs.h"

/* a growing row-major float8 matrix and its labels, bounded by mem_limit */
typedef struct TrainRows
{
	int32		nf;
	int64		n;
	int64		cap;
	double	   *x;
	double	   *y;
	Size		mem_limit;
} TrainRows;

/* an empty matrix of nf features per row; nothing is allocated yet */
extern void train_rows_init(TrainRows *tr, int32 nf, Size mem_limit);

/*
 * Room for `more` rows beyond tr->n, in the current memory context (the
 * caller keeps using the same one); 54000 beyond PG_INT32_MAX - 1 rows or
 * when the matrix would pass tr->mem_limit.
 */
extern void train_rows_reserve(TrainRows *tr, int64 more);

/* 22003 unless v is a finite label of magnitude at most 1e300 */
extern void check_label(double v);

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

/*
 * Store a model trained on td under name (model_store; caller connected to
 * SPI): its features and encoding from td->mi, its label and source from
 * td, n_classes classes (0 for regression), the options in effect and the
 * metrics (a JSON object's text).  Allocates in the current memory context.
 */
extern void training_store_model(const char *name, const char *algorithm, bool regression,
								 const TrainingData *td, int32 n_classes, const double *classes,
								 Jsonb *options, const char *metrics_json, bytea *blob);

#endif
