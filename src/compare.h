/*
 * compare.h
 *	  The one copy of the small ordering helpers every unit uses: qsort
 *	  comparators for int64 and double, and the seeded Fisher-Yates shuffle.
 *	  Plain C (c.h and pg_prng only): safe in the cores and in helper threads.
 */
#ifndef MEDIA_RECO_COMPARE_H
#define MEDIA_RECO_COMPARE_H

#include "c.h"

#include "common/pg_prng.h"

/* qsort comparator: ascending int64 */
static inline int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* qsort comparator: ascending double, for arrays without NaN */
static inline int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Shuffle a[0..n-1] in place: Fisher-Yates from the end, j uniform in
 * [0, i].  The draws are part of every seeded result (held-out rows, epoch
 * order, generated data): changing this order changes trained models.
 */
static inline void
shuffle_int32(pg_prng_state *rng, int32 *a, int32 n)
{
	for (int32 i = n - 1; i > 0; i--)
	{
		int32		j = (int32) pg_prng_uint64_range(rng, 0, (uint64) i);
		int32		t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

#endif
