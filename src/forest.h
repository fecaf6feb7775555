/*
 * forest.h
 *	  Random-forest glue shared by the forest_fit aggregate (forest.c) and
 *	  train_forest (forest_train.c): the options.  Training rows and the
 *	  label check are in training.h, feature values in inputs.h, the raising
 *	  forms of the core in forest_pg.h.
 */
#ifndef MEDIA_RECO_FOREST_H
#define MEDIA_RECO_FOREST_H

#include "postgres.h"
#include "utils/jsonb.h"

#include "forest_core.h"

/* options (NULL: the defaults) into *p, defaults filled in; 22023 on a bad option */
extern void forest_options_parse(Jsonb *opts, ForestParams *p);

/* the options in effect, defaults and features_per_split filled in, as a JSON object */
extern Jsonb *forest_options_jsonb(const ForestParams *p, int32 n_features);

#endif
