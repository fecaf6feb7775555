/*
 * simcore.c
 *	  Item-to-item similarity on plain C arrays.
 *
 * Design
 * ------
 * The input is a stream of (user id, item id, weight) rows.  triples_add()
 * maps the 64-bit ids to dense indexes through two hash tables and appends
 * the row to a list of fixed-size chunks (no realloc copies, so the bytes
 * held are the rows read, and the budget check is exact).
 *
 * matrix_build() renumbers users and items in id order (so index order is id
 * order: ties "by smaller id" become "by smaller index", and results do not
 * depend on the physical order of the source), then builds the matrix twice
 * with counting sorts, never a comparison sort over the rows:
 *   chunks -> item-major (raw, duplicates kept) -> user-major with items
 *   ascending, where duplicate (user, item) rows become adjacent and are summed
 *   -> item-major again with users ascending.
 * Peak memory is about 28 bytes per input row.
 *
 * sim_compute() is the classic row-by-row sparse product fused with top-k:
 * for item i, every user u of i, every item j of u, accumulate
 * w(u,i) * w(u,j) and count the co-occurrence in dense per-thread arrays,
 * then keep the k best candidates in a bounded heap and reset only the
 * touched slots.  The work is sum over users of deg(u)^2 multiply-adds and
 * nothing of size items x items is ever materialised.  For cosine the
 * weights are divided by their item norm first, so the accumulated dot
 * product is the similarity (or, for ordinary weights, the raw dot product is
 * divided by sqrt(ss_i * ss_j) at the end; see PrepareCosine).
 *
 * Items are handed out in small chunks, one task each, to up to `nthreads`
 * threads through parallel.c's runner.  Helper threads run only
 * ProcessChunk, on memory allocated beforehand by the main thread; they never
 * call PostgreSQL.  The main thread works too and polls for a pending
 * interrupt between chunks: the runner then joins the helpers and lets
 * PostgreSQL process the interrupt (usually an error) with no thread left
 * running; if processing returns, the run resumes.
 *
 * Each item's row is computed by one thread in a fixed order (users
 * ascending), so the result is bit-for-bit independent of the thread count.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "miscadmin.h"
#include "arrays.h"
#include "simcore.h"
#include "utils/memutils.h"

#define TRIPLE_CHUNK_ROWS	8192
/* bytes per input row at the peak of matrix_build: the row plus one CSR/CSC copy */
#define BYTES_PER_ROW		28

/* ---------- id -> dense index hash table ---------- */

typedef struct IdEntry
{
	int64		key;
	int32		idx;
	char		status;
} IdEntry;

static inline uint32
HashId(int64 key)
{
	uint64		h = (uint64) key;

	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

#define SH_PREFIX idmap
#define SH_ELEMENT_TYPE IdEntry
#define SH_KEY_TYPE int64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) HashId(k)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct TripleChunk
{
	struct TripleChunk *next;
	int32		n;
	int32		user[TRIPLE_CHUNK_ROWS];
	int32		item[TRIPLE_CHUNK_ROWS];
	double		w[TRIPLE_CHUNK_ROWS];
} TripleChunk;

/*
 * id -> dense index.  Real ids are mostly small non-negative integers
 * (serials), so those go through a direct-mapped array, one L2/L3 access per
 * row instead of a hash probe that misses the cache; the array grows with the
 * largest id seen but never beyond 8 slots per distinct id (plus a floor),
 * so a few huge ids cannot make it balloon.  Everything else is hashed.
 */
#define DIRECT_FLOOR	(1 << 16)
#define DIRECT_MAX		(INT64CONST(1) << 26)

typedef struct IdMap
{
	idmap_hash *hash;
	int32	   *direct;			/* id -> index + 1, 0 = unseen */
	int64		dcap;
	int64	   *ids;			/* first-seen index -> id */
	int32		n;
	int32		cap;
} IdMap;

struct TripleBuffer
{
	TripleChunk *head;
	TripleChunk *tail;
	int64		n;				/* rows in chunks, staged rows excluded */
	IdMap		users;
	IdMap		items;
	/* raw ids of the rows not yet mapped: mapped a chunk at a time */
	int32		nstaged;
	int64		stage_user[TRIPLE_CHUNK_ROWS];
	int64		stage_item[TRIPLE_CHUNK_ROWS];
	double		stage_w[TRIPLE_CHUNK_ROWS];
	Size		mem_limit;
	const char *limit_name;
};

static Size
IdMapBytes(const IdMap *m)
{
	return (Size) m->dcap * sizeof(int32) + (Size) m->cap * sizeof(int64) +
		(Size) m->hash->size * sizeof(IdEntry);
}

static void
ChargeOrFail(TripleBuffer *tb, Size extra)
{
	Size		need;

	need = (Size) (tb->n + TRIPLE_CHUNK_ROWS) * BYTES_PER_ROW +
		((Size) tb->users.n + (Size) tb->items.n) * 48 +
		IdMapBytes(&tb->users) + IdMapBytes(&tb->items) + extra;
	if (need > tb->mem_limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("interaction data does not fit in %s", tb->limit_name),
				 errdetail("After " INT64_FORMAT " rows the interaction matrix needs about %zu MB; the limit is %zu MB.",
						   tb->n, need / (1024 * 1024) + 1, tb->mem_limit / (1024 * 1024)),
				 errhint("Raise %s (for example SET %s = '%zuMB') and retry.",
						 tb->limit_name, tb->limit_name,
						 (need / (1024 * 1024) + 1) * 2)));
}

