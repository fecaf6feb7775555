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

double *
distinct_classes(const double *y, int32 n, int32 max_classes, int32 *n_classes)
{
	double	   *tmp = huge_array(n, sizeof(double), false);
	double	   *classes;
	int32		nc = 0;

	for (int32 i = 0; i < n; i++)
		tmp[i] = y[i] == 0 ? 0.0 : y[i];	/* -0 and +0 are one class, stored as +0 */
	qsort(tmp, n, sizeof(double), cmp_double);
	for (int32 i = 0; i < n; i++)
		if (nc == 0 || tmp[i] != tmp[nc - 1])
			tmp[nc++] = tmp[i];
	if (nc < 2)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the training labels hold a single class (%g)", nc > 0 ? tmp[0] : 0.0),
				 errhint("Classification needs at least two classes; use {\"task\": \"regression\"} for a numeric target.")));
	if (nc > max_classes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the training labels hold %d classes; the limit is %d", nc, max_classes),
				 errhint("For a numeric target use {\"task\": \"regression\"}.")));
	classes = palloc(sizeof(double) * nc);
	memcpy(classes, tmp, sizeof(double) * nc);
	pfree(tmp);
	*n_classes = nc;
	return classes;
}
