/*
 * source.c
 *	  Validation and scanning of a user's interaction relation.
 *
 * The relation is a regclass; its columns are looked up in the catalog and
 * only ever appear in query text through quote_identifier(), so a column
 * "name" such as `u; DROP TABLE x` is just an unknown column.  Rows stream
 * from the executor straight into the triple buffer through a DestReceiver
 * (no SPI tuple table is materialised).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/lmgr.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/syscache.h"

#include "citus.h"
#include "simcore.h"
#include "source.h"
#include "util.h"

/*
 * The source's current schema-qualified, quoted name, looked up from its OID
 * (palloc'd in the current context); 42P01 when the relation is gone.  Call
 * after source_lock_relation/source_validate so the name stays meaningful.
 */
char *
source_relname(const SourceSpec *src)
{
	char	   *rel = get_rel_name(src->relid);
	char	   *nsp;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation with OID %u does not exist", src->relid),
				 errhint("The relation may have been dropped after the recommender was created.")));
	nsp = get_namespace_name(get_rel_namespace(src->relid));
	return quote_qualified_identifier(nsp, rel);
}

static Oid
ColumnType(const SourceSpec *src, const char *col, const char *role)
{
	AttrNumber	att = get_attnum(src->relid, col);

	if (att == InvalidAttrNumber || att < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" (%s column) does not exist in relation \"%s\"",
						col, role, get_rel_name(src->relid))));
	return getBaseType(get_atttype(src->relid, att));
}

/*
 * Lock a relation given by OID and check it can be read as a source;
 * returns its schema-qualified, quoted name.  Locking by OID first means a
 * concurrent rename, drop or swap waits for our transaction, so the name we
 * put in query text keeps meaning the relation checked here.
 */
char *
source_lock_relation(Oid relid)
{
	char		relkind;

	LockRelationOid(relid, AccessShareLock);
	relkind = get_rel_relkind(relid);
	if (relkind == '\0')
	{
		UnlockRelationOid(relid, AccessShareLock);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation with OID %u does not exist", relid)));
	}
	if (relkind != RELKIND_RELATION && relkind != RELKIND_VIEW &&
		relkind != RELKIND_MATVIEW && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table, view, materialized view or foreign table",
						get_rel_name(relid))));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * Lock the source and check every column the spec names: it exists, has a
 * usable type (42703 / 42804 otherwise) and the caller may SELECT it (42501,
 * column grants count).  Raises; allocates nothing the caller keeps.
 */
void
source_validate(const SourceSpec *src)
{
	Oid			typ;

	(void) source_lock_relation(src->relid);

	typ = ColumnType(src, src->user_col, "user");
	if (typ != INT2OID && typ != INT4OID && typ != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("user column \"%s\" has type %s", src->user_col, format_type_be(typ)),
				 errdetail("User and item columns must be smallint, integer or bigint.")));
	typ = ColumnType(src, src->item_col, "item");
	if (typ != INT2OID && typ != INT4OID && typ != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("item column \"%s\" has type %s", src->item_col, format_type_be(typ)),
				 errdetail("User and item columns must be smallint, integer or bigint.")));
	if (src->time_col)
	{
		typ = ColumnType(src, src->time_col, "time");
		if (typ != TIMESTAMPOID && typ != TIMESTAMPTZOID && typ != INT2OID && typ != INT4OID &&
			typ != INT8OID && typ != FLOAT4OID && typ != FLOAT8OID && typ != NUMERICOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("time column \"%s\" has type %s", src->time_col, format_type_be(typ)),
					 errdetail("The time column must be timestamp, timestamptz, or a number of seconds since the Unix epoch.")));
	}
	if (src->weight_col)
	{
		typ = ColumnType(src, src->weight_col, "weight");
		if (typ != INT2OID && typ != INT4OID && typ != INT8OID &&
			typ != FLOAT4OID && typ != FLOAT8OID && typ != NUMERICOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("weight column \"%s\" has type %s", src->weight_col, format_type_be(typ)),
					 errdetail("The weight column must be smallint, integer, bigint, real, double precision or numeric.")));
	}

	{
		AttrNumber	atts[4];
		int			n = 0;

		atts[n++] = get_attnum(src->relid, src->user_col);
		atts[n++] = get_attnum(src->relid, src->item_col);
		if (src->weight_col)
			atts[n++] = get_attnum(src->relid, src->weight_col);
		if (src->time_col)
			atts[n++] = get_attnum(src->relid, src->time_col);
		check_relation_privilege(src->relid, ACL_SELECT, atts, n);
	}
}

