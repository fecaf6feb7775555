/*
 * util.h
 *	  Shared argument checks, GUCs and small helpers for the SQL glue.
 */
#ifndef MEDIA_RECO_UTIL_H
#define MEDIA_RECO_UTIL_H

#include "postgres.h"
#include "fmgr.h"
#include "access/attnum.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "portability/instr_time.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"

#include "core_pg.h"

#define MEDIA_RECO_MAX_K 10000

/* GUCs (media_reco.c) */
extern int	media_reco_threads;
extern int	media_reco_explain_steps;	/* explain.c */

/* argument helpers: each raises a specific SQLSTATE on bad input */
extern void check_not_null(FunctionCallInfo fcinfo, int argno, const char *argname);
extern char *arg_text_or_null(FunctionCallInfo fcinfo, int argno);
extern char *arg_name_or_null(FunctionCallInfo fcinfo, int argno);
extern void check_k(int k, const char *argname);

extern void check_relation_privilege(Oid relid, AclMode mode, const AttrNumber *atts, int natts);

/*
 * The server's CoreInterrupts (interrupt_hooks, declared in core_pg.h):
 * pending() is true when CHECK_FOR_INTERRUPTS would act now, process() runs
 * it (and may not return).  Main thread only.
 */
extern bool interrupt_pending(void);
extern void interrupt_process(void);

/* bytes available for an in-memory computation (maintenance_work_mem) */
extern Size work_memory_limit(void);

extern double elapsed_seconds(instr_time start);
extern double interval_seconds(const Interval *iv);

/*
 * jsonb options objects (forest.c, mlp.c), walked key by key; every bad
 * value is a 22023 error naming the key and what was expected.
 */
typedef struct OptionReader
{
	JsonbIterator *it;
} OptionReader;

extern void options_begin(OptionReader *r, Jsonb *opts);
extern bool options_next(OptionReader *r, char **key, JsonbValue *v);
extern void option_invalid(const char *key, const char *expected) pg_attribute_noreturn();
extern double option_number(const char *key, const JsonbValue *v, double lo, double hi,
							bool integral, const char *expected);
extern char *option_string(const char *key, const JsonbValue *v, const char *expected);
extern bool option_bool(const char *key, const JsonbValue *v);

/* int8[] arguments as sorted, distinct, NULL-free id sets */
extern int64 *sorted_unique_ids(ArrayType *a, int *n);
extern bool sorted_ids_contain(const int64 *sorted, int n, int64 x);
extern void sort_ids(int64 *ids, int n);

#endif