static void
IdMapInit(IdMap *m)
{
	m->hash = idmap_create(CurrentMemoryContext, 1024, NULL);
	m->direct = NULL;
	m->dcap = 0;
	m->cap = 1024;
	m->n = 0;
	m->ids = palloc(sizeof(int64) * m->cap);
}

static void
IdMapFree(IdMap *m)
{
	idmap_destroy(m->hash);
	if (m->direct)
		pfree(m->direct);
	pfree(m->ids);
	m->hash = NULL;
	m->direct = NULL;
	m->ids = NULL;
}

TripleBuffer *
triples_create(Size mem_limit, const char *limit_name)
{
	TripleBuffer *tb = palloc0(sizeof(TripleBuffer));

	IdMapInit(&tb->users);
	IdMapInit(&tb->items);
	tb->mem_limit = mem_limit;
	tb->limit_name = limit_name;
	return tb;
}

static int32
NewIndex(IdMap *m, int64 id)
{
	if (m->n == PG_INT32_MAX - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct users or items"),
				 errdetail("At most %d distinct ids are supported.", PG_INT32_MAX - 1)));
	if (m->n == m->cap)
	{
		Size		newcap = Min((Size) m->cap * 2, (Size) PG_INT32_MAX);

		m->ids = repalloc_huge(m->ids, newcap * sizeof(int64));
		m->cap = (int32) newcap;
	}
	m->ids[m->n] = id;
	return m->n++;
}