/* Raise 22023 naming the weight column when w is NaN or infinite; any thread that may ereport. */
void
check_weight_finite(const SourceSpec *src, double w)
{
	if (isnan(w) || isinf(w))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weight column \"%s\" contains a non-finite value (%s)",
						src->weight_col, isnan(w) ? "NaN" : (w > 0 ? "Infinity" : "-Infinity")),
				 errhint("Filter or fix the rows whose weight is NaN or infinite.")));
}

/*
 * Time decay: w * 0.5^(age / half_life), age = now - t in seconds.  For
 * timestamp columns the age is taken in exact integer microseconds (so an
 * event exactly one half-life old weighs exactly half); a timestamp without
 * time zone is local time in the session's TimeZone, as in SQL's
 * now() - t.  Numbers are seconds since the Unix epoch.
 */
double
decayed_weight(const SourceSpec *src, double w, Datum t, Oid t_type)
{
	double		age;

	/* a domain over a timestamp (or over float8) decays as its base type */
	if (t_type != TIMESTAMPOID && t_type != TIMESTAMPTZOID && t_type != FLOAT8OID)
		t_type = getBaseType(t_type);

	if (t_type == TIMESTAMPOID || t_type == TIMESTAMPTZOID)
	{
		TimestampTz ts = DatumGetTimestampTz(t);
		int64		diff;

		if (t_type == TIMESTAMPOID && !TIMESTAMP_NOT_FINITE(ts))
		{
			int			overflow = 0;

			ts = timestamp2timestamptz_opt_overflow(DatumGetTimestamp(t), &overflow);
			if (overflow != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						 errmsg("time column \"%s\" holds a timestamp out of range in time zone \"%s\"",
								src->time_col, pg_get_timezone_name(session_timezone))));
		}
		if (TIMESTAMP_NOT_FINITE(ts))
			age = NAN;
		else if (pg_sub_s64_overflow(src->ref_ts, ts, &diff))
			age = ((double) src->ref_ts - (double) ts) / USECS_PER_SEC;
		else
			age = (double) diff / USECS_PER_SEC;
	}
	else
		age = (double) src->ref_ts / USECS_PER_SEC +
			(double) ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY) - DatumGetFloat8(t);
	if (!isfinite(age))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time column \"%s\" contains a non-finite value", src->time_col),
				 errhint("Filter or fix the rows whose time is infinite or NaN.")));
	if (w == 0)
		return w;				/* whatever the factor, even one beyond double precision */
	{
		double		dw = w * sim_pow_half(age / src->half_life);	/* the same bits on every node */

		/* a time far after the reference doubles the weight every half-life */
		if (!isfinite(dw))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("time column \"%s\" decays a weight beyond double precision", src->time_col),
					 errdetail("A weight of %g, %g half-lives after the reference time.", w, -age / src->half_life),
					 errhint("Filter out the times after now(), or use a longer half_life.")));
		return dw;
	}
}

/*
 * media_reco.decayed_weight(weight, t, reference_us, half_life_seconds,
 * time_col): decayed_weight as SQL, for the pair sums the Citus workers
 * compute (pairsums.c): reference_us is the "now" of the decay as
 * PostgreSQL's internal timestamp (microseconds since 2000-01-01 UTC) and
 * half_life_seconds the half-life, both passed as literals, so every worker
 * computes the bits one server computes; time_col names the column in
 * errors.  A non-finite weight is returned as it is, for the reader that
 * follows to report as one server does.  STRICT.
 */
