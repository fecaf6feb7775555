/*
 * simcore.c
 *	  Item-to-item similarity on plain C arrays.
 *
 * Design
 * ------
 * The input is a stream of (user id, item id, weight) rows.  triples_add()
 * maps the 64-bit ids to dense indexes through two id maps and appends
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
 * then keep the k best candidates in a bounded heap (topk.h) and reset only
 * the touched slots.  The work is sum over users of deg(u)^2 multiply-adds
 * and nothing of size items x items is ever materialised.  For cosine the
 * weights are divided by their item norm first, so the accumulated dot
 * product is the similarity (or, for ordinary weights, the raw dot product is
 * divided by sqrt(ss_i * ss_j) at the end; see PrepareCosine).
 *
 * RP3beta is the same product over other weights: the item-major copy holds
 * (w(u,i) / s(i))^α and the user-major copy (w(u,j) / t(u))^α, which is all
 * the i side and the j side of the accumulation read, and the candidate's
 * sum is divided by s(j)^β (a division, as the definition writes it, not a
 * multiplication by a reciprocal: it is per candidate, not per
 * multiply-add, and measured 2-4 % of the run at 1M interactions).
 *
 * EASE is dense: the items it covers (all, or the max_items most popular)
 * get one n x n matrix, in which ease_core.c builds G + λI, factors it and
 * inverts it in place; then each covered item's row of P is copied out of
 * the triangle (EASE_ROWS rows at a time, see FillPRows) and its candidates
 * are its co-occurring covered items, whose supports the unweighted sparse
 * pass counts, at B[i][j] = -P[i][j] / P[j][j].  The matrix is released as
 * soon as the selection ends; each phase reports its seconds and the most
 * bytes held through SimParams.progress (counted by a wrapper around the
 * caller's allocator).
 *
 * Items are handed out in small chunks, one task each, to up to `nthreads`
 * threads through parallel.c's runner.  Helper threads run only the task
 * functions, on memory allocated beforehand by the main thread; they never
 * call the allocator or the interrupt hooks.  The main thread works too and
 * polls for a pending interrupt between chunks: the runner then joins the
 * helpers and lets the caller process the interrupt (in the server usually
 * an error) with no thread left running; if processing returns, the run
 * resumes.
 *
 * Each item's row is computed by one thread in a fixed order (users
 * ascending), so the result is bit-for-bit independent of the thread count.
 *
 * Plain C (core.h): memory from the caller's CoreAlloc, errors returned as
 * CoreErrors; simcore_pg.c is the server side.
 */
#include "core.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare.h"
#include "ease_core.h"
#include "simcore.h"
#include "topk.h"

#define TRIPLE_CHUNK_ROWS	8192
/* bytes per input row at the peak of matrix_build: the row plus one CSR/CSC copy */
#define BYTES_PER_ROW		28
/* flat loops over rows or pairs poll for interrupts every 2^22 elements */
#define POLL_MASK			((INT64CONST(1) << 22) - 1)

/* ---------- id -> dense index hash table ---------- */

/*
 * Open addressing with linear probing over a power-of-two table, grown by
 * doubling at three quarters full.  Only ids the direct array below does
 * not cover come here.  An entry's slot depends on the hash, but the index
 * an id gets is its first-seen order, so nothing downstream depends on the
 * table's layout.
 */
typedef struct IdEntry
{
	int64		key;
	int32		idx;			/* -1: empty */
	int32		pad;
} IdEntry;

typedef struct IdHash
{
	IdEntry    *data;
	uint32		size;			/* power of two */
	uint32		members;
} IdHash;

#define IDHASH_INITIAL	2048

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

static bool
IdHashInit(const CoreAlloc *a, IdHash *h, uint32 size, CoreError *err)
{
	h->data = core_array(a, size, sizeof(IdEntry), false, err);
	if (h->data == NULL)
		return false;
	for (uint32 s = 0; s < size; s++)
		h->data[s].idx = -1;
	h->size = size;
	h->members = 0;
	return true;
}

/* the entry of `key`, or the empty slot where it belongs */
static inline IdEntry *
IdHashSlot(const IdHash *h, int64 key)
{
	uint32		mask = h->size - 1;
	uint32		s = HashId(key) & mask;

	while (h->data[s].idx >= 0 && h->data[s].key != key)
		s = (s + 1) & mask;
	return &h->data[s];
}

/* Make room for one more member (doubling the table); false on failure. */
static bool
IdHashReserve(const CoreAlloc *a, IdHash *h, CoreError *err)
{
	IdHash		bigger;

	if ((uint64) (h->members + 1) * 4 <= (uint64) h->size * 3)
		return true;
	if (h->size > PG_UINT32_MAX / 2)
	{
		core_error(err, CORE_LIMIT, "too many distinct users or items");
		return false;
	}
	if (!IdHashInit(a, &bigger, h->size * 2, err))
		return false;
	for (uint32 s = 0; s < h->size; s++)
		if (h->data[s].idx >= 0)
			*IdHashSlot(&bigger, h->data[s].key) = h->data[s];
	bigger.members = h->members;
	core_release(a, h->data);
	*h = bigger;
	return true;
}

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
	IdHash		hash;
	int32	   *direct;			/* id -> index + 1, 0 = unseen */
	int64		dcap;
	int64	   *ids;			/* first-seen index -> id */
	int32		n;
	int32		cap;
} IdMap;

struct TripleBuffer
{
	CoreAlloc	alloc;			/* a copy of the creator's allocator */
	CoreError  *err;			/* where the current call reports */
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
	size_t		mem_limit;
	const char *limit_name;
};

static size_t
IdMapBytes(const IdMap *m)
{
	return (size_t) m->dcap * sizeof(int32) + (size_t) m->cap * sizeof(int64) +
		(size_t) m->hash.size * sizeof(IdEntry);
}

static CoreStatus
Charge(TripleBuffer *tb, size_t extra)
{
	size_t		need;

	need = (size_t) (tb->n + TRIPLE_CHUNK_ROWS) * BYTES_PER_ROW +
		((size_t) tb->users.n + (size_t) tb->items.n) * 48 +
		IdMapBytes(&tb->users) + IdMapBytes(&tb->items) + extra;
	if (need <= tb->mem_limit)
		return CORE_OK;
	core_error(tb->err, CORE_LIMIT, "interaction data does not fit in %s", tb->limit_name);
	core_error_detail(tb->err, "After " INT64_FORMAT " rows the interaction matrix needs about %zu MB; the limit is %zu MB.",
					  tb->n, need / (1024 * 1024) + 1, tb->mem_limit / (1024 * 1024));
	return core_error_hint(tb->err, "Raise %s (for example SET %s = '%zuMB') and retry.",
						   tb->limit_name, tb->limit_name,
						   (need / (1024 * 1024) + 1) * 2);
}

static bool
IdMapInit(const CoreAlloc *a, IdMap *m, CoreError *err)
{
	m->direct = NULL;
	m->dcap = 0;
	m->cap = 1024;
	m->n = 0;
	m->ids = core_array(a, m->cap, sizeof(int64), false, err);
	return m->ids != NULL && IdHashInit(a, &m->hash, IDHASH_INITIAL, err);
}

static void
IdMapFree(const CoreAlloc *a, IdMap *m)
{
	core_release(a, m->hash.data);
	core_release(a, m->direct);
	core_release(a, m->ids);
	m->hash.data = NULL;
	m->direct = NULL;
	m->ids = NULL;
}

TripleBuffer *
simcore_triples_create(const CoreAlloc *a, size_t mem_limit, const char *limit_name, CoreError *err)
{
	TripleBuffer *tb = core_array(a, 1, sizeof(TripleBuffer), true, err);

	if (tb == NULL)
		return NULL;
	tb->alloc = *a;
	if (!IdMapInit(a, &tb->users, err) || !IdMapInit(a, &tb->items, err))
		return NULL;
	tb->mem_limit = mem_limit;
	tb->limit_name = limit_name;
	return tb;
}

/* the next dense index, for `id`; -1 with tb->err set on failure */
static int32
NewIndex(TripleBuffer *tb, IdMap *m, int64 id)
{
	if (m->n == PG_INT32_MAX - 1)
	{
		core_error(tb->err, CORE_LIMIT, "too many distinct users or items");
		core_error_detail(tb->err, "At most %d distinct ids are supported.", PG_INT32_MAX - 1);
		return -1;
	}
	if (m->n == m->cap)
	{
		size_t		newcap = Min((size_t) m->cap * 2, (size_t) PG_INT32_MAX);
		int64	   *ids = core_array(&tb->alloc, newcap, sizeof(int64), false, tb->err);

		if (ids == NULL)
			return -1;
		memcpy(ids, m->ids, sizeof(int64) * m->n);
		core_release(&tb->alloc, m->ids);
		m->ids = ids;
		m->cap = (int32) newcap;
	}
	m->ids[m->n] = id;
	return m->n++;
}

/*
 * Can the direct array cover `id`?  Grows it when that stays proportionate.
 * *failed is set (with tb->err) when growing failed.
 */
static bool
DirectCovers(TripleBuffer *tb, IdMap *m, int64 id, bool *failed)
{
	int64		want;
	int32	   *direct;

	if (id < 0 || id >= DIRECT_MAX)
		return false;
	if (id < m->dcap)
		return true;
	want = Max(id + 1, m->dcap * 2);
	want = Min(want, DIRECT_MAX);
	if (want > Max((int64) DIRECT_FLOOR, (int64) 8 * (m->n + 1)))
		return false;
	direct = core_array(&tb->alloc, want, sizeof(int32), false, tb->err);
	if (direct == NULL)
	{
		*failed = true;
		return false;
	}
	if (m->dcap > 0)
		memcpy(direct, m->direct, sizeof(int32) * m->dcap);
	memset(direct + m->dcap, 0, sizeof(int32) * (want - m->dcap));
	core_release(&tb->alloc, m->direct);
	m->direct = direct;
	m->dcap = want;
	return true;
}

