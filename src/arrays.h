/*
 * arrays.h
 *	  Helpers the plain-C cores share: overflow-checked huge arrays and the
 *	  sorted set of class labels of a training set.
 */
#ifndef MEDIA_RECO_ARRAYS_H
#define MEDIA_RECO_ARRAYS_H

#include "postgres.h"

#include "compare.h"

/*
 * palloc of count * elem bytes in the current context, huge allocations
 * allowed, the product checked for overflow (54000 on overflow); `zero`
 * clears the memory.  count == 0 gives a valid 1-byte block.
 */
extern void *huge_array(Size count, Size elem, bool zero);

/*
 * The distinct labels of y[0..n-1], sorted ascending, -0 stored as +0: the
 * classes of a classification task.  Fewer than 2 classes is a data error
 * (22000) and more than max_classes a limit error (54000), both with a hint.
 */
extern double *distinct_classes(const double *y, int32 n, int32 max_classes, int32 *n_classes);

#endif