static Datum
DecayedWeightArgs(FunctionCallInfo fcinfo, Oid t_type)
{
	SourceSpec	s;
	double		w = PG_GETARG_FLOAT8(0);

	memset(&s, 0, sizeof(s));
	s.ref_ts = PG_GETARG_INT64(2);
	s.half_life = PG_GETARG_FLOAT8(3);
	s.time_col = text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (!(s.half_life > 0) || isinf(s.half_life))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("half_life_seconds must be a positive finite number of seconds")));
	if (!isfinite(w))
		PG_RETURN_FLOAT8(w);
	PG_RETURN_FLOAT8(decayed_weight(&s, w, PG_GETARG_DATUM(1), t_type));
}

PG_FUNCTION_INFO_V1(decayed_weight_timestamptz);
Datum
decayed_weight_timestamptz(PG_FUNCTION_ARGS)
{
	return DecayedWeightArgs(fcinfo, TIMESTAMPTZOID);
}

PG_FUNCTION_INFO_V1(decayed_weight_float8);
Datum
decayed_weight_float8(PG_FUNCTION_ARGS)
{
	return DecayedWeightArgs(fcinfo, FLOAT8OID);
}

static Oid	TimeType(const SourceSpec *src);

char *
source_decayed_weight_sql(const SourceSpec *src)
{
	Oid			typ = TimeType(src);
	StringInfoData sql;

	if (typ == TIMESTAMPOID)
		return NULL;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "media_reco.decayed_weight(");
	if (src->weight_col)
		appendStringInfo(&sql, "(%s)::pg_catalog.float8", quote_identifier(src->weight_col));
	else
		appendStringInfoString(&sql, "1::pg_catalog.float8");
	appendStringInfo(&sql, ", (%s)::%s, " INT64_FORMAT "::pg_catalog.int8, %.17g::pg_catalog.float8, %s)",
					 quote_identifier(src->time_col),
					 typ == TIMESTAMPTZOID ? "pg_catalog.timestamptz" : "pg_catalog.float8",
					 (int64) src->ref_ts, src->half_life, quote_literal_cstr(src->time_col));
	return sql.data;
}

char *
source_time_span_sql(const SourceSpec *src)
{
	StringInfoData sql;
	const char *t = quote_identifier(src->time_col);

	initStringInfo(&sql);
	if (TimeType(src) == TIMESTAMPTZOID || TimeType(src) == TIMESTAMPOID)
		appendStringInfo(&sql, "SELECT pg_catalog.date_part('epoch', pg_catalog.max(%s) OPERATOR(pg_catalog.-) pg_catalog.min(%s))", t, t);
	else
		appendStringInfo(&sql, "SELECT pg_catalog.max((%s)::pg_catalog.float8) OPERATOR(pg_catalog.-) pg_catalog.min((%s)::pg_catalog.float8)", t, t);
	appendStringInfo(&sql, " FROM %s WHERE ", source_relname(src));
	source_append_usable(&sql, src, NULL);
	return sql.data;
}

/*
 * The usable-row rule, the one definition every reader of a source applies
 * (a refresh, a user's history, popular_items, evaluate, user-based CF): a
 * row counts when its user and item are not NULL, its weight is not NULL
 * when the recommender has a weight column, and its time is not NULL when it
 * has a time column.  A NaN or infinite weight or time is an error where it
 * is read, never skipped.  ScanDirect applies the same rule to its slots.
 */
void
source_append_usable(StringInfo sql, const SourceSpec *src, const char *alias)
{
	const char *cols[4] = {src->user_col, src->item_col, src->weight_col, src->time_col};
	bool		first = true;

	for (int c = 0; c < 4; c++)
	{
		if (cols[c] == NULL)
			continue;
		appendStringInfo(sql, "%s%s%s%s IS NOT NULL", first ? "" : " AND ",
						 alias ? alias : "", alias ? "." : "", quote_identifier(cols[c]));
		first = false;
	}
}