static pg_noinline int32
MapIdSlow(TripleBuffer *tb, IdMap *m, int64 id)
{
	IdEntry    *e;
	bool		failed = false;
	int32		idx;

	/* an id seen before the direct array covered it lives in the hash */
	e = IdHashSlot(&m->hash, id);
	if (e->idx >= 0)
		return e->idx;
	if (DirectCovers(tb, m, id, &failed))
	{
		idx = NewIndex(tb, m, id);
		if (idx >= 0)
			m->direct[id] = idx + 1;
		return idx;
	}
	if (failed || !IdHashReserve(&tb->alloc, &m->hash, tb->err))
		return -1;
	idx = NewIndex(tb, m, id);
	if (idx < 0)
		return -1;
	e = IdHashSlot(&m->hash, id);	/* the table may have grown */
	e->key = id;
	e->idx = idx;
	m->hash.members++;
	return idx;
}

/* dense index of `id`, -1 with tb->err set on failure */
static inline int32
MapId(TripleBuffer *tb, IdMap *m, int64 id)
{
	if (likely(id >= 0 && id < m->dcap && m->direct[id] > 0))
		return m->direct[id] - 1;
	return MapIdSlow(tb, m, id);
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
static CoreStatus
FlushStaged(TripleBuffer *tb)
{
	TripleChunk *c;
	int32		n = tb->nstaged;

	if (n == 0)
		return CORE_OK;
	if (Charge(tb, 0) != CORE_OK)
		return tb->err->status;
	c = core_array(&tb->alloc, 1, sizeof(TripleChunk), false, tb->err);
	if (c == NULL)
		return tb->err->status;
	c->next = NULL;
	c->n = n;
	for (int32 r = 0; r < n; r++)
	{
		if (r + 16 < n)
		{
			PrefetchId(&tb->users, tb->stage_user[r + 16]);
			PrefetchId(&tb->items, tb->stage_item[r + 16]);
		}
		c->user[r] = MapId(tb, &tb->users, tb->stage_user[r]);
		c->item[r] = MapId(tb, &tb->items, tb->stage_item[r]);
		if (unlikely(c->user[r] < 0 || c->item[r] < 0))
		{
			core_release(&tb->alloc, c);
			return tb->err->status;
		}
	}
	memcpy(c->w, tb->stage_w, sizeof(double) * n);
	/* the id maps may have grown while mapping (charged before the rows count) */
	if (Charge(tb, 0) != CORE_OK)
	{
		core_release(&tb->alloc, c);
		return tb->err->status;
	}
	if (tb->tail)
		tb->tail->next = c;
	else
		tb->head = c;
	tb->tail = c;
	tb->n += n;
	tb->nstaged = 0;
	return CORE_OK;
}

CoreStatus
simcore_triples_add(TripleBuffer *tb, int64 user, int64 item, double w, CoreError *err)
{
	int32		r = tb->nstaged;

	tb->stage_user[r] = user;
	tb->stage_item[r] = item;
	tb->stage_w[r] = w;
	if (++tb->nstaged == TRIPLE_CHUNK_ROWS)
	{
		tb->err = err;
		return FlushStaged(tb);
	}
	return CORE_OK;
}

int64
triples_count(TripleBuffer *tb)
{
	return tb->n + tb->nstaged;
}

/* ---------- matrix build ---------- */

/* an id and its first-seen index; the id first, so cmp_int64 orders by it */
typedef struct IdIdx
{
	int64		id;
	int32		idx;
} IdIdx;

StaticAssertDecl(offsetof(IdIdx, id) == 0, "cmp_int64 orders IdIdx by its first member");

/* Sort ids ascending; return old index -> new index, and fill sorted ids. */
static int32 *
Renumber(const CoreAlloc *a, const int64 *ids, int32 n, int64 *sorted_out, CoreError *err)
{
	IdIdx	   *tmp = core_array(a, n, sizeof(IdIdx), false, err);
	int32	   *perm = core_array(a, n, sizeof(int32), false, err);

	if (tmp == NULL || perm == NULL)
		return NULL;
	for (int32 i = 0; i < n; i++)
	{
		tmp[i].id = ids[i];
		tmp[i].idx = i;
	}
	qsort(tmp, n, sizeof(IdIdx), cmp_int64);	/* ids are distinct: any sort gives one order */
	for (int32 i = 0; i < n; i++)
	{
		perm[tmp[i].idx] = i;
		sorted_out[i] = tmp[i].id;
	}
	core_release(a, tmp);
	return perm;
}

/* what the build phases pass on */
typedef struct Build
{
	const CoreAlloc *a;
	const CoreInterrupts *hooks;
	CoreError  *err;
	TripleBuffer *tb;
	InteractionMatrix *m;
	int64	   *ptr;			/* [n_items + 1]: item-major offsets */
	int32	   *raw_user;		/* [raw rows], item-major, duplicates kept */
	double	   *raw_w;
} Build;

/* Phase 1: flush the staged rows; ids sorted, old index -> id-order index */
static CoreStatus
BuildRenumber(Build *bd, int32 **uperm, int32 **iperm)
{
	TripleBuffer *tb = bd->tb;
	InteractionMatrix *m;

	tb->err = bd->err;
	if (FlushStaged(tb) != CORE_OK)
		return bd->err->status;
	m = bd->m = core_array(bd->a, 1, sizeof(InteractionMatrix), true, bd->err);
	if (m == NULL)
		return bd->err->status;
	m->n_users = tb->users.n;
	m->n_items = tb->items.n;
	m->raw_rows = tb->n;
	m->user_ids = core_array(bd->a, m->n_users, sizeof(int64), false, bd->err);
	m->item_ids = core_array(bd->a, m->n_items, sizeof(int64), false, bd->err);
	if (m->user_ids == NULL || m->item_ids == NULL ||
		(*uperm = Renumber(bd->a, tb->users.ids, m->n_users, m->user_ids, bd->err)) == NULL ||
		(*iperm = Renumber(bd->a, tb->items.ids, m->n_items, m->item_ids, bd->err)) == NULL)
		return bd->err->status;
	IdMapFree(&tb->alloc, &tb->users);
	IdMapFree(&tb->alloc, &tb->items);
	return CORE_OK;
}

/* Phase 2: chunks -> item-major, raw (duplicates kept); the chunks are released */
static CoreStatus
BuildItemMajorRaw(Build *bd, const int32 *uperm, const int32 *iperm)
{
	TripleBuffer *tb = bd->tb;
	int32		ni = bd->m->n_items;
	int64		n = tb->n;
	int64	   *ptr,
			   *fill;

	ptr = bd->ptr = core_array(bd->a, (size_t) ni + 1, sizeof(int64), true, bd->err);
	if (ptr == NULL)
		return bd->err->status;
	for (TripleChunk *c = tb->head; c; c = c->next)
	{
		for (int32 r = 0; r < c->n; r++)
		{
			c->item[r] = iperm[c->item[r]];
			c->user[r] = uperm[c->user[r]];
			ptr[c->item[r] + 1]++;
		}
		core_check_interrupts(bd->hooks);
	}
	for (int32 i = 0; i < ni; i++)
		ptr[i + 1] += ptr[i];
	bd->raw_user = core_array(bd->a, n, sizeof(int32), false, bd->err);
	bd->raw_w = core_array(bd->a, n, sizeof(double), false, bd->err);
	fill = core_array(bd->a, (size_t) ni + 1, sizeof(int64), false, bd->err);
	if (bd->raw_user == NULL || bd->raw_w == NULL || fill == NULL)
		return bd->err->status;
	memcpy(fill, ptr, sizeof(int64) * ((size_t) ni + 1));
	for (TripleChunk *c = tb->head, *next; c; c = next)
	{
		next = c->next;
		for (int32 r = 0; r < c->n; r++)
		{
			int64		pos = fill[c->item[r]]++;

			bd->raw_user[pos] = c->user[r];
			bd->raw_w[pos] = c->w[r];
		}
		core_release(&tb->alloc, c);
		tb->head = next;
		core_check_interrupts(bd->hooks);
	}
	tb->head = tb->tail = NULL;
	core_release(bd->a, fill);
	return CORE_OK;
}

/* Phase 3: item-major -> user-major, items ascending within each user */
static CoreStatus
BuildUserMajor(Build *bd)
{
	InteractionMatrix *m = bd->m;
	int32		nu = m->n_users,
				ni = m->n_items;
	int64		n = m->raw_rows;
	int64	   *fill;

	m->u_ptr = core_array(bd->a, (size_t) nu + 1, sizeof(int64), true, bd->err);
	if (m->u_ptr == NULL)
		return bd->err->status;
	for (int64 p = 0; p < n; p++)
	{
		m->u_ptr[bd->raw_user[p] + 1]++;
		if ((p & POLL_MASK) == 0)
			core_check_interrupts(bd->hooks);
	}
	for (int32 u = 0; u < nu; u++)
		m->u_ptr[u + 1] += m->u_ptr[u];
	m->u_item = core_array(bd->a, n, sizeof(int32), false, bd->err);
	m->u_w = core_array(bd->a, n, sizeof(double), false, bd->err);
	fill = core_array(bd->a, (size_t) nu + 1, sizeof(int64), false, bd->err);
	if (m->u_item == NULL || m->u_w == NULL || fill == NULL)
		return bd->err->status;
	memcpy(fill, m->u_ptr, sizeof(int64) * ((size_t) nu + 1));
	for (int32 i = 0; i < ni; i++)
	{
		for (int64 p = bd->ptr[i]; p < bd->ptr[i + 1]; p++)
		{
			int64		pos = fill[bd->raw_user[p]]++;

			m->u_item[pos] = i;
			m->u_w[pos] = bd->raw_w[p];
		}
		if ((i & 1023) == 0)
			core_check_interrupts(bd->hooks);
	}
	core_release(bd->a, bd->raw_user);
	core_release(bd->a, bd->raw_w);
	core_release(bd->a, fill);
	bd->raw_user = NULL;
	bd->raw_w = NULL;
	return CORE_OK;
}

/*
 * Phase 4: sum duplicate (user, item) rows, compacting in place.  A run of
 * duplicates is summed in ascending order of weight, not in scan order,
 * so that the sum (floating-point addition is not associative) and
 * everything computed from it do not depend on the physical row order;
 * recommend's and the user-based history readers sum the same way.
 */
static CoreStatus
BuildSumDuplicates(Build *bd)
{
	InteractionMatrix *m = bd->m;
	int32		nu = m->n_users;
	int64		nnz = 0;

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
				return core_error(bd->err, CORE_RANGE,
								  "sum of weights for user " INT64_FORMAT " and item " INT64_FORMAT " is out of range",
								  m->user_ids[u], m->item_ids[m->u_item[p]]);
		if ((u & 1023) == 0)
			core_check_interrupts(bd->hooks);
	}
	m->u_ptr[nu] = nnz;
	m->nnz = nnz;
	return CORE_OK;
}

