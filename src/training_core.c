/*
 * training_core.c
 *	  Canonical row order and class sets, shared by forests and networks.
 *
 * The row order is PostgreSQL's qsort (Bentley-McIlroy, lib/sort_template.h)
 * instantiated here with the row comparator inline, the very algorithm
 * qsort_arg runs, so the order is the one training always had, ties
 * included.  The instance polls for interrupts every ROW_ORDER_POLL
 * comparisons: on millions of rows the sort runs for seconds.
 */
#include "core.h"

#include <math.h>
#include <string.h>

#include "compare.h"
#include "training_core.h"

/* comparisons between two polls: well under a millisecond */
#define ROW_ORDER_POLL 4096

typedef struct RowOrderArg
{
	const double *x;
	const double *y;
	int32		nf;
	uint32		calls;
	const CoreInterrupts *hooks;
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

/* rows ra and rb by label, then by each feature in turn; polls now and then */
static inline int
CmpRows(const int32 *pa, const int32 *pb, RowOrderArg *a)
{
	int32		ra = *pa,
				rb = *pb;
	int			c;

	if ((++a->calls & (ROW_ORDER_POLL - 1)) == 0)
		core_check_interrupts(a->hooks);
	c = CmpValue(a->y[ra], a->y[rb]);
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

#define ST_SORT RowOrderSort
#define ST_ELEMENT_TYPE int32
#define ST_COMPARE(a, b, arg) CmpRows(a, b, arg)
#define ST_COMPARE_ARG_TYPE RowOrderArg
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

void
canonical_row_order(int32 n, int32 nf, const double *x, const double *y,
					const CoreInterrupts *hooks, int32 *ord)
{
	RowOrderArg oa = {x, y, nf, 0, hooks};

	for (int32 i = 0; i < n; i++)
		ord[i] = i;
	RowOrderSort(ord, n, &oa);
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