static Oid
TimeType(const SourceSpec *src)
{
	return getBaseType(get_atttype(src->relid, get_attnum(src->relid, src->time_col)));
}

/* the time column in query output: timestamps as they are, numbers as float8 */
static void
AppendTimeExpr(StringInfo sql, const SourceSpec *src)
{
	Oid			typ = TimeType(src);

	if (typ == TIMESTAMPOID || typ == TIMESTAMPTZOID)
		appendStringInfo(sql, ", %s", quote_identifier(src->time_col));
	else
		appendStringInfo(sql, ", (%s)::pg_catalog.float8", quote_identifier(src->time_col));
}

static void
AppendSelect(StringInfo sql, const SourceSpec *src)
{
	appendStringInfo(sql, "SELECT (%s)::pg_catalog.int8, (%s)::pg_catalog.int8",
					 quote_identifier(src->user_col), quote_identifier(src->item_col));
	if (src->weight_col)
		appendStringInfo(sql, ", (%s)::pg_catalog.float8", quote_identifier(src->weight_col));
	if (src->time_col)
		AppendTimeExpr(sql, src);
	appendStringInfo(sql, " FROM %s WHERE ", source_relname(src));
	source_append_usable(sql, src, NULL);
}

/*
 * The history query of one user ($1 int8): item[, weight][, time] over the
 * usable rows, palloc'd in the current context.  Names are resolved now, so
 * the text is a valid plan_cache key.
 */
char *
source_history_sql(const SourceSpec *src)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT (%s)::pg_catalog.int8", quote_identifier(src->item_col));
	if (src->weight_col)
		appendStringInfo(&sql, ", (%s)::pg_catalog.float8", quote_identifier(src->weight_col));
	if (src->time_col)
		AppendTimeExpr(&sql, src);
	appendStringInfo(&sql, " FROM %s WHERE %s OPERATOR(pg_catalog.=) $1 AND ",
					 source_relname(src), quote_identifier(src->user_col));
	source_append_usable(&sql, src, NULL);
	return sql.data;
}

/*
 * The source's usable rows (user, item[, weight][, time]) whose user (or,
 * with by_user false, item) is one of the int8[] $1; its NULL rules apply.
 */
char *
source_rows_sql(const SourceSpec *src, bool by_user)
{
	StringInfoData sql;

	initStringInfo(&sql);
	AppendSelect(&sql, src);
	appendStringInfo(&sql, " AND %s OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])",
					 quote_identifier(by_user ? src->user_col : src->item_col));
	return sql.data;
}

/*
 * Distinct users per item, most first (ties: smaller item id), limited to $1
 * rows, over the usable rows (the ones a refresh reads);
 * with `since`, only rows whose time is at or after $2.
 */
char *
source_popular_sql(const SourceSpec *src, bool since)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT (%s)::pg_catalog.int8 AS item, pg_catalog.count(DISTINCT %s) AS users"
					 " FROM %s WHERE ",
					 quote_identifier(src->item_col), quote_identifier(src->user_col),
					 source_relname(src));
	source_append_usable(&sql, src, NULL);
	if (since)
	{
		Oid			typ = TimeType(src);

		if (typ == TIMESTAMPOID || typ == TIMESTAMPTZOID)
			/* a timestamp without time zone is local time in the session's TimeZone, as in SQL */
			appendStringInfo(&sql, " AND (%s)::pg_catalog.timestamptz OPERATOR(pg_catalog.>=) $2",
							 quote_identifier(src->time_col));
		else
			appendStringInfo(&sql, " AND (%s)::pg_catalog.float8 OPERATOR(pg_catalog.>=)"
							 " pg_catalog.date_part('epoch', $2)", quote_identifier(src->time_col));
	}
	appendStringInfoString(&sql, " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $1");
	return sql.data;
}

