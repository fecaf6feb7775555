/*
 * util.c
 *	  Argument validation and helpers shared by the SQL-callable functions.
 */
#include "postgres.h"

#include <math.h>

#include "access/sysattr.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "portability/instr_time.h"
#include "storage/lockdefs.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "compare.h"
#include "util.h"

/* Raise 22004 "<argname> must not be NULL" when argument argno is NULL. */
void
check_not_null(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", argname)));
}

/* A text argument as a C string palloc'd in the current context, or NULL for SQL NULL. */
char *
arg_text_or_null(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* A name argument as a C string palloc'd in the current context, or NULL for SQL NULL. */
char *
arg_name_or_null(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return pstrdup(NameStr(*PG_GETARG_NAME(argno)));
}

/* Raise 22023 unless 1 <= k <= MEDIA_RECO_MAX_K. */
void
check_k(int k, const char *argname)
{
	if (k < 1 || k > MEDIA_RECO_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d, got %d", argname, MEDIA_RECO_MAX_K, k)));
}

/*
 * Check the caller's privilege on a relation the way the executor does for a
 * query that reads (ACL_SELECT) or inserts (ACL_INSERT) the given columns:
 * table-level or column-level grants both count, and ExecutorCheckPerms_hook
 * (sepgsql, audit extensions) sees the access even though the direct scan
 * and insert paths do not go through the executor.
 */
void
check_relation_privilege(Oid relid, AclMode mode, const AttrNumber *atts, int natts)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	Bitmapset  *cols = NULL;

	for (int i = 0; i < natts; i++)
		cols = bms_add_member(cols, atts[i] - FirstLowInvalidHeapAttributeNumber);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = get_rel_relkind(relid);
	rte->rellockmode = (mode == ACL_SELECT) ? AccessShareLock : RowExclusiveLock;
	rte->requiredPerms = mode;
	if (mode == ACL_SELECT)
		rte->selectedCols = cols;
	else
		rte->insertedCols = cols;
	ExecCheckRTPerms(list_make1(rte), true);
}

/*
 * An interrupt that CHECK_FOR_INTERRUPTS can act on now; when interrupts are
 * held off the flag stays set, and pausing the threads for it would only
 * thrash.
 */
bool
interrupt_pending(void)
{
	return InterruptPending && INTERRUPTS_CAN_BE_PROCESSED();
}

/* CHECK_FOR_INTERRUPTS() for the cores' hooks; may longjmp.  Main thread only. */
void
interrupt_process(void)
{
	CHECK_FOR_INTERRUPTS();
}

const CoreInterrupts interrupt_hooks = {interrupt_pending, interrupt_process};

/* The byte budget of an in-memory computation: maintenance_work_mem, read at each call. */
Size
work_memory_limit(void)
{
	return (Size) maintenance_work_mem * 1024;
}

/* Seconds from `start` (INSTR_TIME_SET_CURRENT) to now. */
double
elapsed_seconds(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/*
 * An interval as seconds, exactly as date_part('epoch', interval) counts them
 * (365.25-day years, 30-day months): the registry's half_life is read back
 * through date_part, so a value accepted here stays valid there.
 */
double
interval_seconds(const Interval *iv)
{
	return (double) iv->time / USECS_PER_SEC +
		((double) DAYS_PER_YEAR * SECS_PER_DAY) * (iv->month / MONTHS_PER_YEAR) +
		((double) DAYS_PER_MONTH * SECS_PER_DAY) * (iv->month % MONTHS_PER_YEAR) +
		((double) SECS_PER_DAY) * iv->day;
}

/* The non-NULL ids of an int8[] (any dimensionality), sorted and distinct. */
int64 *
sorted_unique_ids(ArrayType *a, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count,
				m = 0;
	int64	   *out;

	deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &count);
	out = palloc(sizeof(int64) * Max(count, 1));
	for (int i = 0; i < count; i++)
		if (!nulls[i])
			out[m++] = DatumGetInt64(elems[i]);
	if (m > 1)
		qsort(out, m, sizeof(int64), cmp_int64);
	*n = 0;
	for (int i = 0; i < m; i++)
		if (*n == 0 || out[*n - 1] != out[i])
			out[(*n)++] = out[i];
	return out;
}

/* Sort ids ascending in place (cmp_int64); duplicates are kept. */
void
sort_ids(int64 *ids, int n)
{
	if (n > 1)
		qsort(ids, n, sizeof(int64), cmp_int64);
}

/* Binary search: is x in sorted[0..n-1] (ascending, e.g. from sorted_unique_ids)? */
bool
sorted_ids_contain(const int64 *sorted, int n, int64 x)
{
	return n > 0 && bsearch(&x, sorted, n, sizeof(int64), cmp_int64) != NULL;
}

/* ---------------------------------------------------------------------------
 * jsonb options
 * ------------------------------------------------------------------------- */

/* Start walking a jsonb options object (22023 unless it is an object); see options_next. */
void
options_begin(OptionReader *r, Jsonb *opts)
{
	if (!JB_ROOT_IS_OBJECT(opts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));
	r->it = JsonbIteratorInit(&opts->root);
}

/* the next key and its value (nested containers as jbvBinary); false at the end */
bool
options_next(OptionReader *r, char **key, JsonbValue *v)
{
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&r->it, v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		*key = pnstrdup(v->val.string.val, v->val.string.len);
		(void) JsonbIteratorNext(&r->it, v, true);
		return true;
	}
	return false;
}

/* Raise 22023 "invalid value for option <key>" with "Expected <expected>." as detail. */
void
option_invalid(const char *key, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\"", key),
			 errdetail("Expected %s.", expected)));
	pg_unreachable();
}

/* a number in [lo, hi], integral if asked */
double
option_number(const char *key, const JsonbValue *v, double lo, double hi, bool integral,
			  const char *expected)
{
	double		d;

	if (v->type != jbvNumeric)
		option_invalid(key, expected);
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v->val.numeric)));
	if (!(d >= lo && d <= hi) || (integral && d != floor(d)))
		option_invalid(key, expected);
	return d;
}

/* A string option's value palloc'd in the current context; 22023 when v is not a string. */
char *
option_string(const char *key, const JsonbValue *v, const char *expected)
{
	if (v->type != jbvString)
		option_invalid(key, expected);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A boolean option's value; 22023 when v is not true or false. */
bool
option_bool(const char *key, const JsonbValue *v)
{
	if (v->type != jbvBool)
		option_invalid(key, "true or false");
	return v->val.boolean;
}