/* Phase 5: user-major -> item-major, users ascending within each item */
static CoreStatus
BuildItemMajor(Build *bd)
{
	InteractionMatrix *m = bd->m;
	int32		nu = m->n_users,
				ni = m->n_items;
	int64		nnz = m->nnz;
	int64	   *ptr = bd->ptr;
	int64	   *fill;

	memset(ptr, 0, sizeof(int64) * ((size_t) ni + 1));
	for (int64 p = 0; p < nnz; p++)
	{
		ptr[m->u_item[p] + 1]++;
		if ((p & POLL_MASK) == 0)
			core_check_interrupts(bd->hooks);
	}
	for (int32 i = 0; i < ni; i++)
		ptr[i + 1] += ptr[i];
	m->i_ptr = ptr;
	bd->ptr = NULL;
	m->i_user = core_array(bd->a, nnz, sizeof(int32), false, bd->err);
	m->i_w = core_array(bd->a, nnz, sizeof(double), false, bd->err);
	fill = core_array(bd->a, (size_t) ni + 1, sizeof(int64), false, bd->err);
	if (m->i_user == NULL || m->i_w == NULL || fill == NULL)
		return bd->err->status;
	memcpy(fill, ptr, sizeof(int64) * ((size_t) ni + 1));
	for (int32 u = 0; u < nu; u++)
	{
		for (int64 p = m->u_ptr[u]; p < m->u_ptr[u + 1]; p++)
		{
			int64		pos = fill[m->u_item[p]]++;

			m->i_user[pos] = u;
			m->i_w[pos] = m->u_w[p];
		}
		if ((u & 1023) == 0)
			core_check_interrupts(bd->hooks);
	}
	core_release(bd->a, fill);
	return CORE_OK;
}

CoreStatus
simcore_matrix_build(const CoreAlloc *a, TripleBuffer *tb, bool with_items,
					 const CoreInterrupts *hooks, InteractionMatrix **out, CoreError *err)
{
	Build		bd;
	int32	   *uperm = NULL,
			   *iperm = NULL;

	memset(&bd, 0, sizeof(bd));
	bd.a = a;
	bd.hooks = hooks;
	bd.err = err;
	bd.tb = tb;
	*out = NULL;
	if (BuildRenumber(&bd, &uperm, &iperm) != CORE_OK ||
		BuildItemMajorRaw(&bd, uperm, iperm) != CORE_OK)
		return err->status;
	core_release(a, uperm);
	core_release(a, iperm);
	if (BuildUserMajor(&bd) != CORE_OK ||
		BuildSumDuplicates(&bd) != CORE_OK)
		return err->status;
	if (!with_items)
		core_release(a, bd.ptr);
	else if (BuildItemMajor(&bd) != CORE_OK)
		return err->status;
	*out = bd.m;
	return CORE_OK;
}
/* ---------- similarity ---------- */

typedef struct HeapEntry
{
	double		sim;
	int32		j;
	int32		support;
} HeapEntry;

/* true when a ranks below b: lower similarity, or equal and larger index */
#define HeapWorse(a, b) ((a)->sim < (b)->sim || ((a)->sim == (b)->sim && (a)->j > (b)->j))
TOPK_DEFINE(nb_heap, HeapEntry, HeapWorse)

typedef struct SimShared
{
	const InteractionMatrix *m;
	const SimParams *p;
	NeighborLists *out;
	const int32 *deg;			/* |U(i)| */
	const double *sumsq;		/* cosine, raw mode: sum of squared weights */
	const double *invnorm;		/* cosine, raw mode: 1 / sqrt(sumsq), for pre-filtering */
	const double *rp3_den;		/* rp3beta: s(j)^β (1 where s(j) = 0) */
	/* ease */
	const double *dense;		/* lower triangle of P, n_sub x n_sub, column-major */
	int32		n_sub;
	const int32 *sub;			/* item -> row/column of P, or -1 */
	const int32 *dense_item;	/* row of P -> item */
	const double *pdiag;		/* P[c][c] */
	bool		fixed;			/* cosine's sums in fixed point (sim_cosine_fixed) */
	/* bm25: the sums are of scaled terms t·2^shift; sim = sum · 2^-(shift_i + shift_j) · idf_i · idf_j */
	const double *bm25_idf;
	const int32 *bm25_shift;
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
	SimFixed   *fx;				/* fixed-point sums (sh->fixed), beside slots' counts */
	int32	   *touched;
	HeapEntry  *heap;
	double	   *prow;			/* ease: EASE_ROWS rows of P, n_sub each */
} SimScratch;

#define SIM_CHUNK 4
/* ease: rows of P per task, copied out of the triangle together (see FillPRows) */
#define EASE_ROWS 16

/*
 * Accumulate item i's row; returns the number of touched items.  With fx
 * (weighted only) the products go into fx in fixed point (simcore.h), the
 * counts into slots either way.  Runs on helper threads.
 */
static int32
AccumulateRow(const InteractionMatrix *m, int32 i, bool weighted,
			  AccSlot *restrict slots, SimFixed *restrict fx, int32 *restrict touched)
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

		if (weighted && fx)
		{
			for (int64 b = u_ptr[u]; b < end; b++)
			{
				int32		j = u_item[b];

				touched[nt] = j;
				nt += (slots[j].cnt == 0);
				slots[j].cnt++;
				fx[j] += sim_fixed_of(wu * u_w[b]);
			}
		}
		else if (weighted)
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

/* Item i's kept candidates into its slots, best first; empties the heap.  Any thread. */
static void
WriteNeighbors(NeighborLists *out, int32 i, HeapEntry *heap, int nh)
{
	int64		base = (int64) i * out->k_cap;

	/* pop the worst to the back: the slots end up best first */
	out->n_out[i] = nh;
	while (nh > 0)
	{
		HeapEntry	worst = nb_heap_pop_worst(heap, &nh);

		out->nb[base + nh] = worst.j;
		out->sim[base + nh] = worst.sim;
		out->support[base + nh] = worst.support;
	}
}

/*
 * Item i's top-k neighbours into its slots of the output, from the worker's
 * scratch (reset again before returning).  Runs on helper threads: no
 * allocation, no interrupt hooks, nothing shared written but item i's slots.
 */
static void
ScoreRow(SimScratch *s, int32 i, int32 nt)
{
	const SimShared *sh = s->sh;
	const SimParams *p = sh->p;
	NeighborLists *out = sh->out;
	int32		k = out->k_cap;
	AccSlot    *slots = s->slots;
	int32	   *touched = s->touched;
	HeapEntry  *heap = s->heap;
	bool		cosine = SIM_IS_COSINE(p->metric);
	int			nh = 0;
	double		inv_i = (cosine && sh->invnorm) ? sh->invnorm[i] : 1.0;
	double		floor_sim = 0;	/* candidates clearly below this cannot enter */

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
			sim = sh->bm25_idf ? ldexp(dot, -(sh->bm25_shift[i] + sh->bm25_shift[j])) * sh->bm25_idf[i] * sh->bm25_idf[j]
				: 0.0;			/* a scorer never given them (simcore_scorer_bm25): nothing */
		else if (p->metric == SIM_RP3BETA)
			sim = dot / sh->rp3_den[j];
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
		if (!nb_heap_offer(heap, &nh, k, &e))
			continue;
		if (nh == k)
			floor_sim = heap[0].sim * (1.0 - 1e-9);
	}

	WriteNeighbors(out, i, heap, nh);
}

/* Accumulate item i's row, then keep its best candidates.  Runs on helper threads. */
static void
ProcessItem(SimScratch *s, int32 i)
{
	const SimParams *p = s->sh->p;
	int32		nt;

	nt = AccumulateRow(s->sh->m, i, SIM_IS_COSINE(p->metric) || p->metric == SIM_BM25 ||
					   p->metric == SIM_RP3BETA, s->slots, s->fx, s->touched);
	/* fixed point: the sums as the doubles ScoreRow reads */
	for (int32 t = 0; s->fx && t < nt; t++)
	{
		int32		j = s->touched[t];

		s->slots[j].acc = sim_fixed_value(s->fx[j]);
		s->fx[j] = 0;
	}
	ScoreRow(s, i, nt);
}

/* parallel.c task: chunk `task` of SIM_CHUNK items, on the worker's scratch.  Runs on helper threads. */
static void
ProcessChunk(void *arg, int worker, int64 task)
{
	SimScratch *s = &((SimScratch *) arg)[worker];
	int32		n = s->sh->m->n_items;
	int64		start = task * SIM_CHUNK;

	for (int64 i = start; i < Min((int64) n, start + SIM_CHUNK); i++)
		ProcessItem(s, (int32) i);
}

/*
 * Rows r0 .. r1-1 of the symmetric P (n x n, lower triangle in a, see
 * ease_core.h) into buf, row r at buf[(r - r0) * n].  Row r is column r
 * below the diagonal (contiguous) and row r of the triangle to its left,
 * whose elements are n apart: those are read a column at a time for all
 * the rows together, so each cache line of the triangle is fetched once
 * per task rather than once per row.  Any thread.
 */
static void
FillPRows(const double *a, int32 n, int32 r0, int32 r1, double *restrict buf)
{
	for (int32 c = 0; c < r1; c++)
	{
		const double *col = a + (size_t) c * n;

		for (int32 r = Max(r0, c); r < r1; r++)
			buf[(size_t) (r - r0) * n + c] = col[r];	/* P[r][c], r >= c */
	}
	for (int32 r = r0; r < r1; r++)
		memcpy(buf + (size_t) (r - r0) * n + r + 1, a + (size_t) r * n + r + 1,
			   sizeof(double) * (n - r - 1));	/* P[r][c] = P[c][r], c > r */
}

/*
 * EASE: the top-k neighbours of the item on row r of P, whose row is prow:
 * every co-occurring item j of the dense matrix, B[i][j] = -P[i][j] /
 * P[j][j] times the shrinkage, kept when positive.  The co-occurrence counts
 * (support, min_support) come from the sparse matrix, unweighted.  Runs on
 * helper threads; resets the scratch slots it touched.
 */