/* ---------- streaming receiver ---------- */

typedef struct TripleReceiver
{
	DestReceiver pub;
	const SourceSpec *src;
	TripleBuffer *tb;
	MemoryContext cxt;
	uint64		rows;
} TripleReceiver;

static bool
TripleReceive(TupleTableSlot *slot, DestReceiver *self)
{
	TripleReceiver *r = (TripleReceiver *) self;
	MemoryContext old;
	double		w = 1.0;

	slot_getallattrs(slot);
	if (r->src->weight_col)
	{
		w = DatumGetFloat8(slot->tts_values[2]);
		check_weight_finite(r->src, w);
	}
	if (r->src->time_col)
	{
		int			tcol = r->src->weight_col ? 3 : 2;

		w = decayed_weight(r->src, w, slot->tts_values[tcol],
						   TupleDescAttr(slot->tts_tupleDescriptor, tcol)->atttypid);
	}
	old = MemoryContextSwitchTo(r->cxt);
	triples_add(r->tb, DatumGetInt64(slot->tts_values[0]),
				DatumGetInt64(slot->tts_values[1]), w);
	MemoryContextSwitchTo(old);
	if ((++r->rows & 0xFFFF) == 0)
		CHECK_FOR_INTERRUPTS();
	return true;
}

static void
TripleStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
TripleShutdown(DestReceiver *self)
{
}

static void
TripleDestroy(DestReceiver *self)
{
}

/*
 * Fast path: a plain table (or populated materialized view) without
 * inheritance children and without row-level security for this user is
 * scanned directly with the table AM, skipping the executor's projection
 * and casts.  Privileges were checked by source_validate(); anything else
 * (views, partitioned or inherited tables, RLS, foreign tables) goes
 * through SPI so that PostgreSQL applies every rule itself.  So does a
 * table Citus manages (distributed, reference or Citus-local): its heap on
 * this node is an empty shell (or holds rows create_distributed_table left
 * behind), the rows are in shards only the planner reaches (citus.c).
 */
static bool
CanScanDirectly(const SourceSpec *src)
{
	char		relkind = get_rel_relkind(src->relid);

	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW)
		return false;
	/* temporary and unlogged relations keep the executor's own checks and errors */
	if (get_rel_persistence(src->relid) != RELPERSISTENCE_PERMANENT)
		return false;
	if (has_subclass(src->relid))
		return false;
	if (check_enable_rls(src->relid, InvalidOid, true) != RLS_NONE)
		return false;
	if (relation_is_citus_table(src->relid))
		return false;
	return true;
}

static inline int64
IntDatum(Datum d, Oid typ)
{
	switch (typ)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

static inline double
WeightDatum(Datum d, Oid typ)
{
	switch (typ)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return (double) DatumGetInt64(d);
		case FLOAT4OID:
			return DatumGetFloat4(d);
		case FLOAT8OID:
			return DatumGetFloat8(d);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	}
}

