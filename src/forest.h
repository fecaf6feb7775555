/*
 * forest.h
 *	  Random-forest glue shared by the aggregate (forest.c) and the model
 *	  registry (models.c): options, training rows, feature checks.
 */
#ifndef MEDIA_RECO_FOREST_H
#define MEDIA_RECO_FOREST_H

#include "postgres.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "forest_core.h"

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

extern void forest_options_parse(Jsonb *opts, ForestParams *p);
extern Jsonb *forest_options_jsonb(const ForestParams *p, int32 n_features);

extern void train_rows_init(TrainRows *tr, int32 nf, Size mem_limit);
extern void train_rows_reserve(TrainRows *tr, int64 more);

extern void check_finite_feature(double v);
extern void check_label(double v);
extern const double *features_from_array(ArrayType *a, int32 *len, double *buf, int32 bufcap);

#endif
