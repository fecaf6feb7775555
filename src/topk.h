/*
 * topk.h
 *	  A bounded top-k of scored items: best score first, ties to the smaller
 *	  id.  Shared by recommend (one user) and recommend_all (every user), so
 *	  both order results the same way.  Plain C, safe in helper threads.
 */
#ifndef MEDIA_RECO_TOPK_H
#define MEDIA_RECO_TOPK_H

#include "postgres.h"

typedef struct Scored
{
	int64		item;
	double		score;
} Scored;

static inline int
CmpScored(const void *a, const void *b)
{
	const Scored *x = a;
	const Scored *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return (x->item > y->item) - (x->item < y->item);
}

/* max-heap on CmpScored order: the root is the worst of the kept candidates */
static inline void
ScoredSiftUp(Scored *h, int pos)
{
	while (pos > 0)
	{
		int			parent = (pos - 1) / 2;
		Scored		t;

		if (CmpScored(&h[pos], &h[parent]) <= 0)
			return;
		t = h[pos];
		h[pos] = h[parent];
		h[parent] = t;
		pos = parent;
	}
}

static inline void
ScoredSiftDown(Scored *h, int n, int pos)
{
	for (;;)
	{
		int			l = 2 * pos + 1,
					r = l + 1,
					w = pos;
		Scored		t;

		if (l < n && CmpScored(&h[l], &h[w]) > 0)
			w = l;
		if (r < n && CmpScored(&h[r], &h[w]) > 0)
			w = r;
		if (w == pos)
			return;
		t = h[pos];
		h[pos] = h[w];
		h[w] = t;
		pos = w;
	}
}

/* offer a candidate to a heap of capacity k holding *n items */
static inline void
ScoredOffer(Scored *h, int *n, int k, Scored c)
{
	if (*n < k)
	{
		h[*n] = c;
		ScoredSiftUp(h, *n);
		(*n)++;
	}
	else if (CmpScored(&c, &h[0]) < 0)
	{
		h[0] = c;
		ScoredSiftDown(h, *n, 0);
	}
}

#endif
