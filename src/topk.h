/*
 * topk.h
 *	  The one bounded top-k heap.  TOPK_DEFINE(prefix, Type, WORSE) makes a
 *	  heap of Type whose root is the worst of the kept candidates, WORSE(a, b)
 *	  being true when *a ranks below *b; the order must be total (break score
 *	  ties by a unique id), so the kept set and its sorted order do not
 *	  depend on the order candidates arrive in.  Scored below is its use for
 *	  recommend, recommend_all and user-based scores (best score first, ties
 *	  to the smaller id); simcore.c instantiates it for neighbour candidates
 *	  with the same rule.  Plain C, no allocation: safe in helper threads.
 */
#ifndef MEDIA_RECO_TOPK_H
#define MEDIA_RECO_TOPK_H

#include "c.h"

/*
 * Defines, for a heap h of capacity k holding *n items:
 *	prefix_sift_up(h, pos), prefix_sift_down(h, n, pos)
 *	prefix_offer(h, &n, k, &c): keep c if there is room or it beats the root;
 *		true when kept
 *	prefix_pop_worst(h, &n): remove and return the root (the worst kept)
 */
#define TOPK_DEFINE(prefix, Type, WORSE) \
static inline void \
prefix##_sift_up(Type *h, int pos) \
{ \
	while (pos > 0) \
	{ \
		int			parent = (pos - 1) / 2; \
		Type		t_; \
\
		if (!WORSE(&h[pos], &h[parent])) \
			return; \
		t_ = h[pos]; \
		h[pos] = h[parent]; \
		h[parent] = t_; \
		pos = parent; \
	} \
} \
\
static inline void \
prefix##_sift_down(Type *h, int n, int pos) \
{ \
	for (;;) \
	{ \
		int			l = 2 * pos + 1, \
					r = l + 1, \
					w = pos; \
		Type		t_; \
\
		if (l < n && WORSE(&h[l], &h[w])) \
			w = l; \
		if (r < n && WORSE(&h[r], &h[w])) \
			w = r; \
		if (w == pos) \
			return; \
		t_ = h[pos]; \
		h[pos] = h[w]; \
		h[w] = t_; \
		pos = w; \
	} \
} \
\
static inline bool \
prefix##_offer(Type *h, int *n, int k, const Type *c) \
{ \
	if (*n < k) \
	{ \
		h[*n] = *c; \
		prefix##_sift_up(h, *n); \
		(*n)++; \
		return true; \
	} \
	if (*n > 0 && WORSE(&h[0], c)) \
	{ \
		h[0] = *c; \
		prefix##_sift_down(h, *n, 0); \
		return true; \
	} \
	return false; \
} \
\
static inline Type \
prefix##_pop_worst(Type *h, int *n) \
{ \
	Type		worst_ = h[0]; \
\
	h[0] = h[*n - 1]; \
	(*n)--; \
	prefix##_sift_down(h, *n, 0); \
	return worst_; \
}

typedef struct Scored
{
	int64		item;
	double		score;
} Scored;

/* qsort order: best score first, ties to the smaller item */
static inline int
CmpScored(const void *a, const void *b)
{
	const Scored *x = a;
	const Scored *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return (x->item > y->item) - (x->item < y->item);
}

#define ScoredWorse(a, b) (CmpScored((a), (b)) > 0)
TOPK_DEFINE(scored_heap, Scored, ScoredWorse)

/*
 * offer a candidate to a heap of capacity k holding *n items: it replaces
 * the root when it sorts before it (which, unlike "the root is worse", also
 * keeps the root against a NaN score)
 */
static inline void
ScoredOffer(Scored *h, int *n, int k, Scored c)
{
	if (*n < k)
	{
		h[*n] = c;
		scored_heap_sift_up(h, *n);
		(*n)++;
	}
	else if (CmpScored(&c, &h[0]) < 0)
	{
		h[0] = c;
		scored_heap_sift_down(h, *n, 0);
	}
}

#endif
