/*
 * als.h
 *	  Implicit ALS models (als.c) as other read paths need them.
 */
#ifndef MEDIA_RECO_ALS_H
#define MEDIA_RECO_ALS_H

#include "postgres.h"

#include "source.h"

/*
 * The source of ALS model `name` (columns, decay), strings in cxt; 42704
 * for an unknown model, 42P01 naming a dropped source.  Caller
 * SPI-connected; the source is not validated.
 */
extern void als_model_source(const char *name, MemoryContext cxt, SourceSpec *src);

#endif
