/*
 * training_core.h
 *	  What every supervised model's training shares, on plain C arrays: the
 *	  canonical row order that makes a model independent of the order rows
 *	  arrived in, and the class set of a classification label column.
 *	  Plain C (core.h): no PostgreSQL calls, safe to unit-test and fuzz.
 */
#ifndef MEDIA_RECO_TRAINING_CORE_H
#define MEDIA_RECO_TRAINING_CORE_H

#include "core.h"

/*
 * ord[0..n-1] := the rows of x (row-major, n x nf, NaN = missing) and y in
 * canonical order: by label, then by each feature in turn, NaN last; equal
 * rows keep no particular order (they are interchangeable), but the same
 * one on every call.  Polls hooks (NULL: none; then any thread) every few
 * thousand comparisons, so from the main thread only when given; a process()
 * that does not return leaves ord partly sorted.  No allocation.
 */
extern void canonical_row_order(int32 n, int32 nf, const double *x, const double *y,
								const CoreInterrupts *hooks, int32 *ord);

/*
 * The distinct labels of y[0..n-1], ascending, -0 stored as +0, into
 * *classes (allocated from a) and *n_classes.  Fewer than 2 classes is
 * CORE_DATA, more than max_classes CORE_LIMIT, each with a hint; memory
 * failures CORE_NOMEM.  Main thread only (allocates).
 */
extern CoreStatus training_classes(const CoreAlloc *a, const double *y, int32 n, int32 max_classes,
								   double **classes, int32 *n_classes, CoreError *err);

#endif
