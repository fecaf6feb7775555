/*
 * training_core.c
 *	  Canonical row order and class sets, shared by forests and networks.
 */
#include "core.h"

#include <math.h>
#include <string.h>

#include "compare.h"
#include "training_core.h"

typedef struct RowOrderArg
{
	const double *x;
	const double *y;
	int32		nf;
} RowOrderArg;

/* NaN sorts after every number and equal to another NaN */
static inline int
CmpValue(double a, double b)
{
	bool		an = isnan(a),
				bn = isnan(b);

	if (an || bn)
		return an == bn ? 0 : (an ? 1 : -1);
	return a < b ? -1 : (a > b ? 1 : 0);
}

static int
CmpRows(const void *pa, const void *pb, void *parg)
{
	const RowOrderArg *a = (const RowOrderArg *) parg;
	int32		ra = *(const int32 *) pa,
				rb = *(const int32 *) pb;
	int			c = CmpValue(a->y[ra], a->y[rb]);

	if (c != 0)
		return c;
	for (int32 f = 0; f < a->nf; f++)
	{
		c = CmpValue(a->x[(int64) ra * a->nf + f], a->x[(int64) rb * a->nf + f]);
		if (c != 0)
			return c;
	}
	return 0;
}

void
canonical_row_order(int32 n, int32 nf, const double *x, const double *y, int32 *ord)
{
	RowOrderArg oa = {x, y, nf};

	for (int32 i = 0; i < n; i++)
		ord[i] = i;
	qsort_arg(ord, n, sizeof(int32), CmpRows, &oa);
}

CoreStatus
training_classes(const CoreAlloc *a, const double *y, int32 n, int32 max_classes,
				 double **classes, int32 *n_classes, CoreError *err)
{
	double	   *tmp = core_array(a, n, sizeof(double), false, err);
	double	   *out;
	int32		nc = 0;

	*classes = NULL;
	*n_classes = 0;
	if (tmp == NULL)
		return err->status;
	for (int32 i = 0; i < n; i++)
		tmp[i] = y[i] == 0 ? 0.0 : y[i];	/* -0 and +0 are one class, stored as +0 */
	qsort(tmp, n, sizeof(double), cmp_double);
	for (int32 i = 0; i < n; i++)
		if (nc == 0 || tmp[i] != tmp[nc - 1])
			tmp[nc++] = tmp[i];
	if (nc < 2)
	{
		core_error(err, CORE_DATA, "the training labels hold a single class (%g)", nc > 0 ? tmp[0] : 0.0);
		core_release(a, tmp);
		return core_error_hint(err, "Classification needs at least two classes; use {\"task\": \"regression\"} for a numeric target.");
	}
	if (nc > max_classes)
	{
		core_error(err, CORE_LIMIT, "the training labels hold %d classes; the limit is %d", nc, max_classes);
		core_release(a, tmp);
		return core_error_hint(err, "For a numeric target use {\"task\": \"regression\"}.");
	}
	out = core_array(a, nc, sizeof(double), false, err);
	if (out == NULL)
	{
		core_release(a, tmp);
		return err->status;
	}
	memcpy(out, tmp, sizeof(double) * nc);
	core_release(a, tmp);
	*classes = out;
	*n_classes = nc;
	return CORE_OK;
}
