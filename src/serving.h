/*
 * serving.h
 *	  Shared by the per-user read paths (recommend.c, als.c): the live
 *	  history, the result filters, result rows and the popular fallback.
 */
#ifndef MEDIA_RECO_SERVING_H
#define MEDIA_RECO_SERVING_H

#include "postgres.h"
#include "funcapi.h"

#include "source.h"

typedef struct HistItem
{
	int64		item;
	double		w;
} HistItem;

/* what a result may contain: the filters of recommend / recommend_for_items / recommend_als */
typedef struct ResultFilter
{
	bool		exclude_seen;
	const int64 *exclude;		/* sorted, distinct */
	int			nexclude;
	const int64 *only;			/* sorted, distinct; NULL: no allowlist */
	int			nonly;
	bool		fallback_popular;	/* fill up to k with popular items */
	bool		with_reason;	/* emit the reason column */
} ResultFilter;

/*
 * Sort by item, sum duplicates (ascending order of weight, so the sum does
 * not depend on the row order), check the sums are finite (22003 naming
 * `who`); returns the new length.
 */
extern int	serving_merge_history(HistItem *h, int rows, const char *who);

/* The user's usable rows as (item, summed weight), items ascending, in cxt; caller SPI-connected. */
extern HistItem *serving_read_history(const SourceSpec *src, int64 user_id, MemoryContext cxt,
									  int *n_out);

/* the entry of `item` in a merged history, or NULL */
extern HistItem *serving_find_hist(const HistItem *h, int n, int64 item);

/* whether `item` may be in the result */
extern bool serving_passes(const ResultFilter *f, const HistItem *hist, int nhist, int64 item);
/* the same without the seen-items rule: only exclude and the allowlist */
extern bool serving_passes_lists(const ResultFilter *f, int64 item);

/* one row (item_id, score, rank[, reason]) */
extern void serving_emit_row(ReturnSetInfo *rsinfo, const ResultFilter *f, int64 item, double score,
							 bool score_null, int rank, const char *reason);

/*
 * Fill the result up to k rows (ranks from `rank`) with the source's most
 * popular items the user has not seen that pass the filters and are not in
 * taken; returns the next rank.  Connects SPI itself.
 */
extern int	serving_fill_popular(ReturnSetInfo *rsinfo, const SourceSpec *src, const HistItem *hist,
								 int nhist, const ResultFilter *f, const int64 *taken, int ntaken,
								 int k, int rank);

#endif
