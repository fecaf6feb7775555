/*
 * neighbors.h
 *	  The recommender registry and the materialized neighbour table.
 */
#ifndef MEDIA_RECO_NEIGHBORS_H
#define MEDIA_RECO_NEIGHBORS_H

#include "postgres.h"

#include "simcore.h"
#include "source.h"

typedef struct Recommender
{
	int32		id;
	char	   *name;
	SourceSpec	src;
	SimParams	params;
	bool		refreshed;		/* refresh_neighbors has run at least once */
	char	   *dropped_source;	/* the source's name when it was dropped (src.relid invalid), else NULL */
} Recommender;

/*
 * Look a recommender up by name (caller is SPI-connected); strings are
 * allocated in `cxt`.  With lock, the row is locked FOR NO KEY UPDATE so two
 * refreshes of one recommender never interleave.  Raises 42704 if unknown.
 */
extern void recommender_fetch(const char *name, bool lock, MemoryContext cxt, Recommender *out);

/*
 * 42P01 naming the old source when the recommender's source relation was
 * dropped (the sql_drop event trigger marks it); call before source_validate
 * wherever the source is read.
 */
extern void recommender_require_source(const Recommender *r);

/* OID of media_reco.neighbor_store */
extern Oid	store_relid(void);

/* 55000 unless the recommender has been refreshed at least once */
extern void recommender_require_refreshed(const Recommender *r);

#endif
