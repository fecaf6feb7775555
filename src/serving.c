/*
 * serving.c
 *	  What every read path that serves one user shares: the user's live
 *	  history read from the source (the usable-row, duplicate and decay rules
 *	  of a refresh), the result filters (seen items, exclude, only), the
 *	  result rows, and the popular-items fallback.  recommend() (neighbour
 *	  lists) and recommend_als() (factors) both use it.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "plan_cache.h"
#include "serving.h"
#include "util.h"


/* by item (the lookup order of a merged history, one entry per item) */
static int
CmpHistItem(const void *a, const void *b)
{
	int64		x = ((const HistItem *) a)->item;
	int64		y = ((const HistItem *) b)->item;

	return (x > y) - (x < y);
}

/* by item, then weight: duplicates are summed in ascending order of weight, as in simcore.c */
static int
CmpHist(const void *a, const void *b)
{
	const HistItem *x = a,
			   *y = b;

	if (x->item != y->item)
		return (x->item > y->item) - (x->item < y->item);
	return (x->w > y->w) - (x->w < y->w);
}

/*
 * Sort by item, sum duplicates (in ascending order of weight, so the sum does
 * not depend on the row order), check the sums are finite; returns the new
 * length.
 */
int
serving_merge_history(HistItem *h, int rows, const char *who)
{
	int			n = 0;

	if (rows > 1)
		qsort(h, rows, sizeof(HistItem), CmpHist);
	for (int i = 0; i < rows; i++)
	{
		if (n > 0 && h[n - 1].item == h[i].item)
			h[n - 1].w += h[i].w;
		else
			h[n++] = h[i];
	}
	for (int i = 0; i < n; i++)
		if (!isfinite(h[i].w))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("sum of weights for %s and item " INT64_FORMAT " is out of range",
							who, h[i].item)));
	return n;
}

/* The user's history as (item, summed weight), items ascending, in `cxt`. */
HistItem *
serving_read_history(const SourceSpec *src, int64 user_id, MemoryContext cxt, int *n_out)
{
	Oid			argtype = INT8OID;
	Datum		arg = Int64GetDatum(user_id);
	HistItem   *h;
	int			rc;
	uint64		rows;

	/* the text names the source as it is called now: a renamed or swapped source gets a new plan */
	rc = plan_cache_execute(source_history_sql(src), 1, &argtype, &arg, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the user's history failed: %s", SPI_result_code_string(rc));
	rows = SPI_processed;
	if (rows > (uint64) (MaxAllocSize / sizeof(HistItem)))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("user " INT64_FORMAT " has too many interactions (" UINT64_FORMAT ")",
						user_id, rows)));
	h = MemoryContextAlloc(cxt, sizeof(HistItem) * Max(rows, 1));
	for (uint64 i = 0; i < rows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;

		h[i].item = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		if (src->weight_col)
		{
			h[i].w = DatumGetFloat8(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
			check_weight_finite(src, h[i].w);
		}
		else
			h[i].w = 1.0;
		if (src->time_col)
		{
			int			tcol = src->weight_col ? 3 : 2;

			h[i].w = decayed_weight(src, h[i].w,
									SPI_getbinval(tup, SPI_tuptable->tupdesc, tcol, &isnull),
									SPI_gettypeid(SPI_tuptable->tupdesc, tcol));
		}
	}
	SPI_freetuptable(SPI_tuptable);
	{
		char		who[64];

		snprintf(who, sizeof(who), "user " INT64_FORMAT, user_id);
		*n_out = serving_merge_history(h, (int) rows, who);
	}
	return h;
}

HistItem *
serving_find_hist(const HistItem *h, int n, int64 item)
{
	HistItem	key = {item, 0};

	return bsearch(&key, (HistItem *) h, n, sizeof(HistItem), CmpHistItem);
}


bool
serving_passes_lists(const ResultFilter *f, int64 item)
{
	if (f->nexclude > 0 && sorted_ids_contain(f->exclude, f->nexclude, item))
		return false;
	if (f->only && !sorted_ids_contain(f->only, f->nonly, item))
		return false;
	return true;
}

bool
serving_passes(const ResultFilter *f, const HistItem *hist, int nhist, int64 item)
{
	if (f->exclude_seen && serving_find_hist(hist, nhist, item))
		return false;
	return serving_passes_lists(f, item);
}

void
serving_emit_row(ReturnSetInfo *rsinfo, const ResultFilter *f, int64 item, double score, bool score_null,
		int rank, const char *reason)
{
	Datum		values[4];
	bool		nulls[4] = {false, score_null, false, false};

	values[0] = Int64GetDatum(item);
	values[1] = Float8GetDatum(score);
	values[2] = Int32GetDatum(rank);
	values[3] = f->with_reason ? CStringGetTextDatum(reason) : (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * Fill the result up to k rows with the most popular items of the source
 * (distinct users; ties to the smaller id) that the user has not seen, that
 * pass the filters and that are not already listed.  The popularity list is
 * read in growing prefixes until k rows are found or it runs out.
 */
int
serving_fill_popular(ReturnSetInfo *rsinfo, const SourceSpec *src, const HistItem *hist, int nhist,
			const ResultFilter *f, const int64 *taken, int ntaken, int k, int rank)
{
	int64		want = (int64) k + nhist + f->nexclude + ntaken;
	int64	   *listed = palloc(sizeof(int64) * Max(ntaken, 1));
	int			found = 0;

	memcpy(listed, taken, sizeof(int64) * ntaken);
	sort_ids(listed, ntaken);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (;;)
	{
		Oid			types[1] = {INT4OID};
		Datum		args[1] = {Int32GetDatum((int32) Min(want, PG_INT32_MAX))};
		int			passing = 0;

		if (plan_cache_execute(source_popular_sql(src, false), 1, types, args, NULL, true, 0)
			!= SPI_OK_SELECT)
			elog(ERROR, "reading popular items failed");
		for (uint64 row = 0; row < SPI_processed && rank <= k; row++)
		{
			bool		isnull;
			int64		item = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row],
														   SPI_tuptable->tupdesc, 1, &isnull));

			/* popular items are never the user's own, whatever exclude_seen says */
			if (serving_find_hist(hist, nhist, item) || !serving_passes(f, hist, nhist, item) ||
				sorted_ids_contain(listed, ntaken, item))
				continue;
			/* items emitted by an earlier, shorter pass come first again: skip them */
			if (passing++ < found)
				continue;
			serving_emit_row(rsinfo, f, item, 0, true, rank++, "popular");
			found++;
		}
		if (rank > k || SPI_processed < (uint64) Min(want, PG_INT32_MAX) || want >= PG_INT32_MAX)
			break;
		want *= 4;
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return rank;
}