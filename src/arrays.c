/*
 * arrays.c
 *	  Overflow-checked huge arrays and class-label sets for the plain-C
 *	  cores (forest_core.c, mlp_core.c, simcore.c).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "arrays.h"

void *
huge_array(Size count, Size elem, bool zero)
{
	if (count != 0 && elem > MaxAllocHugeSize / count)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("requested array of %zu elements of %zu bytes is too large", count, elem)));
	return palloc_extended(Max(count * elem, 1),
						   MCXT_ALLOC_HUGE | (zero ? MCXT_ALLOC_ZERO : 0));
}
