/*
 * util.c
 *	  Argument validation and helpers shared by the SQL-callable functions.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"

#include "util.h"

void
check_not_null(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", argname)));
}

char *
arg_text_or_null(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

char *
arg_name_or_null(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return pstrdup(NameStr(*PG_GETARG_NAME(argno)));
}

void
check_k(int k, const char *argname)
{
	if (k < 1 || k > MEDIA_RECO_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d, got %d", argname, MEDIA_RECO_MAX_K, k)));
}

void
check_sim_params(const char *metric, int k, int min_support, double shrinkage, SimParams *out)
{
	if (!sim_metric_parse(metric, &out->metric))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown similarity metric \"%s\"", metric),
				 errhint("Supported metrics are \"cosine\" and \"jaccard\".")));
	check_k(k, "k");
	if (min_support < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_support must be at least 1, got %d", min_support)));
	if (isnan(shrinkage) || isinf(shrinkage) || shrinkage < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shrinkage must be a finite number >= 0, got %g", shrinkage)));
	out->k = k;
	out->min_support = min_support;
	out->shrinkage = shrinkage;
}

bool
interrupt_pending(void)
{
	return InterruptPending;
}

void
interrupt_process(void)
{
	CHECK_FOR_INTERRUPTS();
}

const SimInterruptHooks interrupt_hooks = {interrupt_pending, interrupt_process};

Size
work_memory_limit(void)
{
	return (Size) maintenance_work_mem * 1024;
}

double
elapsed_seconds(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}
