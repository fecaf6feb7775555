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

#endif