static void
ProcessEaseRow(SimScratch *s, int32 r, const double *prow)
{
	const SimShared *sh = s->sh;
	const SimParams *p = sh->p;
	int32		i = sh->dense_item[r];
	int32		k = sh->out->k_cap;
	AccSlot    *slots = s->slots;
	int32	   *touched = s->touched;
	int			nh = 0;
	int32		nt = AccumulateRow(sh->m, i, false, slots, NULL, touched);

	for (int32 t = 0; t < nt; t++)
	{
		int32		j = touched[t];
		int32		sup = slots[j].cnt;
		int32		c = sh->sub[j];
		double		sim;
		HeapEntry	e;

		slots[j].cnt = 0;
		if (j == i || c < 0 || sup < p->min_support)
			continue;
		sim = -prow[c] / sh->pdiag[c];
		if (p->shrinkage > 0)
			sim *= (double) sup / ((double) sup + p->shrinkage);
		if (!(sim > 0))
			continue;
		e.sim = sim;
		e.j = j;
		e.support = sup;
		(void) nb_heap_offer(s->heap, &nh, k, &e);
	}
	WriteNeighbors(sh->out, i, s->heap, nh);
}

/* parallel.c task: rows [task * EASE_ROWS, ...) of P.  Runs on helper threads. */
static void
ProcessEaseChunk(void *arg, int worker, int64 task)
{
	SimScratch *s = &((SimScratch *) arg)[worker];
	const SimShared *sh = s->sh;
	int32		r0 = (int32) (task * EASE_ROWS);
	int32		r1 = Min(sh->n_sub, r0 + EASE_ROWS);

	FillPRows(sh->dense, sh->n_sub, r0, r1, s->prow);
	for (int32 r = r0; r < r1; r++)
		ProcessEaseRow(s, r, s->prow + (size_t) (r - r0) * sh->n_sub);
}

static bool
ScratchInit(const CoreAlloc *a, SimScratch *s, SimShared *sh, int32 n_items, int32 k, CoreError *err)
{
	s->sh = sh;
	s->slots = core_array(a, n_items, sizeof(AccSlot), true, err);
	/* one spare slot: the branch-free append writes touched[nt] before testing */
	s->touched = core_array(a, (size_t) n_items + 1, sizeof(int32), false, err);
	s->heap = core_array(a, k, sizeof(HeapEntry), false, err);
	if (sh->fixed)
		s->fx = core_array(a, n_items, sizeof(SimFixed), true, err);
	return s->slots != NULL && s->touched != NULL && s->heap != NULL && (!sh->fixed || s->fx != NULL);
}

static void
ScratchFree(const CoreAlloc *a, SimScratch *s)
{
	core_release(a, s->slots);
	core_release(a, s->touched);
	core_release(a, s->heap);
	core_release(a, s->prow);
	core_release(a, s->fx);
}

int32
sim_dense_items(const InteractionMatrix *m, const SimParams *p)
{
	if (p->metric != SIM_EASE)
		return 0;
	return p->max_items > 0 && p->max_items < m->n_items ? p->max_items : m->n_items;
}

size_t
sim_dense_bytes(const InteractionMatrix *m, const SimParams *p)
{
	size_t		bytes;

	if (p->metric != SIM_EASE)
		return 0;
	return ease_matrix_bytes(sim_dense_items(m, p), &bytes) ? bytes : SIZE_MAX;
}

/* neighbours per item the output has room for (EASE: among the items it covers) */
static int32
KCap(const InteractionMatrix *m, const SimParams *p)
{
	int32		n = p->metric == SIM_EASE ? sim_dense_items(m, p) : m->n_items;

	return n <= 1 ? 0 : Min(p->k, n - 1);
}

size_t
sim_memory_estimate(const InteractionMatrix *m, const SimParams *p, int nthreads)
{
	double		out_bytes = (double) m->n_items * KCap(m, p) * (sizeof(int32) * 2 + sizeof(double));
	double		scratch = (double) nthreads * m->n_items * (sizeof(AccSlot) + sizeof(int32));
	double		matrix = (double) m->nnz * 24 + ((double) m->n_items + m->n_users) * 24;
	double		total = out_bytes + scratch + matrix;

	if (p->metric == SIM_RP3BETA)
		total += (double) m->n_items * sizeof(double);
	/* adjusted cosine, pearson and bm25 decide after reweighting (sim_compute): count their fixed-point sums always */
	if (p->metric == SIM_ADJUSTED_COSINE || p->metric == SIM_PEARSON || p->metric == SIM_BM25 ||
		sim_cosine_fixed(m, p))
		total += (double) nthreads * m->n_items * sizeof(SimFixed);
	if (p->metric == SIM_BM25)
		total += (double) m->n_items * (sizeof(double) + sizeof(int32)) + (double) m->n_users * sizeof(double);
	if (p->metric == SIM_EASE)
	{
		double		n = sim_dense_items(m, p);
		size_t		dense = sim_dense_bytes(m, p);

		if (dense == SIZE_MAX)
			return SIZE_MAX / 2;
		total += (double) dense + (double) m->n_items * sizeof(int32) +
			n * (sizeof(double) + sizeof(int32)) +
			(double) nthreads * EASE_ROWS * n * sizeof(double) +
			(n + EASE_TILE) * EASE_TILE * sizeof(double);	/* ease_invert's scratch */
	}
	return total >= (double) SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t) total;
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
CoreStatus
simcore_cosine_scale(const CoreAlloc *alloc, const CoreInterrupts *hooks, InteractionMatrix *m,
					 int32 *shift_out, CoreError *err)
{
	int		   *shift = core_array(alloc, Max(m->n_items, 1), sizeof(int), false, err);

	if (shift == NULL)
		return err->status;
	for (int32 i = 0; i < m->n_items; i++)
	{
		double		maxabs = 0;
		int			e = 0;

		for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
			maxabs = Max(maxabs, fabs(m->i_w[a]));
		if (maxabs > 0)
			(void) frexp(maxabs, &e);	/* maxabs = f * 2^e, f in [0.5, 1) */
		shift[i] = -e;
		for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
			m->i_w[a] = ldexp(m->i_w[a], -e);
		if ((i & 1023) == 0)
			core_check_interrupts(hooks);
	}
	for (int64 b = 0; b < m->nnz; b++)
	{
		m->u_w[b] = ldexp(m->u_w[b], shift[m->u_item[b]]);
		if ((b & POLL_MASK) == 0)
			core_check_interrupts(hooks);
	}
	for (int32 i = 0; shift_out && i < m->n_items; i++)
		shift_out[i] = shift[i];
	core_release(alloc, shift);
	return CORE_OK;
}

int32
sim_weight_grid(double w)
{
	int			e;
	double		f = frexp(fabs(w), &e);	/* |w| = f * 2^e, f in [0.5, 1) */
	uint64		mant = (uint64) ldexp(f, 53);	/* exact: 53 significant bits */

	if (mant == 0)
		return 0;
	return e - 53 + __builtin_ctzll(mant);
}

void
sim_weights_grid(const InteractionMatrix *m, int32 *q, double *maxabs)
{
	*q = INT32_MAX;
	*maxabs = 0;
	for (int64 a = 0; a < m->nnz; a++)
	{
		double		w = m->i_w[a];

		if (w != 0)
			*q = Min(*q, sim_weight_grid(w));
		*maxabs = Max(*maxabs, fabs(w));
	}
}

bool
sim_weights_off_grid(const InteractionMatrix *m)
{
	int32		q;
	double		maxabs;

	sim_weights_grid(m, &q, &maxabs);
	if (q == INT32_MAX)
		return false;			/* every weight 0 */
	if (!sim_grid_usable(q, maxabs))
		return true;
	for (int32 i = 0; i < m->n_items; i++)
	{
		double		ss = 0;

		/* users ascending, as the row kernel adds w(u,i)·w(u,i) */
		for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
			ss += m->i_w[a] * m->i_w[a];
		if (!sim_norm_on_grid(ss, q))
			return true;
	}
	return false;
}

bool
sim_cosine_fixed(const InteractionMatrix *m, const SimParams *p)
{
	return p->metric == SIM_COSINE && sim_weights_off_grid(m);
}

/*
 * Cosine denominators.  Each item's weights are first multiplied by a power
 * of two that brings its largest |w| into [0.5, 1): multiplying by 2^e is
 * exact, so every product, sum and square root below is exactly 2^(e_i+e_j)
 * times what the raw weights would give, and sim = dot / sqrt(ss_i * ss_j)
 * is bit for bit the raw-weight value (1/sqrt(2*2) is 0.5, exact ties stay
 * exact, whatever the magnitudes elsewhere in the data), while no sum of
 * squares can overflow (ss_i <= users) or be tiny (ss_i >= 1/4) for any
 * finite input.  Returns the per-item sums of squares of the scaled weights,
 * added in fixed point when fixed (as the pair sums then are).
 */
static double *
PrepareCosine(const CoreAlloc *alloc, const CoreInterrupts *hooks, InteractionMatrix *m, bool fixed,
			  CoreError *err)
{
	double	   *ss = core_array(alloc, Max(m->n_items, 1), sizeof(double), false, err);

	if (ss == NULL || simcore_cosine_scale(alloc, hooks, m, NULL, err) != CORE_OK)
		return NULL;
	for (int32 i = 0; i < m->n_items; i++)
	{
		double		acc = 0;
		SimFixed	fx = 0;

		if (fixed)
		{
			for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
				fx += sim_fixed_of(m->i_w[a] * m->i_w[a]);
			acc = sim_fixed_value(fx);
		}
		else
			for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
				acc += m->i_w[a] * m->i_w[a];
		ss[i] = acc;
		if ((i & 1023) == 0)
			core_check_interrupts(hooks);
	}
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
static CoreStatus
CenterRows(const CoreAlloc *alloc, const CoreInterrupts *hooks, int32 nrows, const int64 *ptr, double *w,
		   int64 nnz, const int32 *other_row, double *other_w, CoreError *err)
{
	double	   *mean = core_array(alloc, nrows, sizeof(double), false, err);

	if (mean == NULL)
		return err->status;

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
			{
				core_error(err, CORE_RANGE, "a weight minus its mean is out of range");
				return core_error_hint(err, "adjusted_cosine and pearson subtract means; weights near the limits of double precision do not fit.");
			}
		}
		if ((r & 1023) == 0)
			core_check_interrupts(hooks);
	}
	for (int64 a = 0; a < nnz; a++)
		other_w[a] -= mean[other_row[a]];
	core_release(alloc, mean);
	return CORE_OK;
}