/* Can the direct array cover `id`?  Grows it when that stays proportionate. */
static bool
DirectCovers(IdMap *m, int64 id)
{
	int64		want;

	if (id < 0 || id >= DIRECT_MAX)
		return false;
	if (id < m->dcap)
		return true;
	want = Max(id + 1, m->dcap * 2);
	want = Min(want, DIRECT_MAX);
	if (want > Max((int64) DIRECT_FLOOR, (int64) 8 * (m->n + 1)))
		return false;
	if (m->direct == NULL)
		m->direct = palloc_extended(sizeof(int32) * want, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	else
	{
		m->direct = repalloc_huge(m->direct, sizeof(int32) * want);
		memset(m->direct + m->dcap, 0, sizeof(int32) * (want - m->dcap));
	}
	m->dcap = want;
	return true;
}

static pg_noinline int32
MapIdSlow(IdMap *m, int64 id)
{
	bool		found;
	IdEntry    *e;

	/* an id seen before the direct array covered it lives in the hash */
	e = idmap_lookup(m->hash, id);
	if (e)
		return e->idx;
	if (DirectCovers(m, id))
	{
		int32		idx = NewIndex(m, id);

		m->direct[id] = idx + 1;
		return idx;
	}
	e = idmap_insert(m->hash, id, &found);
	e->idx = NewIndex(m, id);
	return e->idx;
}

static inline int32
MapId(IdMap *m, int64 id)
{
	if (likely(id >= 0 && id < m->dcap && m->direct[id] > 0))
		return m->direct[id] - 1;
	return MapIdSlow(m, id);
}

static inline void
PrefetchId(const IdMap *m, int64 id)
{
	if (id >= 0 && id < m->dcap)
		__builtin_prefetch(&m->direct[id], 0, 3);
}

/*
 * Map the staged rows into a new chunk.  Done in a tight loop with the
 * lookups of rows a little ahead prefetched, so the cache misses of the id
 * arrays overlap instead of being paid one row at a time.
 */
static void
FlushStaged(TripleBuffer *tb)
{
	TripleChunk *c;
	int32		n = tb->nstaged;

	if (n == 0)
		return;
	ChargeOrFail(tb, 0);
	c = palloc(sizeof(TripleChunk));
	c->next = NULL;
	c->n = n;
	for (int32 r = 0; r < n; r++)
	{
		if (r + 16 < n)
		{
			PrefetchId(&tb->users, tb->stage_user[r + 16]);
			PrefetchId(&tb->items, tb->stage_item[r + 16]);
		}
		c->user[r] = MapId(&tb->users, tb->stage_user[r]);
		c->item[r] = MapId(&tb->items, tb->stage_item[r]);
	}
	memcpy(c->w, tb->stage_w, sizeof(double) * n);
	ChargeOrFail(tb, 0);		/* the id maps may have grown while mapping */
	if (tb->tail)
		tb->tail->next = c;
	else
		tb->head = c;
	tb->tail = c;
	tb->n += n;
	tb->nstaged = 0;
}

void
triples_add(TripleBuffer *tb, int64 user, int64 item, double w)
{
	int32		r = tb->nstaged;

	tb->stage_user[r] = user;
	tb->stage_item[r] = item;
	tb->stage_w[r] = w;
	if (++tb->nstaged == TRIPLE_CHUNK_ROWS)
		FlushStaged(tb);
}

int64
triples_count(TripleBuffer *tb)
{
	return tb->n + tb->nstaged;
}

/* ---------- matrix build ---------- */

typedef struct IdIdx
{
	int64		id;
	int32		idx;
} IdIdx;

static int
CmpIdIdx(const void *a, const void *b)
{
	int64		x = ((const IdIdx *) a)->id;
	int64		y = ((const IdIdx *) b)->id;

	return (x > y) - (x < y);
}

/* Sort ids ascending; return old index -> new index, and fill sorted ids. */
static int32 *
Renumber(const int64 *ids, int32 n, int64 *sorted_out)
{
	IdIdx	   *tmp = palloc_extended(sizeof(IdIdx) * Max(n, 1), MCXT_ALLOC_HUGE);
	int32	   *perm = palloc_extended(sizeof(int32) * Max(n, 1), MCXT_ALLOC_HUGE);

	for (int32 i = 0; i < n; i++)
	{
		tmp[i].id = ids[i];
		tmp[i].idx = i;
	}
	qsort(tmp, n, sizeof(IdIdx), CmpIdIdx);
	for (int32 i = 0; i < n; i++)
	{
		perm[tmp[i].idx] = i;
		sorted_out[i] = tmp[i].id;
	}
	pfree(tmp);
	return perm;
}

InteractionMatrix *
matrix_build(TripleBuffer *tb)
{
	return matrix_build_ex(tb, true);
}

/* with_items false: the user-major copy only (i_ptr, i_user, i_w stay NULL) */
InteractionMatrix *
matrix_build_ex(TripleBuffer *tb, bool with_items)
{
	InteractionMatrix *m;
	int32		nu;
	int32		ni;
	int64		n;
	int32	   *uperm,
			   *iperm;
	int64	   *ptr,
			   *fill;
	int32	   *raw_user;
	double	   *raw_w;
	int64		nnz;

	FlushStaged(tb);
	m = palloc0(sizeof(InteractionMatrix));
	nu = tb->users.n;
	ni = tb->items.n;
	n = tb->n;
	m->n_users = nu;
	m->n_items = ni;
	m->raw_rows = n;
	m->user_ids = huge_array(nu, sizeof(int64), false);
	m->item_ids = huge_array(ni, sizeof(int64), false);
	uperm = Renumber(tb->users.ids, nu, m->user_ids);
	iperm = Renumber(tb->items.ids, ni, m->item_ids);
	IdMapFree(&tb->users);
	IdMapFree(&tb->items);

	/* pass 1: chunks -> item-major, raw */
	ptr = palloc_extended(sizeof(int64) * ((Size) ni + 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (TripleChunk *c = tb->head; c; c = c->next)
	{
		for (int32 r = 0; r < c->n; r++)
		{
			c->item[r] = iperm[c->item[r]];
			c->user[r] = uperm[c->user[r]];
			ptr[c->item[r] + 1]++;
		}
		CHECK_FOR_INTERRUPTS();
	}
	for (int32 i = 0; i < ni; i++)
		ptr[i + 1] += ptr[i];
	raw_user = huge_array(n, sizeof(int32), false);
	raw_w = huge_array(n, sizeof(double), false);
	fill = huge_array((Size) ni + 1, sizeof(int64), false);
	memcpy(fill, ptr, sizeof(int64) * ((Size) ni + 1));
	for (TripleChunk *c = tb->head, *next; c; c = next)
	{
		next = c->next;
		for (int32 r = 0; r < c->n; r++)
		{
			int64		pos = fill[c->item[r]]++;

			raw_user[pos] = c->user[r];
			raw_w[pos] = c->w[r];
		}
		pfree(c);
		CHECK_FOR_INTERRUPTS();
	}
	tb->head = tb->tail = NULL;
	pfree(uperm);
	pfree(iperm);

	/* pass 2: item-major -> user-major, items ascending within each user */
	m->u_ptr = palloc_extended(sizeof(int64) * ((Size) nu + 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int64 p = 0; p < n; p++)
		m->u_ptr[raw_user[p] + 1]++;
	for (int32 u = 0; u < nu; u++)
		m->u_ptr[u + 1] += m->u_ptr[u];
	m->u_item = huge_array(n, sizeof(int32), false);
	m->u_w = huge_array(n, sizeof(double), false);
	pfree(fill);
	fill = huge_array((Size) nu + 1, sizeof(int64), false);
	memcpy(fill, m->u_ptr, sizeof(int64) * ((Size) nu + 1));
	for (int32 i = 0; i < ni; i++)
	{
		for (int64 p = ptr[i]; p < ptr[i + 1]; p++)
		{
			int64		pos = fill[raw_user[p]]++;

			m->u_item[pos] = i;
			m->u_w[pos] = raw_w[p];
		}
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(raw_user);
	pfree(raw_w);
	pfree(fill);

	/*
	 * Sum duplicate (user, item) rows, compacting in place.  A run of
	 * duplicates is summed in ascending order of weight, not in scan order,
	 * so that the sum (floating-point addition is not associative) and
	 * everything computed from it do not depend on the physical row order;
	 * recommend's and the user-based history readers sum the same way.
	 */
	nnz = 0;
	for (int32 u = 0; u < nu; u++)
	{
		int64		start = m->u_ptr[u];
		int64		end = m->u_ptr[u + 1];
		int64		ustart = nnz;

		for (int64 p = start; p < end;)
		{
			int64		q = p + 1;
			double		sum;

			while (q < end && m->u_item[q] == m->u_item[p])
				q++;
			if (q - p == 1)
				sum = m->u_w[p];
			else
			{
				qsort(&m->u_w[p], q - p, sizeof(double), cmp_double);
				sum = 0;
				for (int64 r = p; r < q; r++)
					sum += m->u_w[r];
			}
			m->u_item[nnz] = m->u_item[p];	/* nnz <= p: nothing unread is overwritten */
			m->u_w[nnz] = sum;
			nnz++;
			p = q;
		}
		m->u_ptr[u] = ustart;
		for (int64 p = ustart; p < nnz; p++)
			if (!isfinite(m->u_w[p]))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("sum of weights for user " INT64_FORMAT " and item " INT64_FORMAT " is out of range",
								m->user_ids[u], m->item_ids[m->u_item[p]])));
		if ((u & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	m->u_ptr[nu] = nnz;
	m->nnz = nnz;

	if (!with_items)
	{
		pfree(ptr);
		return m;
	}

	/* pass 3: user-major -> item-major, users ascending within each item */
	memset(ptr, 0, sizeof(int64) * ((Size) ni + 1));
	for (int64 p = 0; p < nnz; p++)
		ptr[m->u_item[p] + 1]++;
	for (int32 i = 0; i < ni; i++)
		ptr[i + 1] += ptr[i];
	m->i_ptr = ptr;
	m->i_user = huge_array(nnz, sizeof(int32), false);
	m->i_w = huge_array(nnz, sizeof(double), false);
	fill = huge_array((Size) ni + 1, sizeof(int64), false);
	memcpy(fill, ptr, sizeof(int64) * ((Size) ni + 1));
	for (int32 u = 0; u < nu; u++)
	{
		for (int64 p = m->u_ptr[u]; p < m->u_ptr[u + 1]; p++)
		{
			int64		pos = fill[m->u_item[p]]++;

			m->i_user[pos] = u;
			m->i_w[pos] = m->u_w[p];
		}
		if ((u & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(fill);
	return m;
}

/* ---------- similarity ---------- */

typedef struct HeapEntry
{
	double		sim;
	int32		j;
	int32		support;
} HeapEntry;

/* true when a ranks below b: lower similarity, or equal and larger index */
static inline bool
Worse(const HeapEntry *a, const HeapEntry *b)
{
	return a->sim < b->sim || (a->sim == b->sim && a->j > b->j);
}

static inline void
SiftDown(HeapEntry *h, int32 n, int32 pos)
{
	for (;;)
	{
		int32		l = 2 * pos + 1;
		int32		r = l + 1;
		int32		w = pos;
		HeapEntry	tmp;

		if (l < n && Worse(&h[l], &h[w]))
			w = l;
		if (r < n && Worse(&h[r], &h[w]))
			w = r;
		if (w == pos)
			return;
		tmp = h[pos];
		h[pos] = h[w];
		h[w] = tmp;
		pos = w;
	}
}

static inline void
SiftUp(HeapEntry *h, int32 pos)
{
	while (pos > 0)
	{
		int32		parent = (pos - 1) / 2;
		HeapEntry	tmp;

		if (!Worse(&h[pos], &h[parent]))
			return;
		tmp = h[pos];
		h[pos] = h[parent];
		h[parent] = tmp;
		pos = parent;
	}
}

typedef struct SimShared
{
	const InteractionMatrix *m;
	const SimParams *p;
	NeighborLists *out;
	const int32 *deg;			/* |U(i)| */
	const double *sumsq;		/* cosine, raw mode: sum of squared weights */
	const double *invnorm;		/* cosine, raw mode: 1 / sqrt(sumsq), for pre-filtering */
} SimShared;

/* accumulator and co-occurrence count side by side: one cache line per touch */
typedef struct AccSlot
{
	double		acc;
	int32		cnt;
	int32		pad;
} AccSlot;

typedef struct SimScratch
{
	SimShared  *sh;
	AccSlot    *slots;
	int32	   *touched;
	HeapEntry  *heap;
} SimScratch;

#define SIM_CHUNK 4

/* Accumulate item i's row; returns the number of touched items. */
static int32
AccumulateRow(const InteractionMatrix *m, int32 i, bool weighted,
			  AccSlot *restrict slots, int32 *restrict touched)
{
	const int64 *restrict i_ptr = m->i_ptr;
	const int32 *restrict i_user = m->i_user;
	const double *restrict i_w = m->i_w;
	const int64 *restrict u_ptr = m->u_ptr;
	const int32 *restrict u_item = m->u_item;
	const double *restrict u_w = m->u_w;
	int32		nt = 0;

	for (int64 a = i_ptr[i]; a < i_ptr[i + 1]; a++)
	{
		int32		u = i_user[a];
		double		wu = i_w[a];
		int64		end = u_ptr[u + 1];

		if (weighted)
		{
			for (int64 b = u_ptr[u]; b < end; b++)
			{
				int32		j = u_item[b];
				AccSlot    *sl = &slots[j];

				/* branch-free: first touches are unpredictable */
				touched[nt] = j;
				nt += (sl->cnt == 0);
				sl->cnt++;
				sl->acc += wu * u_w[b];
			}
		}
		else
		{
			for (int64 b = u_ptr[u]; b < end; b++)
			{
				int32		j = u_item[b];
				AccSlot    *sl = &slots[j];

				touched[nt] = j;
				nt += (sl->cnt == 0);
				sl->cnt++;
			}
		}
	}
	return nt;
}

static void
ProcessItem(SimScratch *s, int32 i)
{
	const SimShared *sh = s->sh;
	const SimParams *p = sh->p;
	NeighborLists *out = sh->out;
	int32		k = out->k_cap;
	AccSlot    *slots = s->slots;
	int32	   *touched = s->touched;
	HeapEntry  *heap = s->heap;
	bool		cosine = SIM_IS_COSINE(p->metric);
	int32		nt;
	int32		nh = 0;
	int64		base = (int64) i * k;
	double		inv_i = (cosine && sh->invnorm) ? sh->invnorm[i] : 1.0;
	double		floor_sim = 0;	/* candidates clearly below this cannot enter */

	nt = AccumulateRow(sh->m, i, cosine || p->metric == SIM_BM25, slots, touched);

	for (int32 t = 0; t < nt; t++)
	{
		int32		j = touched[t];
		int32		sup = slots[j].cnt;
		double		dot = slots[j].acc;
		double		sim;
		double		shrink = 1.0;
		HeapEntry	e;

		slots[j].acc = 0.0;
		slots[j].cnt = 0;
		if (j == i || sup < p->min_support)
			continue;
		if (p->shrinkage > 0)
			shrink = (double) sup / ((double) sup + p->shrinkage);

		if (cosine)
		{
			if (sh->sumsq)
			{
				double		den;

				/* cheap bound first: most candidates of a busy item lose */
				if (nh == k && dot * inv_i * sh->invnorm[j] * shrink < floor_sim)
					continue;
				den = sh->sumsq[i] * sh->sumsq[j];
				sim = den > 0 ? dot / sqrt(den) : 0.0;
			}
			else
				sim = dot;
			if (sim > 1.0)
				sim = 1.0;
		}
		else if (p->metric == SIM_BM25)
			sim = dot;
		else if (p->metric == SIM_CONDITIONAL)
			sim = (double) sup / (double) sh->deg[i];
		else
			sim = (double) sup / ((double) sh->deg[i] + (double) sh->deg[j] - (double) sup);
		sim *= shrink;
		if (!(sim > 0))
			continue;

		e.sim = sim;
		e.j = j;
		e.support = sup;
		if (nh < k)
		{
			heap[nh] = e;
			SiftUp(heap, nh);
			nh++;
		}
		else if (Worse(&heap[0], &e))
		{
			heap[0] = e;
			SiftDown(heap, nh, 0);
		}
		else
			continue;
		if (nh == k)
			floor_sim = heap[0].sim * (1.0 - 1e-9);
	}

	/* pop the worst to the back: the slots end up best first */
	out->n_out[i] = nh;
	for (int32 n = nh; n > 0; n--)
	{
		HeapEntry	worst = heap[0];

		heap[0] = heap[n - 1];
		SiftDown(heap, n - 1, 0);
		out->nb[base + n - 1] = worst.j;
		out->sim[base + n - 1] = worst.sim;
		out->support[base + n - 1] = worst.support;
	}
}

/* parallel.c task: chunk `task` of SIM_CHUNK items, on the worker's scratch */
static void
ProcessChunk(void *arg, int worker, int64 task)
{
	SimScratch *s = &((SimScratch *) arg)[worker];
	int32		n = s->sh->m->n_items;
	int64		start = task * SIM_CHUNK;

	for (int64 i = start; i < Min((int64) n, start + SIM_CHUNK); i++)
		ProcessItem(s, (int32) i);
}

static void
ScratchInit(SimScratch *s, SimShared *sh, int32 n_items, int32 k)
{
	s->sh = sh;
	s->slots = palloc_extended(sizeof(AccSlot) * Max(n_items, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	/* one spare slot: the branch-free append writes touched[nt] before testing */
	s->touched = palloc_extended(sizeof(int32) * ((Size) n_items + 1), MCXT_ALLOC_HUGE);
	s->heap = palloc_extended(sizeof(HeapEntry) * Max(k, 1), MCXT_ALLOC_HUGE);
}

static void
ScratchFree(SimScratch *s)
{
	pfree(s->slots);
	pfree(s->touched);
	pfree(s->heap);
}

static int32
KCap(const InteractionMatrix *m, const SimParams *p)
{
	return m->n_items <= 1 ? 0 : Min(p->k, m->n_items - 1);
}

Size
sim_memory_estimate(const InteractionMatrix *m, const SimParams *p, int nthreads)
{
	double		out_bytes = (double) m->n_items * KCap(m, p) * (sizeof(int32) * 2 + sizeof(double));
	double		scratch = (double) nthreads * m->n_items * (sizeof(AccSlot) + sizeof(int32));
	double		matrix = (double) m->nnz * 24 + ((double) m->n_items + m->n_users) * 24;
	double		total = out_bytes + scratch + matrix;

	return total >= (double) SIZE_MAX / 2 ? SIZE_MAX / 2 : (Size) total;
}

/*
 * Cosine denominators.  Each item's weights are first multiplied by a power
 * of two that brings its largest |w| into [0.5, 1): multiplying by 2^e is
 * exact, so every product, sum and square root below is exactly 2^(e_i+e_j)
 * times what the raw weights would give, and sim = dot / sqrt(ss_i * ss_j)
 * is bit for bit the raw-weight value (1/sqrt(2*2) is 0.5, exact ties stay
 * exact, whatever the magnitudes elsewhere in the data), while no sum of
 * squares can overflow (ss_i <= users) or be tiny (ss_i >= 1/4) for any
 * finite input.  Returns the per-item sums of squares of the scaled weights.
 */
static double *
PrepareCosine(InteractionMatrix *m)
{
	double	   *ss = huge_array(Max(m->n_items, 1), sizeof(double), false);
	int		   *shift = huge_array(Max(m->n_items, 1), sizeof(int), false);

	for (int32 i = 0; i < m->n_items; i++)
	{
		double		maxabs = 0,
					acc = 0;
		int			e = 0;

		for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
			maxabs = Max(maxabs, fabs(m->i_w[a]));
		if (maxabs > 0)
			(void) frexp(maxabs, &e);	/* maxabs = f * 2^e, f in [0.5, 1) */
		shift[i] = -e;
		for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
		{
			double		x = ldexp(m->i_w[a], -e);

			m->i_w[a] = x;
			acc += x * x;
		}
		ss[i] = acc;
	}
	for (int64 b = 0; b < m->nnz; b++)
		m->u_w[b] = ldexp(m->u_w[b], shift[m->u_item[b]]);
	pfree(shift);
	return ss;
}

/*
 * Centring for adjusted cosine (Sarwar et al. 2001: subtract the user's mean
 * weight) and Pearson (subtract the item's mean weight).  Both copies of the
 * matrix get the same operation on the same operands, so they stay
 * bit-for-bit consistent.
 */
/*
 * Subtract each row's mean weight, where the rows are the users (CSR, for
 * adjusted cosine) or the items (CSC, for Pearson), and the same mean from
 * the other copy, whose entries name their row in `other_row`.
 */
static void
CenterRows(int32 nrows, const int64 *ptr, double *w,
		   int64 nnz, const int32 *other_row, double *other_w)
{
	double	   *mean = huge_array(Max(nrows, 1), sizeof(double), false);

	for (int32 r = 0; r < nrows; r++)
	{
		double		sum = 0;
		int64		cnt = ptr[r + 1] - ptr[r];
		bool		constant = true;

		for (int64 a = ptr[r]; a < ptr[r + 1]; a++)
		{
			sum += w[a];
			constant &= w[a] == w[ptr[r]];
		}
		if (cnt == 0)
			mean[r] = 0.0;
		else if (constant)
			mean[r] = w[ptr[r]];	/* exactly 0 after centring, not sum/cnt's rounding residue */
		else if (isfinite(sum))
			mean[r] = sum / (double) cnt;
		else
		{
			/* the plain sum overflowed: average the weights scaled by the largest |w| */
			double		maxabs = 0,
						scaled = 0;

			for (int64 a = ptr[r]; a < ptr[r + 1]; a++)
				maxabs = Max(maxabs, fabs(w[a]));
			for (int64 a = ptr[r]; a < ptr[r + 1]; a++)
				scaled += w[a] / maxabs;
			mean[r] = (scaled / (double) cnt) * maxabs;
		}
		for (int64 a = ptr[r]; a < ptr[r + 1]; a++)
		{
			w[a] -= mean[r];
			if (!isfinite(w[a]))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("a weight minus its mean is out of range"),
						 errhint("adjusted_cosine and pearson subtract means; weights near the limits of double precision do not fit.")));
		}
		if ((r & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	for (int64 a = 0; a < nnz; a++)
		other_w[a] -= mean[other_row[a]];
	pfree(mean);
}

/*
 * BM25 weighting, in both copies of the matrix: with N users,
 * idf(i) = ln(N) - ln(1 + |U(i)|), len(u) = Σ_i w(u,i),
 * norm(u) = (1 - B) + B · len(u) / mean(len) and
 * w'(u,i) = w(u,i) · (K1 + 1) / (K1 · norm(u) + w(u,i)) · idf(i).
 */
static void
ApplyBm25(InteractionMatrix *m, double k1, double b)
{
	double	   *norm = huge_array(Max(m->n_users, 1), sizeof(double), false);
	double	   *idf = huge_array(Max(m->n_items, 1), sizeof(double), false);
	double		total = 0,
				mean_len;

	for (int32 u = 0; u < m->n_users; u++)
	{
		double		len = 0;

		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
			len += m->u_w[a];
		norm[u] = len;
		total += len;
	}
	mean_len = m->n_users > 0 ? total / m->n_users : 0;
	for (int32 u = 0; u < m->n_users; u++)
		norm[u] = (1.0 - b) + (mean_len != 0 ? b * norm[u] / mean_len : 0);
	for (int32 i = 0; i < m->n_items; i++)
		idf[i] = log((double) m->n_users) - log(1.0 + (double) (m->i_ptr[i + 1] - m->i_ptr[i]));
	for (int32 u = 0; u < m->n_users; u++)
		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
		{
			double		w = m->u_w[a];

			/* a zero weight stays 0 (with K1 = 0 the formula would be 0/0) */
			m->u_w[a] = w == 0 ? 0.0 : w * (k1 + 1.0) / (k1 * norm[u] + w) * idf[m->u_item[a]];
		}
	for (int32 i = 0; i < m->n_items; i++)
		for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
		{
			double		w = m->i_w[a];
			int32		u = m->i_user[a];

			m->i_w[a] = w == 0 ? 0.0 : w * (k1 + 1.0) / (k1 * norm[u] + w) * idf[i];
		}
	for (int64 a = 0; a < m->nnz; a++)
		if (!isfinite(m->u_w[a]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("a BM25 weight is not finite"),
					 errhint("BM25 needs weights whose sum per user is not zero; use positive weights.")));
	pfree(norm);
	pfree(idf);
}

NeighborLists *
sim_compute(InteractionMatrix *m, const SimParams *p, int nthreads,
			const SimInterruptHooks *hooks)
{
	NeighborLists *out = palloc0(sizeof(NeighborLists));
	int32		k = KCap(m, p);
	int32		n = m->n_items;
	SimShared	sh;
	SimScratch *scratch;
	ParallelRun run;
	int32	   *deg;
	double	   *sumsq = NULL;
	double	   *invnorm = NULL;

	out->n_items = n;
	out->k_cap = k;
	out->n_out = palloc_extended(sizeof(int32) * Max(n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	if (k == 0)
		return out;
	out->nb = huge_array((Size) n * k, sizeof(int32), false);
	out->sim = huge_array((Size) n * k, sizeof(double), false);
	out->support = huge_array((Size) n * k, sizeof(int32), false);

	deg = huge_array(n, sizeof(int32), false);
	for (int32 i = 0; i < n; i++)
		deg[i] = (int32) (m->i_ptr[i + 1] - m->i_ptr[i]);
	if (p->metric == SIM_BM25)
		ApplyBm25(m, p->bm25_k1, p->bm25_b);
	if (p->metric == SIM_ADJUSTED_COSINE)
		CenterRows(m->n_users, m->u_ptr, m->u_w, m->nnz, m->i_user, m->i_w);
	else if (p->metric == SIM_PEARSON)
		CenterRows(m->n_items, m->i_ptr, m->i_w, m->nnz, m->u_item, m->u_w);
	if (SIM_IS_COSINE(p->metric))
		sumsq = PrepareCosine(m);
	if (sumsq)
	{
		invnorm = huge_array(n, sizeof(double), false);
		for (int32 i = 0; i < n; i++)
			invnorm[i] = sumsq[i] > 0 ? 1.0 / sqrt(sumsq[i]) : 0.0;
	}

	nthreads = Max(1, Min(nthreads, 64));
	if (nthreads > n)
		nthreads = Max(1, n);
	memset(&sh, 0, sizeof(sh));
	sh.sumsq = sumsq;
	sh.invnorm = invnorm;
	sh.m = m;
	sh.p = p;
	sh.out = out;
	sh.deg = deg;
	scratch = palloc(sizeof(SimScratch) * nthreads);
	for (int t = 0; t < nthreads; t++)
		ScratchInit(&scratch[t], &sh, n, k);

	/*
	 * Every item's row is written by the one task that owns it, so the
	 * result does not depend on which thread ran it; an interrupt that
	 * returns resumes the run (see parallel.c).
	 */
	memset(&run, 0, sizeof(run));
	run.n_tasks = ((int64) n + SIM_CHUNK - 1) / SIM_CHUNK;
	run.n_workers = nthreads;
	run.fn = ProcessChunk;
	run.arg = scratch;
	parallel_run(&run, hooks);

	for (int t = 0; t < nthreads; t++)
		ScratchFree(&scratch[t]);
	pfree(scratch);
	pfree(deg);
	if (sumsq)
		pfree(sumsq);
	if (invnorm)
		pfree(invnorm);

	for (int32 i = 0; i < n; i++)
		out->pairs += out->n_out[i];
	return out;
}

const char *
sim_metric_name(SimMetric m)
{
	switch (m)
	{
		case SIM_COSINE:
			return "cosine";
		case SIM_JACCARD:
			return "jaccard";
		case SIM_ADJUSTED_COSINE:
			return "adjusted_cosine";
		case SIM_PEARSON:
			return "pearson";
		case SIM_CONDITIONAL:
			return "conditional";
		case SIM_BM25:
			return "bm25";
	}
	return "unknown";
}

bool
sim_metric_parse(const char *name, SimMetric *out)
{
	static const SimMetric all[] = {SIM_COSINE, SIM_JACCARD, SIM_ADJUSTED_COSINE,
	SIM_PEARSON, SIM_CONDITIONAL, SIM_BM25};

	for (int i = 0; i < lengthof(all); i++)
		if (strcmp(name, sim_metric_name(all[i])) == 0)
		{
			*out = all[i];
			return true;
		}
	return false;
}
