/*
 * pairsums_core.c
 *	  Per-shard partial pair sums and their exact merge (see pairsums_core.h).
 *
 * Encoding runs on a worker over its shard's matrix: each item's row of
 * pair sums comes from simcore's row kernel (the same loop one server runs),
 * its entries written in item order (the touched items are sorted, or read
 * off the dense slots in order when most items are touched).  Merging runs
 * on the coordinator without ever holding the merged pairs: the states are
 * read side by side, one item at a time (every state lists its items in id
 * order, so each one's next row is the lowest item it has left), the
 * item's entries are added as integers into dense per-item slots, turned
 * into the doubles one server would hold (integer times a power of two:
 * exact), and handed to simcore's selection; then the touched slots are
 * reset.  So the coordinator holds the states, the lists and a few arrays
 * per item.
 */
#include "core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "port/pg_crc32c.h"

#include "compare.h"
#include "pairsums_core.h"

#define UNITS_LIMIT		(INT64CONST(1) << 53)

typedef unsigned __int128 U128 __attribute__((aligned(8)));

/* ---------- bytes ---------- */

typedef struct Writer
{
	const CoreAlloc *a;
	char	   *buf;
	size_t		len;
	size_t		cap;
	size_t		max;
	CoreError  *err;
	bool		failed;
} Writer;

static bool
Reserve(Writer *w, size_t n)
{
	char	   *nb;
	size_t		cap;

	if (w->failed)
		return false;
	if (w->len + n <= w->cap)
		return true;
	if (w->len + n > w->max)
	{
		core_error(w->err, CORE_LIMIT, "partial pair sums of one shard exceed %zu bytes", w->max);
		core_error_detail(w->err, "A shard's rows of pair sums grow with the square of its users' history lengths.");
		core_error_hint(w->err, "Distribute the source over more shards, or raise maintenance_work_mem.");
		w->failed = true;
		return false;
	}
	cap = Max(w->cap * 2, (size_t) 65536);
	while (cap < w->len + n)
		cap *= 2;
	cap = Min(cap, w->max);
	nb = core_array(w->a, cap, 1, false, w->err);
	if (nb == NULL)
	{
		w->failed = true;
		return false;
	}
	if (w->len > 0)
		memcpy(nb, w->buf, w->len);
	core_release(w->a, w->buf);
	w->buf = nb;
	w->cap = cap;
	return true;
}

static void
PutU64(Writer *w, uint64 v, int bytes)
{
	if (!Reserve(w, bytes))
		return;
	for (int b = 0; b < bytes; b++)
		w->buf[w->len++] = (char) ((v >> (8 * b)) & 0xFF);
}

static void
PutF64(Writer *w, double d)
{
	uint64		v;

	memcpy(&v, &d, sizeof(v));
	PutU64(w, v, 8);
}

static inline void
PutVar(Writer *w, uint64 v)
{
	if (!Reserve(w, 10))
		return;
	while (v >= 0x80)
	{
		w->buf[w->len++] = (char) ((v & 0x7F) | 0x80);
		v >>= 7;
	}
	w->buf[w->len++] = (char) v;
}

/* the caller reserved room (Reserve) for the varint: at most 10 bytes */
static inline void
PutVarRoom(Writer *w, uint64 v)
{
	while (v >= 0x80)
	{
		w->buf[w->len++] = (char) ((v & 0x7F) | 0x80);
		v >>= 7;
	}
	w->buf[w->len++] = (char) v;
}

static inline uint64
ZigZag(int64 v)
{
	return ((uint64) v << 1) ^ (uint64) (v >> 63);
}

/* the caller reserved room for the varint: at most 19 bytes */
static inline void
PutVar128Room(Writer *w, U128 v)
{
	while (v >= 0x80)
	{
		w->buf[w->len++] = (char) ((v & 0x7F) | 0x80);
		v >>= 7;
	}
	w->buf[w->len++] = (char) v;
}

static void
PutVar128(Writer *w, U128 v)
{
	if (Reserve(w, 19))
		PutVar128Room(w, v);
}

static inline U128
ZigZag128(SimFixed v)
{
	return ((U128) v << 1) ^ (U128) (v >> 127);
}

typedef struct Reader
{
	const unsigned char *p;
	const unsigned char *end;
	bool		bad;
} Reader;

static uint64
GetU64(Reader *r, int bytes)
{
	uint64		v = 0;

	if (r->bad || r->end - r->p < bytes)
	{
		r->bad = true;
		return 0;
	}
	for (int b = 0; b < bytes; b++)
		v |= (uint64) r->p[b] << (8 * b);
	r->p += bytes;
	return v;
}