CoreStatus
simcore_center_users(const CoreAlloc *a, const CoreInterrupts *hooks, InteractionMatrix *m, CoreError *err)
{
	return CenterRows(a, hooks, m->n_users, m->u_ptr, m->u_w, m->nnz, m->i_user, m->i_w, err);
}

/* ---------- exact sums ---------- */

void
sim_exact_init(SimExactSum *s)
{
	memset(s, 0, sizeof(*s));
}

void
sim_exact_normalize(SimExactSum *s)
{
	for (int l = 0; l < SIM_EXACT_LIMBS - 1; l++)
	{
		int64		c = s->limb[l] >> 32;	/* floor(limb / 2^32): arithmetic shift */

		s->limb[l] -= c * ((int64) 1 << 32);
		s->limb[l + 1] += c;
	}
	s->adds = 0;
}

void
sim_exact_add(SimExactSum *s, double x)
{
	int			e;
	double		f;
	uint64		mant;
	int			p;
	unsigned __int128 v;
	int			l;

	if (x == 0)
		return;
	f = frexp(fabs(x), &e);		/* |x| = f * 2^e, f in [0.5, 1) */
	mant = (uint64) ldexp(f, 53);	/* |x| = mant * 2^(e - 53), exactly */
	p = e - 53 + 1074;			/* mant's lowest bit, in units of 2^-1074 */
	if (p < 0)
	{
		mant >>= -p;			/* a subnormal: the bits shifted out are 0 */
		p = 0;
	}
	l = p / 32;
	v = (unsigned __int128) mant << (p % 32);
	for (int k = 0; k < 3 && l + k < SIM_EXACT_LIMBS; k++)
	{
		int64		piece = (int64) (uint64) ((v >> (32 * k)) & 0xFFFFFFFFU);

		s->limb[l + k] += x < 0 ? -piece : piece;
	}
	/* each limb moves by less than 2^32 an addition: normalise long before 2^63 */
	if (++s->adds >= ((int64) 1 << 30))
		sim_exact_normalize(s);
}

void
sim_exact_merge(SimExactSum *s, const SimExactSum *other)
{
	SimExactSum o = *other;

	sim_exact_normalize(s);
	sim_exact_normalize(&o);
	for (int l = 0; l < SIM_EXACT_LIMBS; l++)
		s->limb[l] += o.limb[l];
	sim_exact_normalize(s);
}

bool
sim_exact_magnitude(SimExactSum *s)
{
	bool		neg;

	sim_exact_normalize(s);
	neg = s->limb[SIM_EXACT_LIMBS - 1] < 0;
	if (neg)
	{
		for (int l = 0; l < SIM_EXACT_LIMBS; l++)
			s->limb[l] = -s->limb[l];
		sim_exact_normalize(s);
	}
	return neg;
}

double
sim_exact_value(const SimExactSum *s)
{
	return sim_exact_value_scaled(s, 0);
}

double
sim_exact_value_scaled(const SimExactSum *in, int e)
{
	SimExactSum s = *in;
	bool		neg;
	int			t;
	unsigned __int128 hi = 0;
	bool		sticky = false;
	double		d;

	neg = sim_exact_magnitude(&s);
	for (t = SIM_EXACT_LIMBS - 1; t >= 0 && s.limb[t] == 0; t--)
		;
	if (t < 0)
		return 0.0;
	/* the top limb may exceed 32 bits (it absorbs the carries): beyond 2^1101 nothing is finite */
	if (t == SIM_EXACT_LIMBS - 1 && (e > -128 || s.limb[t] >= ((int64) 1 << 31)))
		return neg ? -INFINITY : INFINITY;
	/* the top four limbs (at least 97 bits), the rest as a sticky bit: one rounding */
	for (int l = t; l > t - 4; l--)
		hi = (hi << 32) | (unsigned __int128) (l >= 0 ? (uint64) s.limb[l] : 0);
	for (int l = t - 4; l >= 0 && !sticky; l--)
		sticky = s.limb[l] != 0;
	if (sticky)
		hi |= 1;
	d = ldexp((double) hi, 32 * (t - 3) - 1074 + e);
	return neg ? -d : d;
}

/* 2^(-k/64) for k = 0..63, each correctly rounded (computed to 60 digits) */
static const double SimHalfPow64[64] = {
	0x1.0000000000000p+0, 0x1.fa7c1819e90d8p-1, 0x1.f50765b6e4540p-1, 0x1.efa1bee615a27p-1,
	0x1.ea4afa2a490dap-1, 0x1.e502ee78b3ff6p-1, 0x1.dfc97337b9b5fp-1, 0x1.da9e603db3285p-1,
	0x1.d5818dcfba487p-1, 0x1.d072d4a07897cp-1, 0x1.cb720dcef9069p-1, 0x1.c67f12e57d14bp-1,
	0x1.c199bdd85529cp-1, 0x1.bcc1e904bc1d2p-1, 0x1.b7f76f2fb5e47p-1, 0x1.b33a2b84f15fbp-1,
	0x1.ae89f995ad3adp-1, 0x1.a9e6b5579fdbfp-1, 0x1.a5503b23e255dp-1, 0x1.a0c667b5de565p-1,
	0x1.9c49182a3f090p-1, 0x1.97d829fde4e50p-1, 0x1.93737b0cdc5e5p-1, 0x1.8f1ae99157736p-1,
	0x1.8ace5422aa0dbp-1, 0x1.868d99b4492edp-1, 0x1.82589994cce13p-1, 0x1.7e2f336cf4e62p-1,
	0x1.7a11473eb0187p-1, 0x1.75feb564267c9p-1, 0x1.71f75e8ec5f74p-1, 0x1.6dfb23c651a2fp-1,
	0x1.6a09e667f3bcdp-1, 0x1.6623882552225p-1, 0x1.6247eb03a5585p-1, 0x1.5e76f15ad2148p-1,
	0x1.5ab07dd485429p-1, 0x1.56f4736b527dap-1, 0x1.5342b569d4f82p-1, 0x1.4f9b2769d2ca7p-1,
	0x1.4bfdad5362a27p-1, 0x1.486a2b5c13cd0p-1, 0x1.44e086061892dp-1, 0x1.4160a21f72e2ap-1,
	0x1.3dea64c123422p-1, 0x1.3a7db34e59ff7p-1, 0x1.371a7373aa9cbp-1, 0x1.33c08b26416ffp-1,
	0x1.306fe0a31b715p-1, 0x1.2d285a6e4030bp-1, 0x1.29e9df51fdee1p-1, 0x1.26b4565e27cddp-1,
	0x1.2387a6e756238p-1, 0x1.2063b88628cd6p-1, 0x1.1d4873168b9aap-1, 0x1.1a35beb6fcb75p-1,
	0x1.172b83c7d517bp-1, 0x1.1429aaea92de0p-1, 0x1.11301d0125b51p-1, 0x1.0e3ec32d3d1a2p-1,
	0x1.0b5586cf9890fp-1, 0x1.0874518759bc8p-1, 0x1.059b0d3158574p-1, 0x1.02c9a3e778061p-1
};

double
sim_pow_half(double x)
{
	double		y,
				n,
				z,
				p;
	int64		ni;
	int			k;

	if (isnan(x))
		return x;
	if (x > 1100)
		return 0.0;				/* below half the smallest subnormal */
	if (x < -1100)
		return INFINITY;
	y = x * 64;					/* exact */
	n = floor(y);
	ni = (int64) n;
	k = (int) (ni & 63);		/* ni = 64 q + k with 0 <= k < 64, negative ni too */
	/* 2^-(f/64) = e^-z for the fraction f = y - n in [0, 1) (exact): z < 0.0109, seven terms */
	z = (y - n) * 0x1.62e42fefa39efp-7;
	p = 1.0 + z * (-1.0 + z * (1.0 / 2 + z * (-1.0 / 6 + z * (1.0 / 24 + z * (-1.0 / 120 + z * (1.0 / 720))))));
	return ldexp(SimHalfPow64[k] * p, (int) -((ni - k) / 64));
}

double
sim_pearson_mean(const SimExactSum *sum, int64 users, double minw, double maxw)
{
	double		v;

	if (users <= 0)
		return 0.0;
	if (minw == maxw)
		return maxw == 0 ? 0.0 : maxw;	/* exact zeros after centring, not sum/n's rounding residue */
	v = sim_exact_value(sum);
	if (isfinite(v))
		return v / (double) users;
	/* the sum passed DBL_MAX: divide at 2^-128, where it is finite */
	return ldexp(sim_exact_value_scaled(sum, -128) / (double) users, 128);
}

void
simcore_item_figures(const InteractionMatrix *m, const double *w, int32 i, SimExactSum *sum,
					 double *minw, double *maxw)
{
	*minw = INFINITY;
	*maxw = -INFINITY;
	sim_exact_init(sum);
	for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
	{
		sim_exact_add(sum, w[a]);
		*minw = Min(*minw, w[a]);
		*maxw = Max(*maxw, w[a]);
	}
}

double
simcore_item_mean(const InteractionMatrix *m, int32 i)
{
	SimExactSum sum;
	double		mn,
				mx;

	simcore_item_figures(m, m->i_w, i, &sum, &mn, &mx);
	return sim_pearson_mean(&sum, m->i_ptr[i + 1] - m->i_ptr[i], mn, mx);
}

void
simcore_item_means(const InteractionMatrix *m, const CoreInterrupts *hooks, double *mean)
{
	int64		next = 0;

	for (int32 i = 0; i < m->n_items; i++)
	{
		mean[i] = simcore_item_mean(m, i);
		sim_poll_items(hooks, i, m->i_ptr[i + 1], &next);
	}
}

CoreStatus
simcore_center_items(const InteractionMatrix *m, const CoreInterrupts *hooks, const double *mean,
					 CoreError *err)
{
	int64		next = 0;

	for (int32 i = 0; i < m->n_items; i++)
	{
		for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
		{
			m->i_w[a] -= mean[i];
			if (!isfinite(m->i_w[a]))
			{
				core_error(err, CORE_RANGE, "a weight minus its mean is out of range");
				return core_error_hint(err, "adjusted_cosine and pearson subtract means; weights near the limits of double precision do not fit.");
			}
		}
		sim_poll_items(hooks, i, m->i_ptr[i + 1], &next);
	}
	for (int64 a = 0; a < m->nnz; a++)
		m->u_w[a] -= mean[m->u_item[a]];
	return CORE_OK;
}

