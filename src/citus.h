/*
 * citus.h
 *	  Recognising relations that Citus manages, without depending on Citus.
 */
#ifndef MEDIA_RECO_CITUS_H
#define MEDIA_RECO_CITUS_H

#include "postgres.h"

extern bool citus_installed(void);
extern bool relation_is_citus_table(Oid relid);
extern char *citus_local_placement(Oid relid);
extern int	citus_read_begin(Oid source);
extern void citus_read_end(int nest);

/* batched INSERTs through the planner (SPI connected), for tables Citus manages */
typedef struct CitusInsertBatch
{
	char	   *target;			/* "schema.table (col, ...)" */
	int			ncols;
	int			rows_per_batch;
	int			rows;			/* rows waiting */
	int64		total;			/* rows inserted */
	Oid		   *types;			/* rows_per_batch * ncols */
	Datum	   *values;
	char	   *full_sql;		/* the statement of a full batch, once built */
	MemoryContext cxt;			/* the waiting rows' values */
} CitusInsertBatch;

extern CitusInsertBatch *citus_insert_begin(const char *table_and_columns, int ncols, const Oid *types);
extern MemoryContext citus_insert_context(CitusInsertBatch *b);
extern void citus_insert_row(CitusInsertBatch *b, const Datum *row);
extern int64 citus_insert_end(CitusInsertBatch *b);

#endif