static double
GetF64(Reader *r)
{
	uint64		v = GetU64(r, 8);
	double		d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

static inline uint64
GetVar(Reader *r)
{
	uint64		v = 0;

	for (int shift = 0; shift < 64; shift += 7)
	{
		unsigned char c;

		if (r->p >= r->end)
			break;
		c = *r->p++;
		if (shift == 63 && c > 1)
			break;
		v |= (uint64) (c & 0x7F) << shift;
		if ((c & 0x80) == 0)
			return v;
	}
	r->bad = true;
	return 0;
}

static inline int64
UnZigZag(uint64 v)
{
	return (int64) (v >> 1) ^ -(int64) (v & 1);
}

static inline U128
GetVar128(Reader *r)
{
	U128		v = 0;

	for (int shift = 0; shift < 128; shift += 7)
	{
		unsigned char c;

		if (r->p >= r->end)
			break;
		c = *r->p++;
		if (shift == 126 && c > 3)
			break;
		v |= (U128) (c & 0x7F) << shift;
		if ((c & 0x80) == 0)
			return v;
	}
	r->bad = true;
	return 0;
}

static inline SimFixed
UnZigZag128(U128 v)
{
	return (SimFixed) (v >> 1) ^ -(SimFixed) (v & 1);
}

/* an exact sum, normalised: its limbs as v, the last (signed) as z */
static void
PutExact(Writer *w, const SimExactSum *x)
{
	SimExactSum n = *x;

	sim_exact_normalize(&n);
	for (int l = 0; l < SIM_EXACT_LIMBS - 1; l++)
		PutVar(w, (uint64) n.limb[l]);
	PutVar(w, ZigZag(n.limb[SIM_EXACT_LIMBS - 1]));
}

/* false when a limb is out of range (bytes not written by PutExact) */
static bool
GetExact(Reader *r, SimExactSum *x)
{
	sim_exact_init(x);
	for (int l = 0; l < SIM_EXACT_LIMBS - 1; l++)
	{
		uint64		v = GetVar(r);

		if (v > 0xFFFFFFFFU)
			return false;
		x->limb[l] = (int64) v;
	}
	x->limb[SIM_EXACT_LIMBS - 1] = UnZigZag(GetVar(r));
	/* beyond 2^1100 every double is infinite; a bound that keeps merges of many states from overflowing */
	return !r->bad && x->limb[SIM_EXACT_LIMBS - 1] < ((int64) 1 << 31) &&
		x->limb[SIM_EXACT_LIMBS - 1] > -((int64) 1 << 31);
}

/* an exact sum as "X" (see pairsums_core.h): sign and magnitude, its nonzero limbs only */
static void
PutExactCompact(Writer *w, const SimExactSum *x)
{
	SimExactSum n = *x;
	bool		neg;
	int			lo,
				hi;

	neg = sim_exact_magnitude(&n);
	for (hi = SIM_EXACT_LIMBS - 1; hi >= 0 && n.limb[hi] == 0; hi--)
		;
	if (hi < 0)
	{
		PutVar(w, 0);
		return;
	}
	for (lo = 0; n.limb[lo] == 0; lo++)
		;
	PutVar(w, ((uint64) (hi - lo + 1) << 1) | (neg ? 1 : 0));
	PutVar(w, (uint64) lo);
	for (int l = lo; l <= hi; l++)
		PutVar(w, (uint64) n.limb[l]);
}

/* false unless the bytes are PutExactCompact's (canonical, below 2^1101 in magnitude) */
static bool
GetExactCompact(Reader *r, SimExactSum *x)
{
	uint64		head = GetVar(r);
	uint64		limbs = head >> 1;
	uint64		lo;

	sim_exact_init(x);
	if (head == 0)
		return !r->bad;
	if (limbs == 0 || limbs > SIM_EXACT_LIMBS)
		return false;
	lo = GetVar(r);
	if (lo > SIM_EXACT_LIMBS - limbs)
		return false;
	for (uint64 l = lo; l < lo + limbs; l++)
	{
		uint64		v = GetVar(r);

		if (v > 0xFFFFFFFFU || (l == SIM_EXACT_LIMBS - 1 && v >= ((uint64) 1 << 31)))
			return false;
		x->limb[l] = (int64) ((head & 1) ? -(int64) v : (int64) v);
	}
	return !r->bad && x->limb[lo] != 0 && x->limb[lo + limbs - 1] != 0;
}

/*
 * v times 2^s into *out, exactly: false when a set bit would be shifted out
 * or the result would reach 2^127 in magnitude.
 */
static bool
ShiftExact(SimFixed v, int s, SimFixed *out)
{
	if (v == 0)
	{
		*out = 0;
		return true;
	}
	if (s >= 0)
	{
		SimFixed	lim;

		if (s >= 127)
			return false;
		lim = (SimFixed) (((U128) 1 << (127 - s)) - 1);	/* |v| <= lim: |v·2^s| < 2^127 */
		if (v > lim || v < -lim)
			return false;
		*out = (SimFixed) ((U128) v << s);
		return true;
	}
	if (s <= -127 || (v & (((SimFixed) 1 << -s) - 1)) != 0)
		return false;
	*out = v >> -s;				/* a multiple of 2^-s: the shift divides exactly */
	return true;
}

/* ---------- encoding (a worker) ---------- */

/* Whether the shard's own sums are exact integers of units below 2^53 (see the header). */
static bool
ShardExact(const InteractionMatrix *m, const PairSumsShard *sh, const double *diag)
{
	if (!sh->weighted)
		return true;
	if (!sim_grid_usable(sh->q, sh->max_abs_raw))
		return false;
	/* duplicate sums: every partial sum of raw weights below 2^53 units of 2^q */
	if (!((double) sh->raw_rows * sh->max_abs_raw < ldexp(1.0, 52 + sh->q)))
		return false;
	for (int32 i = 0; i < m->n_items; i++)
		if (!sim_norm_on_grid(diag[i], sh->q))
			return false;
	return true;
}

/*
 * a[0..n) (distinct indexes below limit) ascending: insertion sort when
 * short, else an LSD radix sort by bytes through tmp (as long as a).
 */
static void
SortIndexes(int32 *a, int32 *tmp, int32 n, int32 limit)
{
	int32	   *src = a,
			   *dst = tmp;
	int			passes = limit <= (1 << 8) ? 1 : limit <= (1 << 16) ? 2 : limit <= (1 << 24) ? 3 : 4;

	if (n < 48)
	{
		for (int32 i = 1; i < n; i++)
		{
			int32		v = a[i],
						j = i - 1;

			while (j >= 0 && a[j] > v)
			{
				a[j + 1] = a[j];
				j--;
			}
			a[j + 1] = v;
		}
		return;
	}
	for (int pass = 0; pass < passes; pass++)
	{
		int32		count[257];
		int			shift = 8 * pass;
		int32	   *t;

		memset(count, 0, sizeof(count));
		for (int32 i = 0; i < n; i++)
			count[((uint32) src[i] >> shift & 0xFF) + 1]++;
		for (int b = 0; b < 256; b++)
			count[b + 1] += count[b];
		for (int32 i = 0; i < n; i++)
			dst[count[(uint32) src[i] >> shift & 0xFF]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, sizeof(int32) * n);
}

/* the header (see pairsums_core.h), entries 0 until patched: returns where the entries are */
static size_t
PutHeader(Writer *w, uint16 flags, const PairSumsShard *sh, const InteractionMatrix *m, int32 n_items, int32 q)
{
	size_t		entries_at;

	PutU64(w, PAIRSUMS_MAGIC, 4);
	PutU64(w, PAIRSUMS_VERSION, 1);
	PutU64(w, flags, 2);
	PutU64(w, sh->port, 2);
	PutU64(w, (uint64) sh->raw_rows, 8);
	PutU64(w, (uint64) (int64) m->n_users, 8);
	PutU64(w, (uint64) m->nnz, 8);
	PutU64(w, (uint64) (uint32) n_items, 4);
	PutU64(w, (uint64) (uint32) q, 4);
	PutF64(w, sh->max_abs_raw);
	PutF64(w, 0.0);				/* seconds: set by pairsums_set_seconds */
	entries_at = w->len;
	PutU64(w, 0, 8);
	return entries_at;
}

/* an id of an ascending list: the first as i64, then v of the difference from the previous */
static void
PutId(Writer *w, bool first, int64 id, int64 prev)
{
	if (first)
		PutU64(w, (uint64) id, 8);
	else
		PutVar(w, (uint64) id - (uint64) prev);
}

static void
PutItemId(Writer *w, const InteractionMatrix *m, int32 i)
{
	PutId(w, i == 0, m->item_ids[i], i == 0 ? 0 : m->item_ids[i - 1]);
}

/* Pearson's first-pass figures of item i over weights wt: f64 min, f64 max, X Σ w */
static void
PutItemFigures(Writer *w, const InteractionMatrix *m, const double *wt, int32 i)
{
	SimExactSum sum;
	double		mn,
				mx;

	simcore_item_figures(m, wt, i, &sum, &mn, &mx);
	PutF64(w, mn);
	PutF64(w, mx);
	PutExactCompact(w, &sum);
}

/*
 * Each of m's items' means from sh's (ids ascending in both).  An item the
 * means lack (a row of a new item committed between the passes) is centred
 * on its mean over this shard's rows: the merge recomputes every item's mean
 * from the states' figures and accepts the sums only when each was centred
 * on its mean over all of them, which this one is when the shard holds all
 * of the item's users.
 */
static void
ShardMeans(const InteractionMatrix *m, const PairSumsShard *sh, const CoreInterrupts *hooks, double *mean)
{
	int32		j = 0;
	int64		next = 0;

	for (int32 i = 0; i < m->n_items; i++)
	{
		while (j < sh->n_means && sh->mean_ids[j] < m->item_ids[i])
			j++;
		if (j < sh->n_means && sh->mean_ids[j] == m->item_ids[i])
			mean[i] = sh->means[j];
		else
			mean[i] = simcore_item_mean(m, i);
		sim_poll_items(hooks, i, m->i_ptr[i + 1], &next);
	}
}

/* the CRC's place, then the state into *out (its seconds and CRC set), or the error */
static CoreStatus
FinishState(Writer *w, const PairSumsShard *sh, char **out, size_t *len)
{
	PutU64(w, 0, 4);
	if (w->failed)
	{
		core_release(w->a, w->buf);
		return w->err->status;
	}
	*out = w->buf;
	*len = w->len;
	pairsums_set_seconds(w->buf, w->len, sh->seconds);
	return CORE_OK;
}

CoreStatus
pairsums_encode(const CoreAlloc *a, InteractionMatrix *m, const PairSumsShard *sh,
				size_t max_bytes, const CoreInterrupts *hooks, char **out, size_t *len,
				CoreError *err)
{
	Writer		w;
	double	   *diag = NULL,
			   *maxabs = NULL,
			   *minabs = NULL;
	SimFixed   *dfx = NULL;
	int32	   *order = NULL;
	int32	   *sortbuf = NULL;
	unsigned char *mark = NULL;
	SimRows    *rows = NULL;
	bool		exact;
	bool		fixed;
	bool		unit;
	bool		sums;			/* the state carries sums (weighted, not unit) */
	int32		n = m->n_items;
	int64		entries = 0;
	size_t		entries_at = 0;
	PairSumsShard centred;
	SimExactSum lengths;
	int64		next_poll = 0;
	double	   *raw = NULL;		/* pearson: the weights as given, for the first-pass figures */
	double	   *imean = NULL;	/* pearson: each item's mean */

	*out = NULL;
	*len = 0;
	memset(&w, 0, sizeof(w));
	w.a = a;
	w.max = max_bytes;
	w.err = err;

	/* of the weights as given; a length beyond double precision is one server's CORE_RANGE too */
	if ((sh->lengths || sh->bm25) && simcore_user_lengths(m, &lengths, err) != CORE_OK)
		return err->status;
	if (sh->lengths)
	{
		/* BM25's first pass: the header (no items) and the lengths */
		(void) PutHeader(&w, PAIRSUMS_LENGTHS | PAIRSUMS_EXACT, sh, m, 0, 0);
		PutExact(&w, &lengths);
		return FinishState(&w, sh, out, len);
	}
	if (sh->item_sums)
	{
		/* Pearson's first pass: the items' figures, no rows */
		int64		next = 0;

		(void) PutHeader(&w, PAIRSUMS_ITEMSUMS | PAIRSUMS_EXACT, sh, m, n, 0);
		for (int32 i = 0; i < n && !w.failed; i++)
		{
			PutItemId(&w, m, i);
			PutVar(&w, (uint64) (m->i_ptr[i + 1] - m->i_ptr[i]));
			PutItemFigures(&w, m, m->i_w, i);
			sim_poll_items(hooks, i, m->i_ptr[i + 1], &next);
		}
		return FinishState(&w, sh, out, len);
	}
	if (sh->weighted && sh->pearson)
	{
		raw = core_array(a, Max(m->nnz, 1), sizeof(double), false, err);
		imean = core_array(a, Max(n, 1), sizeof(double), false, err);
		if (raw == NULL || imean == NULL)
			goto early;
		memcpy(raw, m->i_w, sizeof(double) * m->nnz);
		ShardMeans(m, sh, hooks, imean);
		if (simcore_center_items(m, hooks, imean, err) != CORE_OK)
			goto early;
	}
	if (sh->weighted && (sh->centred || sh->bm25 || sh->pearson))
	{
		/*
		 * adjusted cosine, pearson, bm25: the grid, the largest |w| and
		 * every sum below are the centred weights' or the terms'
		 */
		int32		q;
		double		mx;

		if (sh->centred && simcore_center_users(a, hooks, m, err) != CORE_OK)
			goto early;
		if (sh->bm25 &&
			simcore_bm25_terms(a, hooks, m, sh->bm25_k1, sh->bm25_b, sh->mean_length, err) != CORE_OK)
			goto early;
		sim_weights_grid(m, &q, &mx);
		centred = *sh;
		centred.q = q == INT32_MAX ? 0 : q;
		centred.max_abs_raw = mx;
		sh = &centred;
	}

	if (sh->weighted)
	{
		diag = core_array(a, Max(n, 1), sizeof(double), false, err);
		maxabs = core_array(a, Max(n, 1), sizeof(double), false, err);
		minabs = core_array(a, Max(n, 1), sizeof(double), false, err);
		if (diag == NULL || maxabs == NULL || minabs == NULL)
		{
			w.failed = true;
			goto done;
		}
		for (int32 i = 0; i < n; i++)
		{
			double		s = 0,
						mx = 0,
						mn = INFINITY;

			/* users ascending, as the row kernel adds w(u,i)·w(u,i) */
			for (int64 p = m->i_ptr[i]; p < m->i_ptr[i + 1]; p++)
			{
				double		aw = fabs(m->i_w[p]);

				s += m->i_w[p] * m->i_w[p];
				mx = Max(mx, aw);
				if (aw > 0)
					mn = Min(mn, aw);
			}
			diag[i] = s;
			maxabs[i] = mx;
			minabs[i] = isinf(mn) ? 0 : mn;
		}
	}
	exact = ShardExact(m, sh, diag);
	/* off its grid: fixed-point sums at this shard's scaling (the coordinator rescales them) */
	fixed = sh->weighted && !exact;
	/* every weight 1 (on the grid 2^0): the sums are the counts, the norms the degrees */
	unit = sh->weighted && exact && sh->q == 0;
	for (int64 p = 0; unit && p < m->nnz; p++)
		unit = m->i_w[p] == 1.0;
	sums = sh->weighted && !unit;

	entries_at = PutHeader(&w, (sh->weighted ? PAIRSUMS_WEIGHTED : 0) | (exact ? PAIRSUMS_EXACT : 0) |
						   (unit ? PAIRSUMS_UNIT : 0) | (fixed ? PAIRSUMS_FIXED : 0) |
						   (sh->weighted && sh->centred ? PAIRSUMS_CENTRED : 0) |
						   (sh->weighted && sh->bm25 ? PAIRSUMS_BM25 : 0) |
						   (sh->weighted && sh->pearson ? PAIRSUMS_PEARSON : 0),
						   sh, m, n, sh->weighted && exact ? sh->q : 0);	/* entries patched in at the end */
	if (sh->weighted && sh->bm25)
	{
		PutF64(&w, sh->bm25_k1);
		PutF64(&w, sh->bm25_b);
		PutF64(&w, sh->mean_length);
		PutExact(&w, &lengths);
	}
	if (w.failed)
		goto done;

	if (fixed)
	{
		/* cosine's scaling, as one server applies it but from this shard's maxima */
		dfx = core_array(a, Max(n, 1), sizeof(SimFixed), false, err);
		if (dfx == NULL || simcore_cosine_scale(a, hooks, m, NULL, err) != CORE_OK)
		{
			w.failed = true;
			goto done;
		}
		for (int32 i = 0; i < n; i++)
		{
			SimFixed	v = 0;

			for (int64 p = m->i_ptr[i]; p < m->i_ptr[i + 1]; p++)
				v += sim_fixed_of(m->i_w[p] * m->i_w[p]);
			dfx[i] = v;
		}
	}
	for (int32 i = 0; i < n; i++)
	{
		PutItemId(&w, m, i);
		PutVar(&w, (uint64) (m->i_ptr[i + 1] - m->i_ptr[i]));
		if (sums)
		{
			PutF64(&w, maxabs[i]);
			PutF64(&w, minabs[i]);
			if (fixed)
				PutVar128(&w, (U128) dfx[i]);
			else
				PutVar(&w, (uint64) ldexp(diag[i], -2 * sh->q));
		}
		if (sh->pearson)
		{
			PutItemFigures(&w, m, raw, i);
			PutF64(&w, imean[i]);
			sim_poll_items(hooks, i, m->i_ptr[i + 1], &next_poll);
		}
	}

	rows = simcore_rows_create(a, n, fixed, err);
	order = core_array(a, (size_t) n + 1, sizeof(int32), false, err);
	sortbuf = core_array(a, (size_t) n + 1, sizeof(int32), false, err);
	mark = core_array(a, Max(n, 1), 1, true, err);
	if (rows == NULL || order == NULL || sortbuf == NULL || mark == NULL)
	{
		w.failed = true;
		goto done;
	}
	for (int32 i = 0; i < n && !w.failed; i++)
	{
		const int32 *touched;
		int32		nt = simcore_rows_accumulate(rows, m, i, sh->weighted, &touched);
		int32		prev = -1;

		/* the entries in item order: sort the touched, or walk a mask when most are */
		if ((int64) nt * 16 < n)
		{
			memcpy(order, touched, sizeof(int32) * nt);
			SortIndexes(order, sortbuf, nt, n);
		}
		else
		{
			int32		t = 0;

			for (int32 j = 0; j < nt; j++)
				mark[touched[j]] = 1;
			for (int32 j = 0; j < n; j++)
				if (mark[j])
				{
					order[t++] = j;
					mark[j] = 0;
				}
		}
		/* room for the row: its length and three varints per entry (a 128-bit one when fixed) */
		if (!Reserve(&w, 10 + (size_t) nt * (fixed ? 40 : 30)))
			break;
		PutVarRoom(&w, (uint64) (nt - 1));	/* the item itself is always touched */
		for (int32 t = 0; t < nt; t++)
		{
			int32		j = order[t];
			double		acc = 0;
			SimFixed	fx = 0;
			int32		cnt;

			if (fixed)
				simcore_rows_take_fixed(rows, j, &fx, &cnt);
			else
				simcore_rows_take(rows, j, &acc, &cnt);
			if (j == i)
				continue;
			PutVarRoom(&w, (uint64) (j - prev - 1));
			PutVarRoom(&w, (uint64) cnt);
			if (fixed)
				PutVar128Room(&w, ZigZag128(fx));
			else if (sums)
				PutVarRoom(&w, ZigZag((int64) ldexp(acc, -2 * sh->q)));
			prev = j;
			entries++;
		}
		if ((i & 63) == 0)
			core_check_interrupts(hooks);
	}

done:
	simcore_rows_free(a, rows);
	core_release(a, order);
	core_release(a, sortbuf);
	core_release(a, mark);
	core_release(a, diag);
	core_release(a, maxabs);
	core_release(a, minabs);
	core_release(a, dfx);
	core_release(a, raw);
	core_release(a, imean);
	if (w.failed)
	{
		core_release(a, w.buf);
		return err->status;
	}
	for (int b = 0; b < 8; b++)
		w.buf[entries_at + b] = (char) (((uint64) entries >> (8 * b)) & 0xFF);
	return FinishState(&w, sh, out, len);

early:
	core_release(a, raw);
	core_release(a, imean);
	return err->status;
}

static uint32
StateCrc(const char *state, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, state, len);
	FIN_CRC32C(crc);
	return (uint32) crc;
}

void
pairsums_set_seconds(char *state, size_t len, double seconds)
{
	uint64		v;
	uint32		crc;

	memcpy(&v, &seconds, sizeof(v));
	for (int b = 0; b < 8; b++)
		state[PAIRSUMS_SECONDS_AT + b] = (char) ((v >> (8 * b)) & 0xFF);
	crc = StateCrc(state, len - 4);
	for (int b = 0; b < 4; b++)
		state[len - 4 + b] = (char) ((crc >> (8 * b)) & 0xFF);
}

/* ---------- merging (the coordinator) ---------- */

static CoreStatus
Corrupt(CoreError *err, int s, const char *what)
{
	core_error(err, CORE_CORRUPT, "invalid partial pair sums");
	return core_error_detail(err, "State %d: %s.", s + 1, what);
}

static CoreStatus
HeaderAt(const char *data, size_t len, PairSumsHeader *h, int s, CoreError *err)
{
	Reader		r = {(const unsigned char *) data, (const unsigned char *) data + len, false};

	memset(h, 0, sizeof(*h));
	if (len < PAIRSUMS_HEADER + 4 || GetU64(&r, 4) != PAIRSUMS_MAGIC)
		return Corrupt(err, s, "not a media_reco pair-sums state");
	{
		Reader		t = {(const unsigned char *) data + len - 4, (const unsigned char *) data + len, false};

		if (GetU64(&t, 4) != StateCrc(data, len - 4))
			return Corrupt(err, s, "checksum mismatch (the bytes were changed after they were written)");
	}
	if (GetU64(&r, 1) != PAIRSUMS_VERSION)
		return Corrupt(err, s, "unknown version");
	h->flags = (uint16) GetU64(&r, 2);
	h->port = (uint16) GetU64(&r, 2);
	h->raw_rows = (int64) GetU64(&r, 8);
	h->users = (int64) GetU64(&r, 8);
	h->nnz = (int64) GetU64(&r, 8);
	h->n_items = (int32) (uint32) GetU64(&r, 4);
	h->q = (int32) (uint32) GetU64(&r, 4);
	h->max_abs_raw = GetF64(&r);
	h->seconds = GetF64(&r);
	h->entries = (int64) GetU64(&r, 8);
	if ((h->flags & ~(PAIRSUMS_WEIGHTED | PAIRSUMS_EXACT | PAIRSUMS_UNIT | PAIRSUMS_FIXED |
					  PAIRSUMS_CENTRED | PAIRSUMS_LENGTHS | PAIRSUMS_BM25 | PAIRSUMS_ITEMSUMS |
					  PAIRSUMS_PEARSON)) != 0)
		return Corrupt(err, s, "unknown flags");
	if ((h->flags & PAIRSUMS_PEARSON) &&
		(!(h->flags & PAIRSUMS_WEIGHTED) || (h->flags & (PAIRSUMS_CENTRED | PAIRSUMS_BM25))))
		return Corrupt(err, s, "centred items on an unweighted, user-centred or BM25 state");
	if ((h->flags & PAIRSUMS_ITEMSUMS) &&
		(h->flags != (PAIRSUMS_ITEMSUMS | PAIRSUMS_EXACT) || h->entries != 0))
		return Corrupt(err, s, "an item-sums state with rows or other flags");
	if ((h->flags & PAIRSUMS_CENTRED) && !(h->flags & PAIRSUMS_WEIGHTED))
		return Corrupt(err, s, "centred weights on an unweighted state");
	if ((h->flags & PAIRSUMS_BM25) && (!(h->flags & PAIRSUMS_WEIGHTED) || (h->flags & PAIRSUMS_CENTRED)))
		return Corrupt(err, s, "BM25 terms on an unweighted or centred state");
	if ((h->flags & PAIRSUMS_LENGTHS) &&
		(h->flags != (PAIRSUMS_LENGTHS | PAIRSUMS_EXACT) || h->n_items != 0 || h->entries != 0))
		return Corrupt(err, s, "a lengths state with items or other flags");
	if ((h->flags & PAIRSUMS_UNIT) &&
		(!(h->flags & PAIRSUMS_WEIGHTED) || !(h->flags & PAIRSUMS_EXACT) || h->q != 0))
		return Corrupt(err, s, "unit weights on an unweighted, inexact or scaled state");
	/* a state has its sums in units (exact) or in fixed point, never both or neither */
	if (((h->flags & PAIRSUMS_EXACT) != 0) == ((h->flags & PAIRSUMS_FIXED) != 0) ||
		((h->flags & PAIRSUMS_FIXED) && (!(h->flags & PAIRSUMS_WEIGHTED) || h->q != 0)))
		return Corrupt(err, s, "neither units nor fixed point, or fixed point without weights");
	if (h->raw_rows < 0 || h->users < 0 || h->nnz < 0 || h->nnz > h->raw_rows ||
		h->users > h->nnz || h->n_items < 0 || h->n_items > h->nnz || h->entries < 0 ||
		h->q < -1100 || h->q > 1100 || !(h->max_abs_raw >= 0) || isinf(h->max_abs_raw) ||
		!(h->seconds >= 0) || isinf(h->seconds))
		return Corrupt(err, s, "counts out of range");
	/* each item takes at least 2 bytes, each entry 2 */
	if ((uint64) h->n_items > len || (uint64) h->entries > len / 2)
		return Corrupt(err, s, "more items or entries than bytes");
	h->body = PAIRSUMS_HEADER;
	if (h->flags & (PAIRSUMS_LENGTHS | PAIRSUMS_BM25))
	{
		Reader		x = {(const unsigned char *) data + PAIRSUMS_HEADER, (const unsigned char *) data + len - 4, false};

		if (h->flags & PAIRSUMS_BM25)
		{
			h->bm25_k1 = GetF64(&x);
			h->bm25_b = GetF64(&x);
			h->mean_length = GetF64(&x);
			if (!(h->bm25_k1 >= 0) || isinf(h->bm25_k1) || !(h->bm25_b >= 0 && h->bm25_b <= 1) ||
				!isfinite(h->mean_length))
				return Corrupt(err, s, "BM25 options out of range");
		}
		if (!GetExact(&x, &h->lengths) || x.bad)
			return Corrupt(err, s, "users' lengths out of range");
		h->body = (size_t) ((const char *) x.p - data);
		if ((h->flags & PAIRSUMS_LENGTHS) && h->body != len - 4)
			return Corrupt(err, s, "bytes after the users' lengths");
	}
	return CORE_OK;
}

CoreStatus
pairsums_header(const char *data, size_t len, PairSumsHeader *h, CoreError *err)
{
	return HeaderAt(data, len, h, 0, err);
}

/* prev + d for ascending ids (d > 0), false when it passes INT64_MAX */
static bool
NextId(int64 prev, uint64 d, int64 *id)
{
	uint64		up = (uint64) prev ^ (UINT64CONST(1) << 63);	/* order-preserving */

	if (d == 0 || d > PG_UINT64_MAX - up)
		return false;
	*id = (int64) ((up + d) ^ (UINT64CONST(1) << 63));
	return true;
}

/* one item of a state's list, as ReadItem reads it */
typedef struct ItemEntry
{
	int64		id;
	int64		users;
	double		maxabs;			/* weighted: largest and smallest nonzero |w| (unit: 1) */
	double		minabs;
	SimFixed	dfx;			/* fixed: Σ w² in units of 2^-96 at the state's scaling */
	int64		dg;				/* units: Σ w² in units of 2^2q (unit: the users) */
	double		minw;			/* item sums and pearson: the weights as given */
	double		maxw;
	SimExactSum sum;
	double		mean;			/* pearson: the mean it was centred on */
} ItemEntry;

/*
 * Item i of a state's list (prev: item i - 1's id) into *e, checked: NULL,
 * or what is wrong.
 */
static const char *
ReadItem(Reader *r, const PairSumsHeader *h, int32 i, int64 prev, ItemEntry *e)
{
	bool		unit = (h->flags & PAIRSUMS_UNIT) != 0;

	if (i == 0)
		e->id = (int64) GetU64(r, 8);
	else if (!NextId(prev, GetVar(r), &e->id))
		return "item ids not ascending";
	{
		uint64		d = GetVar(r);

		if (d == 0 || d > (uint64) h->users || d > (uint64) INT32_MAX)
			return "an item's user count out of range";
		e->users = (int64) d;
	}
	e->maxabs = e->minabs = 1.0;
	e->dfx = 0;
	e->dg = e->users;
	if ((h->flags & PAIRSUMS_WEIGHTED) && !unit)
	{
		e->maxabs = GetF64(r);
		e->minabs = GetF64(r);
		if (!(e->maxabs >= 0) || isinf(e->maxabs) || !(e->minabs >= 0) || e->minabs > e->maxabs ||
			(e->minabs == 0) != (e->maxabs == 0))
			return "an item's weights out of range";
		if (h->flags & PAIRSUMS_FIXED)
		{
			/* Σ x² < users: the scaled weights are below 1 */
			e->dfx = (SimFixed) GetVar128(r);
			e->dg = 0;
			if ((U128) e->dfx >= ((U128) e->users << SIM_FIXED_BITS))
				return "an item's weights out of range";
		}
		else if ((e->dg = (int64) GetVar(r)) >= UNITS_LIMIT || e->dg < 0)
			return "an item's weights out of range";
	}
	if (h->flags & (PAIRSUMS_ITEMSUMS | PAIRSUMS_PEARSON))
	{
		e->minw = GetF64(r);
		e->maxw = GetF64(r);
		if (!isfinite(e->minw) || !isfinite(e->maxw) || e->minw > e->maxw || !GetExactCompact(r, &e->sum))
			return "an item's sums out of range";
	}
	if (h->flags & PAIRSUMS_PEARSON)
	{
		e->mean = GetF64(r);
		if (!isfinite(e->mean))
			return "an item's mean out of range";
	}
	return r->bad ? "truncated item list" : NULL;
}

typedef struct StateCursor
{
	PairSumsHeader h;
	Reader		r;
	int32	   *map;			/* local item -> merged item */
	int16	   *escale;			/* fixed merge, fixed state: each local item's scaling exponent */
	SimFixed   *ldiag;			/* fixed merge: each local item's Σ w² as sent (units or fixed) */
	int32		next;			/* the next local item whose row is unread */
	int64		seen;			/* entries read */
} StateCursor;

static int
CmpInt64Value(const void *a, const void *b)
{
	return cmp_int64(a, b);
}

/* the merge's state across its phases */
typedef struct Merge
{
	const CoreAlloc *a;
	CoreError  *err;
	const char *const *states;
	const size_t *lens;
	int			n;
	const SimParams *p;
	bool		weighted;		/* the metric reads the sums */
	PairSumsResult *out;
	StateCursor *cur;			/* [n] */
	int32		q;				/* the common grid: the finest of the states' */
	int64		total_items;	/* items over every state, repeats included */
	int64	   *ids;			/* [ni], the merged items ascending */
	int32		ni;
	int32	   *deg;			/* [ni] users of each item */
	double	   *maxabs;			/* [ni] largest |weight| of each item */
	int64	   *diag;			/* [ni] Σ w² in units of 2^2q */
	int		   *shift;			/* [ni] cosine's scaling exponent */
	double	   *sumsq;			/* [ni] Σ w² as one server scales it */
	bool		fixed;			/* the sums merged in fixed point (see pairsums_core.h) */
	double	   *minabs;			/* [ni] smallest nonzero |weight| of each item (0: none) */
	bool		bm25_seen;		/* bm25: a state's options read (into out) */
	int			bm25_first;		/* ... from this state */
	ItemEntry	item;			/* the item being read */
} Merge;

/* what a weighted state's sums are sums of, and what each metric reads */
typedef enum SumsKind
{
	SUMS_WEIGHTS,				/* the weights as given (cosine) */
	SUMS_USER_CENTRED,			/* minus each user's mean (adjusted cosine) */
	SUMS_ITEM_CENTRED,			/* minus each item's mean (pearson) */
	SUMS_BM25					/* BM25's terms */
} SumsKind;

static SumsKind
StateSums(uint16 flags)
{
	return (flags & PAIRSUMS_CENTRED) ? SUMS_USER_CENTRED : (flags & PAIRSUMS_PEARSON) ? SUMS_ITEM_CENTRED
		: (flags & PAIRSUMS_BM25) ? SUMS_BM25 : SUMS_WEIGHTS;
}

static SumsKind
MetricSums(SimMetric m)
{
	return m == SIM_ADJUSTED_COSINE ? SUMS_USER_CENTRED : m == SIM_PEARSON ? SUMS_ITEM_CENTRED
		: m == SIM_BM25 ? SUMS_BM25 : SUMS_WEIGHTS;
}

/* a state of kind k merged for another metric: what it is, and how to get the right one */
static CoreStatus
WrongSums(Merge *mg, int s, SumsKind k)
{
	static const char *const what[] = {"the weights as given", "weights centred by user",
	"weights centred by item", "BM25 terms"};
	static const char *const metric[] = {"cosine", "adjusted_cosine", "pearson", "bm25"};
	SumsKind	want = MetricSums(mg->p->metric);
	static const char *const how[] = {
		"cosine merges the pair sums of the weights as given: pair_sums(user, item, weight, true, weight_col) or pair_sums('cosine', ...).",
		"adjusted_cosine merges pair sums of weights centred by user: compute them with pair_sums('adjusted_cosine', user, item, weight, weight_col).",
		"pearson merges pair sums of weights centred by item: pair_sums('pearson', user, item, weight, weight_col, NULL, item_means) with the item_means of a first pass (pair_sums_item_means).",
		"bm25 merges the pair sums of its terms: compute them with pair_sums('bm25', user, item, weight, weight_col, options) and the mean_length of a first pass."};

	core_error(mg->err, CORE_INVALID, "state %d holds the sums of %s, not those %s reads", s + 1, what[k],
			   sim_metric_name(mg->p->metric));
	return core_error_hint(mg->err, "These pair sums were computed for %s; merge them with that metric (or jaccard or conditional, which read only the counts). %s",
						   metric[k], how[want]);
}

/* headers: totals, the common grid, the report; out->exact false when a shard was inexact */
static CoreStatus
MergeHeaders(Merge *mg)
{
	PairSumsResult *out = mg->out;
	double		max_raw = 0;
	SimExactSum lengths;

	sim_exact_init(&lengths);
	mg->q = INT32_MAX;
	for (int s = 0; s < mg->n; s++)
	{
		StateCursor *c = &mg->cur[s];
		int			node;

		if (HeaderAt(mg->states[s], mg->lens[s], &c->h, s, mg->err) != CORE_OK)
			return mg->err->status;
		c->r.p = (const unsigned char *) mg->states[s] + c->h.body;
		c->r.end = (const unsigned char *) mg->states[s] + mg->lens[s] - 4;	/* the CRC */
		if (c->h.flags & PAIRSUMS_LENGTHS)
		{
			core_error(mg->err, CORE_INVALID, "state %d holds only its users' lengths, BM25's first pass", s + 1);
			return core_error_hint(mg->err, "Take their mean with pair_sums_mean_length, then compute the pair sums with pair_sums('bm25', user, item, weight, weight_col, options) and that mean_length.");
		}
		if (c->h.flags & PAIRSUMS_ITEMSUMS)
		{
			core_error(mg->err, CORE_INVALID, "state %d holds only its items' sums, Pearson's first pass", s + 1);
			return core_error_hint(mg->err, "Take the items' means with pair_sums_item_means, then compute the pair sums with pair_sums('pearson', user, item, weight, weight_col, NULL, item_means).");
		}
		if (mg->weighted && !(c->h.flags & PAIRSUMS_WEIGHTED) && c->h.nnz > 0)
			return Corrupt(mg->err, s, "counts only, but the metric needs the sums");
		if (mg->weighted && c->h.nnz > 0 && StateSums(c->h.flags) != MetricSums(mg->p->metric))
			return WrongSums(mg, s, StateSums(c->h.flags));
		if (mg->p->metric == SIM_BM25 && (c->h.flags & PAIRSUMS_BM25))
		{
			if (mg->bm25_seen &&
				(memcmp(&c->h.bm25_k1, &out->bm25_k1, sizeof(double)) != 0 ||
				 memcmp(&c->h.bm25_b, &out->bm25_b, sizeof(double)) != 0 ||
				 memcmp(&c->h.mean_length, &out->mean_length, sizeof(double)) != 0))
				return core_error(mg->err, CORE_INVALID,
								  "state %d was computed with other BM25 options (k1 %.17g, b %.17g, mean length %.17g) than state %d",
								  s + 1, c->h.bm25_k1, c->h.bm25_b, c->h.mean_length, mg->bm25_first + 1);
			if (!mg->bm25_seen)
			{
				mg->bm25_seen = true;
				mg->bm25_first = s;
				out->bm25_k1 = c->h.bm25_k1;
				out->bm25_b = c->h.bm25_b;
				out->mean_length = c->h.mean_length;
			}
		}
		if (c->h.flags & PAIRSUMS_BM25)
			sim_exact_merge(&lengths, &c->h.lengths);
		if (c->h.raw_rows > INT64_MAX - out->raw_rows || c->h.users > INT64_MAX - out->users ||
			c->h.nnz > INT64_MAX - out->nnz || c->h.entries > INT64_MAX - out->entries)
			return Corrupt(mg->err, s, "counts out of range");
		out->raw_rows += c->h.raw_rows;
		out->users += c->h.users;
		out->nnz += c->h.nnz;
		out->entries += c->h.entries;
		out->shard_seconds_sum += c->h.seconds;
		out->shard_seconds_max = Max(out->shard_seconds_max, c->h.seconds);
		for (node = 0; node < out->n_nodes; node++)
			if (out->node_port[node] == c->h.port)
				break;
		if (node == out->n_nodes && node < PAIRSUMS_MAX_NODES)
			out->node_port[out->n_nodes++] = c->h.port;
		if (node < PAIRSUMS_MAX_NODES)
			out->node_seconds[node] += c->h.seconds;
		if (c->h.nnz == 0)
			continue;
		if (c->h.flags & PAIRSUMS_FIXED)
			mg->fixed = mg->weighted;
		else
			mg->q = Min(mg->q, c->h.q);
		max_raw = Max(max_raw, c->h.max_abs_raw);
		mg->total_items += c->h.n_items;
	}
	if (mg->q == INT32_MAX)
		mg->q = 0;
	if (mg->p->metric == SIM_BM25 && mg->bm25_seen)
	{
		double		mean = sim_bm25_mean_length(&lengths, out->users);

		/* the terms must have been computed from the mean of exactly these users' lengths */
		if (memcmp(&mean, &out->mean_length, sizeof(double)) != 0)
		{
			core_error(mg->err, CORE_INVALID, "the states' BM25 terms were computed with mean length %.17g, but their users' mean length is %.17g",
					   out->mean_length, mean);
			return core_error_hint(mg->err, "Merge the states of one first pass and one second pass over the same rows; the first pass's pair_sums_mean_length gives the mean_length option.");
		}
	}
	/* off the common grid: the doubles one server adds would not be exact, its fixed sums are */
	if (mg->weighted && !mg->fixed && !((double) out->raw_rows * max_raw < ldexp(1.0, 52 + mg->q)))
		mg->fixed = true;
	return CORE_OK;
}

/* the merged items: every state's ids (checked), sorted, distinct */
static CoreStatus
MergeItemIds(Merge *mg)
{
	mg->ids = core_array(mg->a, Max(mg->total_items, 1), sizeof(int64), false, mg->err);
	if (mg->ids == NULL)
		return mg->err->status;
	for (int s = 0; s < mg->n; s++)
	{
		StateCursor *c = &mg->cur[s];
		int64		prev = 0;

		c->map = core_array(mg->a, Max(c->h.n_items, 1), sizeof(int32), false, mg->err);
		if (c->map == NULL)
			return mg->err->status;
		for (int32 i = 0; i < c->h.n_items; i++)
		{
			const char *bad = ReadItem(&c->r, &c->h, i, prev, &mg->item);

			if (bad != NULL)
				return Corrupt(mg->err, s, bad);
			prev = mg->item.id;
			mg->ids[mg->ni++] = mg->item.id;
		}
	}
	qsort(mg->ids, mg->ni, sizeof(int64), CmpInt64Value);
	{
		int32		u = 0;

		for (int32 i = 0; i < mg->ni; i++)
			if (u == 0 || mg->ids[i] != mg->ids[u - 1])
				mg->ids[u++] = mg->ids[i];
		mg->ni = u;
	}
	mg->out->n_items = mg->ni;
	mg->out->item_ids = mg->ids;
	return CORE_OK;
}

/* 2^e's exponent of cosine's scaling for an item whose largest |w| is mx: mx = f·2^e, f in [0.5, 1) */
static int
ScaleExponent(double mx)
{
	int			e = 0;

	if (mx > 0)
		(void) frexp(mx, &e);
	return e;
}

/*
 * The fixed merge's norms: every state's Σ w² of each item brought to the
 * global scaling in units of 2^-96 and added; out->exact false (with why)
 * when an item's weights span 2^22 : 1 or more over all the states (one
 * server's fixed sums would cut products) or a sum does not convert exactly.
 */
static CoreStatus
MergeFixedNorms(Merge *mg)
{
	int32		ni = mg->ni;
	SimFixed   *dfx = core_array(mg->a, Max(ni, 1), sizeof(SimFixed), true, mg->err);

	if (dfx == NULL)
		return mg->err->status;
	for (int32 i = 0; i < ni; i++)
		if (mg->maxabs[i] > 0 && mg->minabs[i] < ldexp(1.0, ScaleExponent(mg->maxabs[i]) - SIM_FIXED_SPAN))
		{
			mg->out->exact = false;
			snprintf(mg->out->why, sizeof(mg->out->why),
					 "item " INT64_FORMAT "'s weights span 2^%d : 1 or more (%g to %g), beyond what fixed-point sums add exactly",
					 mg->ids[i], SIM_FIXED_SPAN, mg->minabs[i], mg->maxabs[i]);
			core_release(mg->a, dfx);
			return CORE_OK;
		}
	for (int s = 0; s < mg->n; s++)
	{
		StateCursor *c = &mg->cur[s];

		for (int32 li = 0; li < c->h.n_items; li++)
		{
			int32		g = c->map[li];
			int			eg = ScaleExponent(mg->maxabs[g]);
			SimFixed	v;
			int			sh;

			/* fixed: at the shard's scaling 2^-e; units: of 2^2q; unit weights: of 1 */
			if (c->h.flags & PAIRSUMS_FIXED)
				sh = -2 * (eg - c->escale[li]);
			else
				sh = 2 * c->h.q - 2 * eg + SIM_FIXED_BITS;
			if (!ShiftExact(c->ldiag[li], sh, &v) || v > ((SimFixed) INT32_MAX << SIM_FIXED_BITS) - dfx[g])
			{
				mg->out->exact = false;
				snprintf(mg->out->why, sizeof(mg->out->why),
						 "item " INT64_FORMAT "'s sum of squared weights is not a whole number of fixed-point units",
						 mg->ids[g]);
				core_release(mg->a, dfx);
				return CORE_OK;
			}
			dfx[g] += v;
		}
	}
	for (int32 i = 0; i < ni; i++)
	{
		mg->shift[i] = -ScaleExponent(mg->maxabs[i]);
		mg->sumsq[i] = sim_fixed_value(dfx[i]);
	}
	core_release(mg->a, dfx);
	return CORE_OK;
}

/*
 * One pass over every state's item list: its map into the merged items and
 * the degrees, largest and smallest weights and norms added up afresh (the
 * norms in units of 2^2q, or, for the fixed merge, each state's own kept
 * per local item with its scaling exponent).
 */
static CoreStatus
ReadItemLists(Merge *mg, int64 *deg64)
{
	int32		ni = mg->ni;

	memset(deg64, 0, sizeof(int64) * Max(ni, 1));
	memset(mg->maxabs, 0, sizeof(double) * Max(ni, 1));
	memset(mg->minabs, 0, sizeof(double) * Max(ni, 1));
	memset(mg->diag, 0, sizeof(int64) * Max(ni, 1));
	for (int s = 0; s < mg->n; s++)
	{
		StateCursor *c = &mg->cur[s];
		int32		g = 0;
		int64		prev = 0;

		if (mg->fixed)
		{
			c->escale = core_array(mg->a, Max(c->h.n_items, 1), sizeof(int16), false, mg->err);
			c->ldiag = core_array(mg->a, Max(c->h.n_items, 1), sizeof(SimFixed), false, mg->err);
			if (c->escale == NULL || c->ldiag == NULL)
				return mg->err->status;
		}
		c->r.p = (const unsigned char *) mg->states[s] + c->h.body;
		for (int32 i = 0; i < c->h.n_items; i++)
		{
			ItemEntry  *e = &mg->item;
			int64		id;

			(void) ReadItem(&c->r, &c->h, i, prev, e);	/* checked by MergeItemIds */
			id = e->id;
			while (mg->ids[g] != id)
				g++;			/* present: the merged ids include every state's */
			c->map[i] = g;
			deg64[g] += e->users;
			if (c->h.flags & PAIRSUMS_WEIGHTED)
			{
				/* unit weights: |w| = 1, Σ w² = the item's users */
				bool		fx = (c->h.flags & PAIRSUMS_FIXED) != 0;
				double		mx = e->maxabs;
				double		mn = e->minabs;
				SimFixed	dfx = e->dfx;
				int64		dg = e->dg;
				int			up = 2 * (c->h.q - mg->q);

				mg->maxabs[g] = Max(mg->maxabs[g], mx);
				if (mn > 0 && (mg->minabs[g] == 0 || mn < mg->minabs[g]))
					mg->minabs[g] = mn;
				if (mg->fixed)
				{
					c->escale[i] = (int16) ScaleExponent(mx);
					c->ldiag[i] = fx ? dfx : (SimFixed) dg;
				}
				/* into units of 2^2q: exact, or beyond the bound (not mergeable) */
				else if (up >= 53 || (dg != 0 && dg > (UNITS_LIMIT >> up)))
					mg->diag[g] = UNITS_LIMIT;
				else
					mg->diag[g] = Min(mg->diag[g] + (dg << up), UNITS_LIMIT);
			}
			prev = id;
		}
	}
	return CORE_OK;
}

/*
 * The item lists read again (ReadItemLists): the degrees and norms.  Summed
 * in units, an item's Σ w² reaching 2^53 units, or its largest weight the
 * grid's limit, means one server adds in fixed point: then the lists are
 * read once more for the fixed merge, and out->exact is false when its
 * weights span too much (MergeFixedNorms).  Then cosine's scaling, as
 * PrepareCosine applies it: exact powers of two.
 */
static CoreStatus
MergeItemStats(Merge *mg)
{
	int32		ni = mg->ni;
	int64	   *deg64 = core_array(mg->a, Max(ni, 1), sizeof(int64), false, mg->err);

	mg->deg = core_array(mg->a, Max(ni, 1), sizeof(int32), false, mg->err);
	mg->maxabs = core_array(mg->a, Max(ni, 1), sizeof(double), false, mg->err);
	mg->minabs = core_array(mg->a, Max(ni, 1), sizeof(double), false, mg->err);
	mg->diag = core_array(mg->a, Max(ni, 1), sizeof(int64), false, mg->err);
	if (deg64 == NULL || mg->deg == NULL || mg->maxabs == NULL || mg->minabs == NULL || mg->diag == NULL)
		return mg->err->status;
	if (ReadItemLists(mg, deg64) != CORE_OK)
		return mg->err->status;
	for (int32 i = 0; mg->weighted && !mg->fixed && i < ni; i++)
		if (mg->diag[i] >= UNITS_LIMIT || !sim_grid_usable(mg->q, mg->maxabs[i]))
		{
			/* one server, seeing the same, adds in fixed point: so does the merge */
			mg->fixed = true;
			if (ReadItemLists(mg, deg64) != CORE_OK)
				return mg->err->status;
		}
	for (int32 i = 0; i < ni; i++)
	{
		if (deg64[i] > INT32_MAX)
			return core_error(mg->err, CORE_LIMIT, "an item has more than %d users", INT32_MAX);
		mg->deg[i] = (int32) deg64[i];
	}
	core_release(mg->a, deg64);
	if (!mg->weighted)
		return CORE_OK;
	mg->shift = core_array(mg->a, Max(ni, 1), sizeof(int), false, mg->err);
	mg->sumsq = core_array(mg->a, Max(ni, 1), sizeof(double), false, mg->err);
	if (mg->shift == NULL || mg->sumsq == NULL)
		return mg->err->status;
	if (mg->fixed)
		return MergeFixedNorms(mg);
	for (int32 i = 0; i < ni; i++)
	{
		int			e = ScaleExponent(mg->maxabs[i]);

		mg->shift[i] = -e;
		mg->sumsq[i] = ldexp((double) mg->diag[i], 2 * mg->q - 2 * e);
	}
	return CORE_OK;
}

/*
 * One entry's sum at the merged items' scaling in units of 2^-96 (fixed
 * merge), into *v: from a fixed state at its own scaling (ei, ej its items'
 * exponents there), from units of 2^2q, or the count (unit weights).  False
 * when it does not convert exactly or exceeds what ct users can add.
 */
static bool
EntryFixed(const Merge *mg, const StateCursor *c, int32 li, int32 lj, int32 gi, int32 gj, SimFixed raw,
		   int64 ct, SimFixed *v)
{
	int			sh;

	if (c->h.flags & PAIRSUMS_FIXED)
		sh = (c->escale[li] + mg->shift[gi]) + (c->escale[lj] + mg->shift[gj]);
	else
		sh = 2 * c->h.q + mg->shift[gi] + mg->shift[gj] + SIM_FIXED_BITS;
	if (!ShiftExact(raw, sh, v))
		return false;
	/* |Σ x·y| < ct: the scaled weights are below 1 */
	return *v < ((SimFixed) ct << SIM_FIXED_BITS) && *v > -((SimFixed) ct << SIM_FIXED_BITS);
}

/*
 * Item i's row from every state that has it (each state's next unread row
 * is its lowest item left), added as integers into acc (units of 2^2q) or
 * fx (fixed merge) and cnt, with the items touched listed in touched;
 * returns their number, or -1 (err set).
 */
static int32
MergeRowOf(Merge *mg, int32 i, int64 *acc, SimFixed *fx, int64 *cnt, int32 *touched)
{
	int32		nt = 0;

	for (int s = 0; s < mg->n; s++)
	{
		StateCursor *c = &mg->cur[s];
		uint64		entries;
		int32		j = -1;
		int			up = 2 * (c->h.q - mg->q);
		int32		li = c->next;

		if (li >= c->h.n_items || c->map[li] != i)
			continue;
		c->next++;
		entries = GetVar(&c->r);
		if (c->r.bad || entries >= (uint64) c->h.n_items ||
			entries > (uint64) (c->h.entries - c->seen))
			return (Corrupt(mg->err, s, "a row's length out of range"), -1);
		c->seen += (int64) entries;
		for (uint64 t = 0; t < entries; t++)
		{
			uint64		dj = GetVar(&c->r);
			uint64		ct = GetVar(&c->r);
			int32		g;

			if (c->r.bad || dj >= (uint64) c->h.n_items || (int64) j + 1 + (int64) dj >= c->h.n_items)
				return (Corrupt(mg->err, s, "a row's items out of range"), -1);
			j += 1 + (int32) dj;
			if (j == li)
				return (Corrupt(mg->err, s, "an item paired with itself"), -1);
			if (ct == 0 || ct > (uint64) c->h.users)
				return (Corrupt(mg->err, s, "a pair's count out of range"), -1);
			g = c->map[j];
			if (cnt[g] == 0)
				touched[nt++] = g;
			cnt[g] += (int64) ct;
			/* at most the users of the rarer item (checked after the row); here, what acc can hold */
			if (cnt[g] > INT32_MAX)
				return (Corrupt(mg->err, s, "a pair's count out of range"), -1);
			if (c->h.flags & PAIRSUMS_FIXED)
			{
				SimFixed	raw = UnZigZag128(GetVar128(&c->r));
				SimFixed	v;

				if (c->r.bad)
					return (Corrupt(mg->err, s, "a pair's sum out of range"), -1);
				if (mg->weighted)
				{
					if (!EntryFixed(mg, c, li, j, i, g, raw, (int64) ct, &v))
						return (Corrupt(mg->err, s, "a pair's sum is not a whole number of units at its items' scaling"), -1);
					fx[g] += v;
				}
			}
			else if (c->h.flags & PAIRSUMS_WEIGHTED)
			{
				/* unit weights: the sum is the count */
				int64		v = (c->h.flags & PAIRSUMS_UNIT) ? (int64) ct : UnZigZag(GetVar(&c->r));

				if (c->r.bad || v >= UNITS_LIMIT || v <= -UNITS_LIMIT)
					return (Corrupt(mg->err, s, "a pair's sum out of range"), -1);
				if (mg->weighted && mg->fixed)
				{
					SimFixed	f;

					if (!EntryFixed(mg, c, li, j, i, g, (SimFixed) v, (int64) ct, &f))
						return (Corrupt(mg->err, s, "a pair's sum is not a whole number of units at its items' scaling"), -1);
					fx[g] += f;
				}
				else if (mg->weighted)
				{
					if (up >= 53 || (v != 0 && (v > (UNITS_LIMIT >> up) || -v > (UNITS_LIMIT >> up))))
						return (Corrupt(mg->err, s, "a pair's sum beyond its items' norms"), -1);
					acc[g] += v * ((int64) 1 << up);
					/* honest shards' running sums stay below sqrt(G_ii G_jj) */
					if (acc[g] >= UNITS_LIMIT || acc[g] <= -UNITS_LIMIT)
						return (Corrupt(mg->err, s, "a pair's merged sum beyond its items' norms"), -1);
				}
			}
		}
	}
	return nt;
}

/* every item's merged row, as the doubles one server holds, into the selection */
static CoreStatus
MergeRows(Merge *mg, const CoreInterrupts *hooks)
{
	int32		ni = mg->ni;
	SimScorer  *scorer = NULL;
	double	   *idf = NULL;
	int64	   *acc = NULL;
	SimFixed   *fx = NULL;
	int64	   *cnt;
	int32	   *touched;

	if (simcore_scorer_create(mg->a, ni, mg->p, mg->deg, mg->sumsq, &scorer, &mg->out->lists, mg->err) != CORE_OK)
		return mg->err->status;
	if (mg->p->metric == SIM_BM25)
	{
		/* idf from the merged degrees and users, as one server computes it; the sums at mg->shift's scaling */
		idf = core_array(mg->a, Max(ni, 1), sizeof(double), false, mg->err);
		if (idf == NULL)
			return mg->err->status;
		for (int32 i = 0; i < ni; i++)
			idf[i] = sim_bm25_idf(mg->out->users, mg->deg[i]);
		simcore_scorer_bm25(scorer, idf, mg->shift);
	}
	if (mg->fixed)
		fx = core_array(mg->a, Max(ni, 1), sizeof(SimFixed), true, mg->err);
	else
		acc = core_array(mg->a, Max(ni, 1), sizeof(int64), true, mg->err);
	cnt = core_array(mg->a, Max(ni, 1), sizeof(int64), true, mg->err);
	touched = core_array(mg->a, Max(ni, 1), sizeof(int32), false, mg->err);
	if ((acc == NULL && fx == NULL) || cnt == NULL || touched == NULL)
		return mg->err->status;
	for (int32 i = 0; i < ni; i++)
	{
		int32		nt = MergeRowOf(mg, i, acc, fx, cnt, touched);

		if (nt < 0)
			return mg->err->status;
		for (int32 t = 0; t < nt; t++)
		{
			int32		j = touched[t];
			double		dot = 0;

			if (cnt[j] > Min(mg->deg[i], mg->deg[j]))
			{
				core_error(mg->err, CORE_CORRUPT, "invalid partial pair sums");
				return core_error_detail(mg->err, "Items " INT64_FORMAT " and " INT64_FORMAT " are paired by more users than either has.",
										 mg->ids[i], mg->ids[j]);
			}
			if (mg->weighted && mg->fixed)
			{
				dot = sim_fixed_value(fx[j]);
				fx[j] = 0;
			}
			else if (mg->weighted)
			{
				dot = ldexp((double) acc[j], 2 * mg->q + mg->shift[i] + mg->shift[j]);
				acc[j] = 0;
			}
			simcore_scorer_put(scorer, j, dot, (int32) cnt[j]);
			cnt[j] = 0;
		}
		simcore_scorer_item(scorer, i);
		if ((i & 63) == 0)
			core_check_interrupts(hooks);
	}
	for (int s = 0; s < mg->n; s++)
	{
		StateCursor *c = &mg->cur[s];

		if (c->h.nnz > 0 && (c->next != c->h.n_items || c->seen != c->h.entries || c->r.p != c->r.end))
			return Corrupt(mg->err, s, "rows and header disagree");
	}
	simcore_scorer_finish(mg->a, scorer);
	core_release(mg->a, idf);
	core_release(mg->a, acc);
	core_release(mg->a, fx);
	core_release(mg->a, cnt);
	core_release(mg->a, touched);
	return CORE_OK;
}

CoreStatus
pairsums_mean_length(const char *const *states, const size_t *lens, int n, double *mean_length,
					 int64 *users, CoreError *err)
{
	SimExactSum lengths;
	PairSumsHeader h;

	sim_exact_init(&lengths);
	*users = 0;
	for (int s = 0; s < n; s++)
	{
		if (HeaderAt(states[s], lens[s], &h, s, err) != CORE_OK)
			return err->status;
		if (!(h.flags & (PAIRSUMS_LENGTHS | PAIRSUMS_BM25)))
		{
			core_error(err, CORE_INVALID, "state %d holds no users' lengths", s + 1);
			return core_error_hint(err, "The first pass of BM25 is pair_sums('bm25', user, item, weight, weight_col), without options.");
		}
		if (h.users > INT64_MAX - *users)
			return Corrupt(err, s, "counts out of range");
		*users += h.users;
		sim_exact_merge(&lengths, &h.lengths);
	}
	*mean_length = sim_bm25_mean_length(&lengths, *users);
	return CORE_OK;
}

/* ---------- Pearson's item means ---------- */

/* one state in the walk over the item lists of item-sums and pearson states */
typedef struct MeansCursor
{
	PairSumsHeader h;
	Reader		r;
	int32		next;			/* items read */
	bool		has;			/* cur is the state's next item not yet walked */
	ItemEntry	cur;
} MeansCursor;

/* an item whose pearson states centred it on another mean than its rows' */
typedef struct MeansMismatch
{
	bool		found;
	int64		id;
	double		used;
	double		mean;
} MeansMismatch;

static CoreStatus
MeansAdvance(MeansCursor *c, int s, CoreError *err)
{
	const char *bad;

	c->has = c->next < c->h.n_items;
	if (!c->has)
		return CORE_OK;
	bad = ReadItem(&c->r, &c->h, c->next, c->cur.id, &c->cur);
	c->next++;
	return bad ? Corrupt(err, s, bad) : CORE_OK;
}

/*
 * Every item's mean over n item-sums or pearson states, in id order, as one
 * server computes it (sim_pearson_mean of the merged figures): appended to
 * blob (id, f64 mean) when not NULL, counted in *n_items; with mis, the
 * first item some pearson state centred on another mean goes there.
 * CORE_INVALID for states of other kinds.  Polls hooks.
 */
static CoreStatus
WalkMeans(const CoreAlloc *a, const char *const *states, const size_t *lens, int n,
		  const CoreInterrupts *hooks, Writer *blob, int32 *n_items, MeansMismatch *mis, CoreError *err)
{
	MeansCursor *cur = core_array(a, Max(n, 1), sizeof(MeansCursor), true, err);
	double	   *used_by = core_array(a, Max(n, 1), sizeof(double), false, err);	/* this item's, per pearson state */
	CoreStatus	st = CORE_OK;
	int64		prev_id = 0;
	SimExactSum sum;

	*n_items = 0;
	if (cur == NULL || used_by == NULL)
		return err->status;
	for (int s = 0; s < n && st == CORE_OK; s++)
	{
		MeansCursor *c = &cur[s];

		if ((st = HeaderAt(states[s], lens[s], &c->h, s, err)) != CORE_OK)
			break;
		if (!(c->h.flags & (PAIRSUMS_ITEMSUMS | PAIRSUMS_PEARSON)))
		{
			core_error(err, CORE_INVALID, "state %d holds no items' sums", s + 1);
			st = core_error_hint(err, "The first pass of Pearson is pair_sums('pearson', user, item, weight, weight_col), without item means.");
			break;
		}
		c->r.p = (const unsigned char *) states[s] + c->h.body;
		c->r.end = (const unsigned char *) states[s] + lens[s] - 4;
		st = MeansAdvance(c, s, err);
	}
	while (st == CORE_OK)
	{
		int64		id = 0;
		int64		users = 0;
		double		mn = INFINITY,
					mx = -INFINITY,
					mean;
		int			n_used = 0;
		bool		any = false;

		for (int s = 0; s < n; s++)
			if (cur[s].has && (!any || cur[s].cur.id < id))
			{
				id = cur[s].cur.id;
				any = true;
			}
		if (!any)
			break;
		sim_exact_init(&sum);
		for (int s = 0; s < n && st == CORE_OK; s++)
		{
			MeansCursor *c = &cur[s];

			if (!c->has || c->cur.id != id)
				continue;
			sim_exact_merge(&sum, &c->cur.sum);
			users += c->cur.users;
			mn = Min(mn, c->cur.minw);
			mx = Max(mx, c->cur.maxw);
			if (c->h.flags & PAIRSUMS_PEARSON)
				used_by[n_used++] = c->cur.mean;
			st = MeansAdvance(c, s, err);
		}
		if (st != CORE_OK)
			break;
		mean = sim_pearson_mean(&sum, users, mn, mx);
		if (!isfinite(mean))
		{
			/* the figures of finite weights never give one: the sums are not their weights' */
			st = core_error(err, CORE_CORRUPT, "invalid partial pair sums");
			core_error_detail(err, "Item " INT64_FORMAT "'s sum of weights is beyond its users' largest weights.", id);
			break;
		}
		/* every state must have centred the item on its mean over all of them, bit for bit */
		for (int u = 0; mis && !mis->found && u < n_used; u++)
			if (memcmp(&used_by[u], &mean, sizeof(double)) != 0)
			{
				mis->found = true;
				mis->id = id;
				mis->used = used_by[u];
				mis->mean = mean;
			}
		if (blob)
		{
			PutId(blob, *n_items == 0, id, prev_id);
			PutF64(blob, mean);
			if (blob->failed)
			{
				st = err->status;
				break;
			}
		}
		prev_id = id;
		if (*n_items == INT32_MAX)
			st = core_error(err, CORE_LIMIT, "more than %d items", INT32_MAX);
		else
			(*n_items)++;
		if ((*n_items & 1023) == 0)
			core_check_interrupts(hooks);
	}
	/* an item-sums state ends with its items */
	for (int s = 0; s < n && st == CORE_OK; s++)
		if ((cur[s].h.flags & PAIRSUMS_ITEMSUMS) && cur[s].r.p != cur[s].r.end)
			st = Corrupt(err, s, "bytes after the item list");
	core_release(a, cur);
	core_release(a, used_by);
	return st;
}

CoreStatus
pairsums_item_means(const CoreAlloc *a, const char *const *states, const size_t *lens, int n,
					const CoreInterrupts *hooks, char **out, size_t *len, CoreError *err)
{
	Writer		w;
	int32		n_items;
	uint32		crc;

	*out = NULL;
	*len = 0;
	memset(&w, 0, sizeof(w));
	w.a = a;
	w.max = (size_t) 1 << 40;
	w.err = err;
	PutU64(&w, PAIRSUMS_MEANS_MAGIC, 4);
	PutU64(&w, 1, 1);
	PutU64(&w, 0, 4);			/* the items: patched below */
	if (w.failed)
		return err->status;
	if (WalkMeans(a, states, lens, n, hooks, &w, &n_items, NULL, err) != CORE_OK)
	{
		core_release(a, w.buf);
		return err->status;
	}
	for (int b = 0; b < 4; b++)
		w.buf[5 + b] = (char) (((uint32) n_items >> (8 * b)) & 0xFF);
	crc = StateCrc(w.buf, w.len);
	PutU64(&w, crc, 4);
	if (w.failed)
	{
		core_release(a, w.buf);
		return err->status;
	}
	*out = w.buf;
	*len = w.len;
	return CORE_OK;
}

static CoreStatus
BadMeans(CoreError *err, const char *what)
{
	core_error(err, CORE_CORRUPT, "invalid item means");
	return core_error_detail(err, "%s.", what);
}

CoreStatus
pairsums_means_decode(const CoreAlloc *a, const char *data, size_t len, int64 **ids, double **means,
					  int32 *n, CoreError *err)
{
	Reader		r = {(const unsigned char *) data, (const unsigned char *) data + len, false};
	uint64		count;

	*ids = NULL;
	*means = NULL;
	*n = 0;
	if (len < 13 || GetU64(&r, 4) != PAIRSUMS_MEANS_MAGIC)
		return BadMeans(err, "Not media_reco item means (the result of pair_sums_item_means)");
	{
		Reader		t = {(const unsigned char *) data + len - 4, (const unsigned char *) data + len, false};

		if (GetU64(&t, 4) != StateCrc(data, len - 4))
			return BadMeans(err, "Checksum mismatch (the bytes were changed after they were written)");
	}
	if (GetU64(&r, 1) != 1)
		return BadMeans(err, "Unknown version");
	count = GetU64(&r, 4);
	if (count > (len - 13) / 9 + 1)
		return BadMeans(err, "More items than bytes");
	r.end -= 4;
	*ids = core_array(a, Max(count, 1), sizeof(int64), false, err);
	*means = core_array(a, Max(count, 1), sizeof(double), false, err);
	if (*ids == NULL || *means == NULL)
		return err->status;
	for (uint64 i = 0; i < count; i++)
	{
		if (i == 0)
			(*ids)[0] = (int64) GetU64(&r, 8);
		else if (!NextId((*ids)[i - 1], GetVar(&r), &(*ids)[i]))
			return BadMeans(err, "Item ids not ascending");
		(*means)[i] = GetF64(&r);
		if (r.bad || !isfinite((*means)[i]))
			return BadMeans(err, r.bad ? "Truncated" : "A mean out of range");
	}
	if (r.p != r.end)
		return BadMeans(err, "Bytes after the last item");
	*n = (int32) count;
	return CORE_OK;
}

CoreStatus
pairsums_merge(const CoreAlloc *a, const char *const *states, const size_t *lens, int n,
			   const SimParams *p, const CoreInterrupts *hooks, PairSumsResult *out,
			   CoreError *err)
{
	Merge		mg;

	memset(out, 0, sizeof(*out));
	out->exact = true;
	out->n_states = n;
	if (!pairsums_metric_merged(p->metric))
		return core_error(err, CORE_INVALID, "metric %s is not merged from pair sums",
						  sim_metric_name(p->metric));
	memset(&mg, 0, sizeof(mg));
	mg.a = a;
	mg.err = err;
	mg.states = states;
	mg.lens = lens;
	mg.n = n;
	mg.p = p;
	mg.weighted = SIM_IS_COSINE(p->metric) || p->metric == SIM_BM25;
	mg.out = out;
	mg.cur = core_array(a, Max(n, 1), sizeof(StateCursor), true, err);
	if (mg.cur == NULL)
		return err->status;
	if (MergeHeaders(&mg) != CORE_OK)
		return err->status;
	if (p->metric == SIM_PEARSON)
	{
		/* the means the states centred on must be those of their own rows */
		MeansMismatch mis;
		int32		items;

		memset(&mis, 0, sizeof(mis));
		if (WalkMeans(a, states, lens, n, hooks, NULL, &items, &mis, err) != CORE_OK)
			return err->status;
		if (mis.found)
		{
			out->exact = false;
			snprintf(out->why, sizeof(out->why),
					 "item " INT64_FORMAT " was centred on %.17g, not on its mean over these rows, %.17g (rows changed between Pearson's passes?)",
					 mis.id, mis.used, mis.mean);
		}
	}
	if (out->exact && MergeItemIds(&mg) != CORE_OK)
		return err->status;
	if (out->exact && MergeItemStats(&mg) != CORE_OK)
		return err->status;
	if (out->exact && MergeRows(&mg, hooks) != CORE_OK)
		return err->status;
	out->fixed = mg.fixed;
	for (int s = 0; s < n; s++)
	{
		core_release(a, mg.cur[s].map);
		core_release(a, mg.cur[s].escale);
		core_release(a, mg.cur[s].ldiag);
	}
	core_release(a, mg.cur);
	core_release(a, mg.deg);
	core_release(a, mg.maxabs);
	core_release(a, mg.minabs);
	core_release(a, mg.diag);
	core_release(a, mg.shift);
	core_release(a, mg.sumsq);
	return CORE_OK;
}