double
sim_bm25_mean_length(const SimExactSum *lengths, int64 n_users)
{
	return n_users > 0 ? sim_exact_value(lengths) / (double) n_users : 0;
}

double
sim_bm25_idf(int64 n_users, int64 item_users)
{
	return log((double) n_users) - log(1.0 + (double) item_users);
}

CoreStatus
simcore_user_lengths(const InteractionMatrix *m, SimExactSum *out, CoreError *err)
{
	sim_exact_init(out);
	for (int32 u = 0; u < m->n_users; u++)
	{
		double		len = 0;

		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
			len += m->u_w[a];
		if (!isfinite(len))
		{
			core_error(err, CORE_RANGE, "a BM25 weight is not finite");
			return core_error_hint(err, "A user's sum of weights is beyond double precision; BM25 needs finite history lengths.");
		}
		sim_exact_add(out, len);
	}
	return CORE_OK;
}

/*
 * BM25 weighting (simcore.h, simcore_bm25_terms): with N users,
 * idf(i) = ln(N) - ln(1 + |U(i)|), len(u) = Σ_i w(u,i),
 * norm(u) = (1 - B) + B · len(u) / mean(len) and
 * w'(u,i) = w(u,i) · (K1 + 1) / (K1 · norm(u) + w(u,i)) · idf(i);
 * here the term t = w' / idf(i) in both copies of the matrix, and idf in
 * *idf_out for the scoring, which multiplies the pair sums of t by
 * idf(i) · idf(j).
 */
CoreStatus
simcore_bm25_terms(const CoreAlloc *alloc, const CoreInterrupts *hooks, InteractionMatrix *m, double k1,
				   double b, double mean_len, CoreError *err)
{
	double	   *norm = core_array(alloc, Max(m->n_users, 1), sizeof(double), false, err);

	if (norm == NULL)
		return err->status;
	for (int32 u = 0; u < m->n_users; u++)
	{
		double		len = 0;

		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
			len += m->u_w[a];
		norm[u] = (1.0 - b) + (mean_len != 0 ? b * len / mean_len : 0);
	}
	for (int32 u = 0; u < m->n_users; u++)
	{
		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
		{
			double		w = m->u_w[a];

			/* a zero weight stays 0 (with K1 = 0 the formula would be 0/0) */
			m->u_w[a] = w == 0 ? 0.0 : w * (k1 + 1.0) / (k1 * norm[u] + w);
		}
		if ((u & 1023) == 0)
			core_check_interrupts(hooks);
	}
	for (int32 i = 0; i < m->n_items; i++)
	{
		for (int64 a = m->i_ptr[i]; a < m->i_ptr[i + 1]; a++)
		{
			double		w = m->i_w[a];
			int32		u = m->i_user[a];

			m->i_w[a] = w == 0 ? 0.0 : w * (k1 + 1.0) / (k1 * norm[u] + w);
		}
		if ((i & 1023) == 0)
			core_check_interrupts(hooks);
	}
	core_release(alloc, norm);
	for (int64 a = 0; a < m->nnz; a++)
		if (!isfinite(m->u_w[a]))
		{
			core_error(err, CORE_RANGE, "a BM25 weight is not finite");
			return core_error_hint(err, "BM25 needs weights whose sum per user is not zero; use positive weights.");
		}
	return CORE_OK;
}

static CoreStatus
ApplyBm25(const CoreAlloc *alloc, const CoreInterrupts *hooks, InteractionMatrix *m, double k1, double b,
		  double **idf_out, CoreError *err)
{
	SimExactSum lengths;
	double	   *idf;

	if (simcore_user_lengths(m, &lengths, err) != CORE_OK)
		return err->status;
	if (simcore_bm25_terms(alloc, hooks, m, k1, b, sim_bm25_mean_length(&lengths, m->n_users), err) != CORE_OK)
		return err->status;
	idf = core_array(alloc, Max(m->n_items, 1), sizeof(double), false, err);
	if (idf == NULL)
		return err->status;
	for (int32 i = 0; i < m->n_items; i++)
		idf[i] = sim_bm25_idf(m->n_users, m->i_ptr[i + 1] - m->i_ptr[i]);
	*idf_out = idf;
	return CORE_OK;
}

/*
 * RP3beta's transition probabilities, in place, over the rows of one copy
 * of the matrix (items in the item-major copy, users in the user-major one):
 * w := (w / Σ_row w)^alpha.  A row summing to 0 becomes all zeros (it
 * contributes nothing).  Should the plain sum overflow, the shares are taken
 * of the weights divided by the row's largest one, which sum to at most the
 * row's length.  The row sums go to sums[] when it is not NULL.  Weights are
 * >= 0 and finite (checked before), so every share is in [0, 1].
 */
static void
Rp3Shares(const CoreInterrupts *hooks, int32 nrows, const int64 *ptr, double *w, double alpha,
		  double *sums)
{
	for (int32 r = 0; r < nrows; r++)
	{
		double		sum = 0,
					scale = 0;
		bool		scaled;

		for (int64 a = ptr[r]; a < ptr[r + 1]; a++)
			sum += w[a];
		if (sums)
			sums[r] = sum;
		scaled = !isfinite(sum);
		if (scaled)
		{
			for (int64 a = ptr[r]; a < ptr[r + 1]; a++)
				scale = Max(scale, w[a]);
			sum = 0;
			for (int64 a = ptr[r]; a < ptr[r + 1]; a++)
				sum += w[a] / scale;
		}
		for (int64 a = ptr[r]; a < ptr[r + 1]; a++)
		{
			double		share = sum > 0 ? (scaled ? w[a] / scale : w[a]) / sum : 0.0;

			w[a] = alpha == 1.0 ? share : pow(share, alpha);
		}
		if ((r & 1023) == 0)
			core_check_interrupts(hooks);
	}
}

/*
 * RP3beta (Paudel et al. 2017): with s(i) = Σ_u w(u,i) and t(u) = Σ_j w(u,j),
 * the item-major copy becomes (w(u,i) / s(i))^α and the user-major copy
 * (w(u,j) / t(u))^α, so that AccumulateRow, which multiplies the i side of
 * the item-major copy with the j side of the user-major one, sums
 * Σ_u (w(u,i)/s(i))^α (w(u,j)/t(u))^α in users' ascending order; ProcessItem
 * divides by den[j] = s(j)^β.  The two copies no longer hold the same
 * values.  Each term is at most 1, so the sum is at most |U(j)|: when
 * |U(j)| / s(j)^β fits in a double no similarity can overflow, and an item
 * for which it does not (a tiny total weight under a large β) is an error.
 */
static CoreStatus
PrepareRp3beta(const CoreAlloc *alloc, const CoreInterrupts *hooks, InteractionMatrix *m,
			   const SimParams *p, const int32 *deg, double **den_out, CoreError *err)
{
	double	   *den;

	for (int32 u = 0; u < m->n_users; u++)
		for (int64 a = m->u_ptr[u]; a < m->u_ptr[u + 1]; a++)
			if (!(m->u_w[a] >= 0) || !isfinite(m->u_w[a]))
			{
				core_error(err, CORE_RANGE, "rp3beta needs weights >= 0");
				core_error_detail(err, "The weight of user " INT64_FORMAT " for item " INT64_FORMAT " is %g.",
								  m->user_ids[u], m->item_ids[m->u_item[a]], m->u_w[a]);
				return core_error_hint(err, "RP3beta reads weights as transition probabilities; filter out or fix the negative weights, or use another metric.");
			}
	den = core_array(alloc, m->n_items, sizeof(double), false, err);
	if (den == NULL)
		return err->status;
	Rp3Shares(hooks, m->n_items, m->i_ptr, m->i_w, p->rp3_alpha, den);
	Rp3Shares(hooks, m->n_users, m->u_ptr, m->u_w, p->rp3_alpha, NULL);
	for (int32 j = 0; j < m->n_items; j++)
	{
		double		s = den[j];

		den[j] = s > 0 ? pow(s, p->rp3_beta) : 1.0;
		if (!(den[j] > 0) || !isfinite((double) deg[j] / den[j]))
		{
			core_error(err, CORE_RANGE, "an rp3beta similarity to item " INT64_FORMAT " is out of range",
					   m->item_ids[j]);
			core_error_detail(err, "The item's total weight %g to the power rp3_beta = %g is too small to divide by.",
							  s, p->rp3_beta);
			return core_error_hint(err, "Scale the weights up, or lower rp3_beta.");
		}
	}
	*den_out = den;
	return CORE_OK;
}

/*
 * Reweighting for the metric, in both copies of the matrix; cosine's sums
 * of squares into *sumsq, RP3beta's denominators into *rp3_den
 */
static CoreStatus
ComputePrepare(const CoreAlloc *a, InteractionMatrix *m, const SimParams *p, const int32 *deg, bool *fixed,
			   const CoreInterrupts *hooks, double **sumsq, double **rp3_den, double **bm25_idf,
			   int32 **bm25_shift, CoreError *err)
{
	*sumsq = NULL;
	*rp3_den = NULL;
	*bm25_idf = NULL;
	*bm25_shift = NULL;
	if (p->metric == SIM_BM25)
	{
		/*
		 * the terms, scaled per item as cosine scales (exactly, by powers of
		 * two), and added in fixed point when off the grid: sums that do not
		 * depend on the order of addition, as the shards' merge needs
		 */
		if (ApplyBm25(a, hooks, m, p->bm25_k1, p->bm25_b, bm25_idf, err) != CORE_OK)
			return err->status;
		*fixed = sim_weights_off_grid(m);
		*bm25_shift = core_array(a, Max(m->n_items, 1), sizeof(int32), false, err);
		if (*bm25_shift == NULL || simcore_cosine_scale(a, hooks, m, *bm25_shift, err) != CORE_OK)
			return err->status;
	}
	if (p->metric == SIM_ADJUSTED_COSINE)
	{
		if (simcore_center_users(a, hooks, m, err) != CORE_OK)
			return err->status;
		/* the centred weights are a cosine's input: the grid rule is theirs */
		*fixed = sim_weights_off_grid(m);
	}
	if (p->metric == SIM_PEARSON)
	{
		/* item means from exact sums, so that shards given them centre alike (pairsums_core.h) */
		double	   *mean = core_array(a, Max(m->n_items, 1), sizeof(double), false, err);

		if (mean == NULL)
			return err->status;
		simcore_item_means(m, hooks, mean);
		if (simcore_center_items(m, hooks, mean, err) != CORE_OK)
		{
			core_release(a, mean);
			return err->status;
		}
		core_release(a, mean);
		*fixed = sim_weights_off_grid(m);
	}
	if (SIM_IS_COSINE(p->metric) && (*sumsq = PrepareCosine(a, hooks, m, *fixed, err)) == NULL)
		return err->status;
	if (p->metric == SIM_RP3BETA && PrepareRp3beta(a, hooks, m, p, deg, rp3_den, err) != CORE_OK)
		return err->status;
	return CORE_OK;
}