static void
ScanDirect(const SourceSpec *src, TripleBuffer *tb, MemoryContext cxt, bool read_only)
{
	Relation	rel = table_open(src->relid, AccessShareLock);
	AttrNumber	ua = get_attnum(src->relid, src->user_col);
	AttrNumber	ia = get_attnum(src->relid, src->item_col);
	AttrNumber	wa = src->weight_col ? get_attnum(src->relid, src->weight_col) : InvalidAttrNumber;
	Oid			ut = getBaseType(get_atttype(src->relid, ua));
	Oid			it = getBaseType(get_atttype(src->relid, ia));
	Oid			wt = wa != InvalidAttrNumber ? getBaseType(get_atttype(src->relid, wa)) : InvalidOid;
	AttrNumber	ta = src->time_col ? get_attnum(src->relid, src->time_col) : InvalidAttrNumber;
	Oid			tt = ta != InvalidAttrNumber ? getBaseType(get_atttype(src->relid, ta)) : InvalidOid;
	int			natts = Max(Max(ua, ia), Max(wa, ta));
	TableScanDesc scan;
	TupleTableSlot *slot;
	MemoryContext rowcxt,
				old;
	uint64		rows = 0;

	if (rel->rd_rel->relkind == RELKIND_MATVIEW && !RelationIsPopulated(rel))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("materialized view \"%s\" has not been populated",
						RelationGetRelationName(rel)),
				 errhint("Use the REFRESH MATERIALIZED VIEW command.")));

	/* like SPI: a read-write caller sees its own earlier work and what committed up to now */
	if (!read_only)
		CommandCounterIncrement();
	PushActiveSnapshot(read_only ? GetActiveSnapshot() : GetTransactionSnapshot());
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "media_reco scan row",
								   ALLOCSET_SMALL_SIZES);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		double		w = 1.0;
		int64		u,
					i;

		slot_getsomeattrs(slot, natts);
		/* the usable-row rule (source_append_usable), on the slot */
		if (slot->tts_isnull[ua - 1] || slot->tts_isnull[ia - 1] ||
			(wa != InvalidAttrNumber && slot->tts_isnull[wa - 1]) ||
			(ta != InvalidAttrNumber && slot->tts_isnull[ta - 1]))
			continue;
		u = IntDatum(slot->tts_values[ua - 1], ut);
		i = IntDatum(slot->tts_values[ia - 1], it);
		if (wa != InvalidAttrNumber)
		{
			old = MemoryContextSwitchTo(rowcxt);
			w = WeightDatum(slot->tts_values[wa - 1], wt);
			MemoryContextSwitchTo(old);
			check_weight_finite(src, w);
			if (wt == NUMERICOID)
				MemoryContextReset(rowcxt);
		}
		if (ta != InvalidAttrNumber)
		{
			if (tt == TIMESTAMPOID || tt == TIMESTAMPTZOID)
				w = decayed_weight(src, w, slot->tts_values[ta - 1], tt);
			else
			{
				double		t;

				old = MemoryContextSwitchTo(rowcxt);
				t = WeightDatum(slot->tts_values[ta - 1], tt);
				MemoryContextSwitchTo(old);
				MemoryContextReset(rowcxt);
				w = decayed_weight(src, w, Float8GetDatum(t), FLOAT8OID);
			}
		}
		old = MemoryContextSwitchTo(cxt);
		triples_add(tb, u, i, w);
		MemoryContextSwitchTo(old);
		if ((++rows & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rowcxt);
	PopActiveSnapshot();
	table_close(rel, NoLock);
}

/* Stream every usable row of the source into tb; the caller is SPI-connected. */
void
source_read(const SourceSpec *src, TripleBuffer *tb, MemoryContext cxt, bool read_only)
{
	StringInfoData sql;
	TripleReceiver recv;
	SPIExecuteOptions opts;
	int			rc;
	int			nest;

	if (CanScanDirectly(src))
	{
		ScanDirect(src, tb, cxt, read_only);
		return;
	}

	initStringInfo(&sql);
	AppendSelect(&sql, src);

	memset(&recv, 0, sizeof(recv));
	recv.pub.receiveSlot = TripleReceive;
	recv.pub.rStartup = TripleStartup;
	recv.pub.rShutdown = TripleShutdown;
	recv.pub.rDestroy = TripleDestroy;
	recv.pub.mydest = DestNone;
	recv.src = src;
	recv.tb = tb;
	recv.cxt = cxt;

	memset(&opts, 0, sizeof(opts));
	opts.read_only = read_only;
	opts.dest = (DestReceiver *) &recv;
	nest = citus_read_begin(src->relid);
	rc = SPI_execute_extended(sql.data, &opts);
	citus_read_end(nest);
	/* a SELECT into a caller-supplied receiver reports SPI_OK_UTILITY */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "reading the interaction source failed: %s", SPI_result_code_string(rc));
}
