/*
 * source.h
 *	  The interaction source: a relation given as regclass and its columns.
 */
#ifndef MEDIA_RECO_SOURCE_H
#define MEDIA_RECO_SOURCE_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "simcore.h"

typedef struct SourceSpec
{
	Oid			relid;
	const char *user_col;
	const char *item_col;
	const char *weight_col;		/* NULL: each row counts 1 */
	const char *time_col;		/* NULL: no time decay */
	double		half_life;		/* seconds, > 0 when time_col is set */
	TimestampTz ref_ts;			/* "now" for the decay */
} SourceSpec;

extern char *source_lock_relation(Oid relid);
extern void source_validate(const SourceSpec *src);
extern char *source_relname(const SourceSpec *src);
extern void source_read(const SourceSpec *src, TripleBuffer *tb, MemoryContext cxt,
						bool read_only);
extern void source_append_usable(StringInfo sql, const SourceSpec *src, const char *alias);
extern char *source_history_sql(const SourceSpec *src);
extern char *source_popular_sql(const SourceSpec *src, bool since);
extern char *source_rows_sql(const SourceSpec *src, bool by_user);
extern void check_weight_finite(const SourceSpec *src, double w);
extern double decayed_weight(const SourceSpec *src, double w, Datum t, Oid t_type);

/*
 * The decayed weight of src's rows as an SQL expression a worker evaluates
 * to one server's bits (media_reco.decayed_weight with src's reference time
 * and half-life as literals); NULL when the time column is a timestamp
 * without time zone (local time in this session's TimeZone).  palloc'd.
 */
extern char *source_decayed_weight_sql(const SourceSpec *src);

/* a query of one float8: the seconds between the usable rows' earliest and latest time (NULL: none) */
extern char *source_time_span_sql(const SourceSpec *src);

#endif