/* Scratch for nthreads workers (capped to what the tasks can use), in *scratch. */
static CoreStatus
ScratchAll(const CoreAlloc *a, SimShared *sh, int *nthreads, int64 n_tasks, SimScratch **scratch,
		   CoreError *err)
{
	int32		n = sh->m->n_items;

	*nthreads = (int) Max(1, Min((int64) *nthreads, n_tasks));
	*scratch = core_array(a, *nthreads, sizeof(SimScratch), true, err);
	if (*scratch == NULL)
		return err->status;
	for (int t = 0; t < *nthreads; t++)
		if (!ScratchInit(a, &(*scratch)[t], sh, n, sh->out->k_cap, err))
			return err->status;
	return CORE_OK;
}

/*
 * Run n_tasks of fn over the workers' scratch and release it.  Every item's
 * row is written by the one task that owns it, so the result does not
 * depend on which thread ran it; an interrupt that returns resumes the run
 * (see parallel.c).
 */
static void
RunWorkers(const CoreAlloc *a, SimScratch *scratch, int nthreads, int64 n_tasks, ParallelTaskFn fn,
		 const CoreInterrupts *hooks)
{
	ParallelRun run;

	memset(&run, 0, sizeof(run));
	run.n_tasks = n_tasks;
	run.n_workers = nthreads;
	run.fn = fn;
	run.arg = scratch;
	parallel_run(&run, hooks);
	for (int t = 0; t < nthreads; t++)
		ScratchFree(a, &scratch[t]);
	core_release(a, scratch);
}

/* The sparse metrics: reweight, then every item's row on the workers. */
static CoreStatus
ComputeSparse(const CoreAlloc *a, InteractionMatrix *m, const SimParams *p, int nthreads,
			  const CoreInterrupts *hooks, NeighborLists *out, CoreError *err)
{
	int32		n = m->n_items;
	int64		n_tasks = ((int64) n + SIM_CHUNK - 1) / SIM_CHUNK;
	SimShared	sh;
	SimScratch *scratch;
	int32	   *deg;
	double	   *sumsq = NULL;
	double	   *invnorm = NULL;
	double	   *rp3_den = NULL;
	double	   *bm25_idf = NULL;
	int32	   *bm25_shift = NULL;
	bool		fixed;

	deg = core_array(a, n, sizeof(int32), false, err);
	if (deg == NULL)
		return err->status;
	for (int32 i = 0; i < n; i++)
		deg[i] = (int32) (m->i_ptr[i + 1] - m->i_ptr[i]);
	fixed = sim_cosine_fixed(m, p);		/* before any reweighting: it reads the weights given */
	if (ComputePrepare(a, m, p, deg, &fixed, hooks, &sumsq, &rp3_den, &bm25_idf, &bm25_shift, err) != CORE_OK)
		return err->status;
	if (sumsq)
	{
		invnorm = core_array(a, n, sizeof(double), false, err);
		if (invnorm == NULL)
			return err->status;
		for (int32 i = 0; i < n; i++)
			invnorm[i] = sumsq[i] > 0 ? 1.0 / sqrt(sumsq[i]) : 0.0;
	}

	memset(&sh, 0, sizeof(sh));
	sh.sumsq = sumsq;
	sh.invnorm = invnorm;
	sh.rp3_den = rp3_den;
	sh.bm25_idf = bm25_idf;
	sh.bm25_shift = bm25_shift;
	sh.m = m;
	sh.p = p;
	sh.out = out;
	sh.deg = deg;
	sh.fixed = fixed;
	if (ScratchAll(a, &sh, &nthreads, n_tasks, &scratch, err) != CORE_OK)
		return err->status;
	RunWorkers(a, scratch, nthreads, n_tasks, ProcessChunk, hooks);

	core_release(a, deg);
	core_release(a, sumsq);
	core_release(a, invnorm);
	core_release(a, rp3_den);
	core_release(a, bm25_idf);
	core_release(a, bm25_shift);
	return CORE_OK;
}

/* ---------- EASE ---------- */

/*
 * EASE's phases allocate through a wrapper of the caller's allocator that
 * counts the bytes held, so that each phase can report the most it held at
 * once (ease_invert's scratch included), on the main thread.  Each block
 * carries its size in a header of TRACK_HEADER bytes, which keeps the
 * alignment of the underlying allocator's blocks.
 */
#define TRACK_HEADER 16

typedef struct EasePhases
{
	CoreAlloc	alloc;			/* the counting allocator the phases use */
	const CoreAlloc *base;
	size_t		live;
	size_t		peak;			/* most bytes held since the phase began */
	const SimProgress *progress;
	struct timespec start;
} EasePhases;

static void *
TrackAlloc(void *ctx, size_t size)
{
	EasePhases *ph = ctx;
	char	   *block;

	if (size > SIZE_MAX - TRACK_HEADER)
		return NULL;
	block = ph->base->alloc(ph->base->ctx, size + TRACK_HEADER);
	if (block == NULL)
		return NULL;
	memcpy(block, &size, sizeof(size));
	ph->live += size;
	ph->peak = Max(ph->peak, ph->live);
	return block + TRACK_HEADER;
}

static void
TrackFree(void *ctx, void *p)
{
	EasePhases *ph = ctx;
	char	   *block = (char *) p - TRACK_HEADER;
	size_t		size;

	memcpy(&size, block, sizeof(size));
	ph->live -= size;
	core_release(ph->base, block);
}

static double
SecondsSince(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double) (t1.tv_sec - t0->tv_sec) + (double) (t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* Start counting; `held` is what the computation already holds (its output lists). */
static void
PhasesInit(EasePhases *ph, const CoreAlloc *base, const SimProgress *progress, size_t held)
{
	memset(ph, 0, sizeof(*ph));
	ph->alloc.alloc = TrackAlloc;
	ph->alloc.free = TrackFree;
	ph->alloc.ctx = ph;
	ph->base = base;
	ph->live = ph->peak = held;
	ph->progress = progress;
	clock_gettime(CLOCK_MONOTONIC, &ph->start);
}

/* Report the phase that just ended and start the next one.  Main thread. */
static void
PhaseEnd(EasePhases *ph, const char *name)
{
	if (ph->progress != NULL && ph->progress->phase != NULL)
		ph->progress->phase(ph->progress->arg, name, SecondsSince(&ph->start), ph->peak);
	ph->peak = ph->live;
	clock_gettime(CLOCK_MONOTONIC, &ph->start);
}

/*
 * The selection from P (lower triangle in dense, n_sub x n_sub): each
 * covered item's top-k, on the workers, EASE_ROWS rows of P per task.
 * Releases the dense matrix as soon as the last task is done.
 */
static CoreStatus
EaseSelect(const CoreAlloc *a, InteractionMatrix *m, const SimParams *p, const int32 *sub,
		   int32 n_sub, double *dense, int nthreads, const CoreInterrupts *hooks,
		   NeighborLists *out, CoreError *err)
{
	int64		n_tasks = ((int64) n_sub + EASE_ROWS - 1) / EASE_ROWS;
	SimShared	sh;
	SimScratch *scratch;
	int32	   *dense_item = core_array(a, n_sub, sizeof(int32), false, err);
	double	   *pdiag = core_array(a, n_sub, sizeof(double), false, err);

	if (dense_item == NULL || pdiag == NULL)
		return err->status;
	for (int32 i = 0; i < m->n_items; i++)
		if (sub[i] >= 0)
			dense_item[sub[i]] = i;
	for (int32 c = 0; c < n_sub; c++)
		pdiag[c] = ease_p(dense, n_sub, c, c);

	memset(&sh, 0, sizeof(sh));
	sh.m = m;
	sh.p = p;
	sh.out = out;
	sh.dense = dense;
	sh.n_sub = n_sub;
	sh.sub = sub;
	sh.dense_item = dense_item;
	sh.pdiag = pdiag;
	if (ScratchAll(a, &sh, &nthreads, n_tasks, &scratch, err) != CORE_OK)
		return err->status;
	for (int t = 0; t < nthreads; t++)
		if ((scratch[t].prow = core_array(a, (size_t) EASE_ROWS * n_sub, sizeof(double), false, err)) == NULL)
			return err->status;
	RunWorkers(a, scratch, nthreads, n_tasks, ProcessEaseChunk, hooks);
	core_release(a, dense);
	core_release(a, dense_item);
	core_release(a, pdiag);
	return CORE_OK;
}

/*
 * EASE (Steck 2019): the items it covers (max_items), G + λI over them in
 * one dense matrix, its Cholesky factor, P = (G + λI)^-1 in place
 * (ease_core.c), then the selection.  Each phase is reported through
 * p->progress.  Weights are used as stored.
 */
static CoreStatus
ComputeEase(const CoreAlloc *base, InteractionMatrix *m, const SimParams *p, int nthreads,
			const CoreInterrupts *hooks, NeighborLists *out, size_t out_bytes, CoreError *err)
{
	EasePhases	ph;
	const CoreAlloc *a = &ph.alloc;
	int32	   *sub;
	int32		n_sub;
	size_t		bytes;
	double	   *dense;

	PhasesInit(&ph, base, p->progress, out_bytes);
	if (ease_select_items(a, m, p->max_items, &sub, &n_sub, err) != CORE_OK)
		return err->status;
	if (!ease_matrix_bytes(n_sub, &bytes))
	{
		core_error(err, CORE_LIMIT, "EASE over %d items needs a dense matrix too large to allocate", n_sub);
		return core_error_hint(err, "Restrict EASE to the most popular items with ease_max_items.");
	}
	dense = core_array(a, bytes, 1, false, err);
	if (dense == NULL)
		return err->status;
	if (ease_gram(m, sub, n_sub, p->ease_lambda, dense, nthreads, hooks, err) != CORE_OK)
		return err->status;
	PhaseEnd(&ph, "gram");
	if (ease_factor(a, dense, n_sub, nthreads, hooks, err) != CORE_OK)
		return err->status;
	PhaseEnd(&ph, "factor");
	if (ease_invert(a, dense, n_sub, nthreads, hooks, err) != CORE_OK)
		return err->status;
	PhaseEnd(&ph, "invert");
	if (EaseSelect(a, m, p, sub, n_sub, dense, nthreads, hooks, out, err) != CORE_OK)
		return err->status;
	core_release(a, sub);
	PhaseEnd(&ph, "select");
	return CORE_OK;
}

/* ---------- entry point ---------- */

/* The metric options the core itself relies on (the glue checks them first, with the same words). */
static CoreStatus
CheckOptions(const SimParams *p, CoreError *err)
{
	if (p->metric == SIM_EASE && !(p->ease_lambda > 0 && isfinite(p->ease_lambda)))
		return core_error(err, CORE_INVALID, "ease_lambda must be a finite number > 0, got %g",
						  p->ease_lambda);
	if (p->metric == SIM_RP3BETA && !(p->rp3_alpha > 0 && isfinite(p->rp3_alpha)))
		return core_error(err, CORE_INVALID, "rp3_alpha must be a finite number > 0, got %g",
						  p->rp3_alpha);
	if (p->metric == SIM_RP3BETA && !(p->rp3_beta >= 0 && isfinite(p->rp3_beta)))
		return core_error(err, CORE_INVALID, "rp3_beta must be a finite number >= 0, got %g",
						  p->rp3_beta);
	return CORE_OK;
}

CoreStatus
simcore_compute(const CoreAlloc *a, InteractionMatrix *m, const SimParams *p, int nthreads,
				const CoreInterrupts *hooks, NeighborLists **result, CoreError *err)
{
	NeighborLists *out;
	int32		k;
	int32		n = m->n_items;
	size_t		out_bytes;

	*result = NULL;
	if (CheckOptions(p, err) != CORE_OK)
		return err->status;
	out = core_array(a, 1, sizeof(NeighborLists), true, err);
	if (out == NULL)
		return err->status;
	k = KCap(m, p);
	out->n_items = n;
	out->k_cap = k;
	out->n_out = core_array(a, n, sizeof(int32), true, err);
	if (out->n_out == NULL)
		return err->status;
	if (k == 0)
	{
		*result = out;
		return CORE_OK;
	}
	out->nb = core_array(a, (size_t) n * k, sizeof(int32), false, err);
	out->sim = core_array(a, (size_t) n * k, sizeof(double), false, err);
	out->support = core_array(a, (size_t) n * k, sizeof(int32), false, err);
	if (out->nb == NULL || out->sim == NULL || out->support == NULL)
		return err->status;
	out_bytes = sizeof(NeighborLists) + (size_t) n * sizeof(int32) +
		(size_t) n * k * (2 * sizeof(int32) + sizeof(double));

	nthreads = Max(1, Min(nthreads, 64));
	if ((p->metric == SIM_EASE ?
		 ComputeEase(a, m, p, nthreads, hooks, out, out_bytes, err) :
		 ComputeSparse(a, m, p, nthreads, hooks, out, err)) != CORE_OK)
		return err->status;

	for (int32 i = 0; i < n; i++)
		out->pairs += out->n_out[i];
	*result = out;
	return CORE_OK;
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
		case SIM_EASE:
			return "ease";
		case SIM_RP3BETA:
			return "rp3beta";
	}
	return "unknown";
}

bool
sim_metric_parse(const char *name, SimMetric *out)
{
	static const SimMetric all[] = {SIM_COSINE, SIM_JACCARD, SIM_ADJUSTED_COSINE,
	SIM_PEARSON, SIM_CONDITIONAL, SIM_BM25, SIM_EASE, SIM_RP3BETA};

	for (int i = 0; i < lengthof(all); i++)
		if (strcmp(name, sim_metric_name(all[i])) == 0)
		{
			*out = all[i];
			return true;
		}
	return false;
}

/* ---------- pair sums of one shard, and lists from merged sums (pairsums_core.c) ---------- */

struct SimRows
{
	int32		n_items;
	AccSlot    *slots;
	SimFixed   *fx;				/* fixed: the sums */
	int32	   *touched;
};

SimRows *
simcore_rows_create(const CoreAlloc *a, int32 n_items, bool fixed, CoreError *err)
{
	SimRows    *r = core_array(a, 1, sizeof(SimRows), true, err);

	if (r == NULL)
		return NULL;
	r->n_items = n_items;
	r->slots = core_array(a, Max(n_items, 1), sizeof(AccSlot), true, err);
	r->touched = core_array(a, (size_t) n_items + 1, sizeof(int32), false, err);
	if (fixed)
		r->fx = core_array(a, Max(n_items, 1), sizeof(SimFixed), true, err);
	if (r->slots == NULL || r->touched == NULL || (fixed && r->fx == NULL))
		return NULL;
	return r;
}

void
simcore_rows_free(const CoreAlloc *a, SimRows *r)
{
	if (r == NULL)
		return;
	core_release(a, r->slots);
	core_release(a, r->fx);
	core_release(a, r->touched);
	core_release(a, r);
}

int32
simcore_rows_accumulate(SimRows *r, const InteractionMatrix *m, int32 i, bool weighted,
						const int32 **touched)
{
	*touched = r->touched;
	return AccumulateRow(m, i, weighted, r->slots, r->fx, r->touched);
}

void
simcore_rows_take_fixed(SimRows *r, int32 j, SimFixed *acc, int32 *cnt)
{
	*acc = r->fx[j];
	*cnt = r->slots[j].cnt;
	r->fx[j] = 0;
	r->slots[j].cnt = 0;
}

void
simcore_rows_take(SimRows *r, int32 j, double *acc, int32 *cnt)
{
	*acc = r->slots[j].acc;
	*cnt = r->slots[j].cnt;
	r->slots[j].acc = 0.0;
	r->slots[j].cnt = 0;
}

struct SimScorer
{
	SimShared	sh;
	SimScratch	scratch;
	int32		nt;
	SimParams	p;
	double	   *invnorm;
};

CoreStatus
simcore_scorer_create(const CoreAlloc *a, int32 n_items, const SimParams *p, const int32 *deg,
					  const double *sumsq, SimScorer **scorer, NeighborLists **lists, CoreError *err)
{
	SimScorer  *s;
	NeighborLists *out;
	int32		k;

	*scorer = NULL;
	*lists = NULL;
	if (CheckOptions(p, err) != CORE_OK)
		return err->status;
	if (p->metric == SIM_EASE || p->metric == SIM_RP3BETA || (SIM_IS_COSINE(p->metric) && sumsq == NULL))
		return core_error(err, CORE_INVALID, "metric %s cannot be scored from merged pair sums",
						  sim_metric_name(p->metric));
	s = core_array(a, 1, sizeof(SimScorer), true, err);
	out = core_array(a, 1, sizeof(NeighborLists), true, err);
	if (s == NULL || out == NULL)
		return err->status;
	k = n_items <= 1 ? 0 : Min(p->k, n_items - 1);
	out->n_items = n_items;
	out->k_cap = k;
	out->n_out = core_array(a, Max(n_items, 1), sizeof(int32), true, err);
	if (out->n_out == NULL)
		return err->status;
	if (k > 0)
	{
		out->nb = core_array(a, (size_t) n_items * k, sizeof(int32), false, err);
		out->sim = core_array(a, (size_t) n_items * k, sizeof(double), false, err);
		out->support = core_array(a, (size_t) n_items * k, sizeof(int32), false, err);
		if (out->nb == NULL || out->sim == NULL || out->support == NULL)
			return err->status;
	}
	s->p = *p;
	s->p.progress = NULL;
	if (sumsq)
	{
		s->invnorm = core_array(a, Max(n_items, 1), sizeof(double), false, err);
		if (s->invnorm == NULL)
			return err->status;
		for (int32 i = 0; i < n_items; i++)
			s->invnorm[i] = sumsq[i] > 0 ? 1.0 / sqrt(sumsq[i]) : 0.0;
	}
	s->sh.p = &s->p;
	s->sh.out = out;
	s->sh.deg = deg;
	s->sh.sumsq = SIM_IS_COSINE(p->metric) ? sumsq : NULL;
	s->sh.invnorm = SIM_IS_COSINE(p->metric) ? s->invnorm : NULL;
	if (!ScratchInit(a, &s->scratch, &s->sh, Max(n_items, 1), Max(k, 1), err))
		return err->status;
	*scorer = s;
	*lists = out;
	return CORE_OK;
}

void
simcore_scorer_bm25(SimScorer *s, const double *idf, const int32 *shift)
{
	s->sh.bm25_idf = idf;
	s->sh.bm25_shift = shift;
}

void
simcore_scorer_put(SimScorer *s, int32 j, double acc, int32 cnt)
{
	AccSlot    *sl = &s->scratch.slots[j];

	if (sl->cnt == 0)
		s->scratch.touched[s->nt++] = j;
	sl->acc = acc;
	sl->cnt = cnt;
}

void
simcore_scorer_item(SimScorer *s, int32 i)
{
	if (s->sh.out->k_cap == 0)
	{
		for (int32 t = 0; t < s->nt; t++)
			s->scratch.slots[s->scratch.touched[t]] = (AccSlot) {0};
	}
	else
		ScoreRow(&s->scratch, i, s->nt);
	s->nt = 0;
}

void
simcore_scorer_finish(const CoreAlloc *a, SimScorer *s)
{
	NeighborLists *out = s->sh.out;

	out->pairs = 0;
	for (int32 i = 0; i < out->n_items; i++)
		out->pairs += out->n_out[i];
	ScratchFree(a, &s->scratch);
	core_release(a, s->invnorm);
	core_release(a, s);
}
