/*
 * test_core.c
 *	  core.c (arrays, buffers, readers), model_blob.c (the envelope) and
 *	  training_core.c (row order, class sets), against hand values and
 *	  brute-force checks in the test.
 */
#include "unit.h"

#include <stdlib.h>

#include "model_blob.h"
#include "training_core.h"

/* core_array: count * elem overflow and sizes beyond CORE_MAX_ALLOC are CORE_LIMIT, never a short block */
static void
test_core_array_overflow(void)
{
	CoreError	err;
	void	   *p;

	err.status = CORE_OK;
	p = core_array(&unit_arena, SIZE_MAX / 2, 4, false, &err);
	CHECK(p == NULL);
	CHECK_EQ_INT(err.status, CORE_LIMIT);
	CHECK(strstr(err.message, "is too large") != NULL);

	/* the product fits in size_t but is beyond the cap */
	err.status = CORE_OK;
	p = core_array(&unit_arena, ((size_t) 1 << 30) + 1, 1024, false, &err);
	CHECK(p == NULL);
	CHECK_EQ_INT(err.status, CORE_LIMIT);

	/* exactly the cap is allowed by the check (the allocator then refuses) */
	unit_arena_fail_after(1);
	err.status = CORE_OK;
	p = core_array(&unit_arena, (size_t) 1 << 30, 1024, false, &err);
	CHECK(p == NULL);
	CHECK_EQ_INT(err.status, CORE_NOMEM);
	unit_arena_fail_after(0);

	/* zero elements: a valid block; zeroing clears */
	p = core_array(&unit_arena, 0, 8, false, &err);
	CHECK(p != NULL);
	{
		unsigned char *z = core_array(&unit_arena, 1000, 3, true, &err);
		int			nonzero = 0;

		CHECK(z != NULL);
		for (int i = 0; z && i < 3000; i++)
			nonzero += z[i] != 0;
		CHECK_EQ_INT(nonzero, 0);
	}
}

/* CoreBuf: many appends of odd sizes from a tiny start reproduce the bytes; a failing allocator is reported */
static void
test_core_buf_growth(void)
{
	CoreBuf		b;
	CoreError	err;
	unsigned char *ref = malloc(300000);
	size_t		len = 0;
	uint64		rs = 42;

	core_buf_init(&b, &unit_arena, 1);
	while (len < 290000)
	{
		unsigned char chunk[700];
		size_t		n = unit_rand(&rs) % sizeof(chunk);

		for (size_t i = 0; i < n; i++)
			chunk[i] = (unsigned char) unit_rand(&rs);
		core_buf_append(&b, chunk, n);
		memcpy(ref + len, chunk, n);
		len += n;
	}
	CHECK_EQ_INT(core_buf_status(&b, &err), CORE_OK);
	CHECK_EQ_INT(b.len, len);
	CHECK(b.cap >= b.len);
	CHECK(memcmp(b.data, ref, len) == 0);
	/* the old blocks were released: only the current one is held */
	CHECK_EQ_INT(unit_arena_live(), b.cap);

	unit_arena_fail_after(1);
	core_buf_append(&b, ref, b.cap + 1);	/* must grow, and cannot */
	CHECK(b.failed);
	CHECK_EQ_INT(core_buf_status(&b, &err), CORE_NOMEM);
	CHECK_EQ_INT(b.len, len);	/* nothing half-written */
	unit_arena_fail_after(0);
	free(ref);
}

static size_t
MakeEnvelope(CoreBuf *b, ModelKind kind, const char *payload, size_t n)
{
	CoreError	err;
	size_t		start;

	core_buf_init(b, &unit_arena, 8);
	start = model_envelope_begin(b, kind);
	core_buf_append(b, payload, n);
	CHECK_EQ_INT(model_envelope_finish(b, start, &err), CORE_OK);
	return start;
}

/* the envelope: a written model opens to the same kind and payload; every damage is CORE_CORRUPT with its detail */
static void
test_envelope_round_trip(void)
{
	const char	payload[] = "a payload of some length, 40 bytes long";
	CoreBuf		b;
	CoreError	err;
	CoreReader	r;
	ModelKind	kind;
	char	   *copy;

	MakeEnvelope(&b, MODEL_KIND_MLP, payload, sizeof(payload));
	CHECK_EQ_INT(b.len, MODEL_HEADER_SIZE + sizeof(payload));
	CHECK_EQ_INT(model_envelope_open(b.data, b.len, true, &kind, &r, &err), CORE_OK);
	CHECK_EQ_INT(kind, MODEL_KIND_MLP);
	CHECK_EQ_INT(r.left, sizeof(payload));
	CHECK(memcmp(r.p, payload, sizeof(payload)) == 0);
	/* the header as documented: magic, version, kind, length */
	{
		uint32		magic;
		uint16		version,
					k;
		uint64		plen;

		memcpy(&magic, b.data, 4);
		memcpy(&version, b.data + 4, 2);
		memcpy(&k, b.data + 6, 2);
		memcpy(&plen, b.data + 8, 8);
		CHECK_EQ_INT(magic, 0x314D524D);
		CHECK_EQ_INT(version, 1);
		CHECK_EQ_INT(k, 2);
		CHECK_EQ_INT(plen, sizeof(payload));
	}

	/* every truncation */
	for (size_t len = 0; len < b.len; len++)
	{
		err.status = CORE_OK;
		CHECK_EQ_INT(model_envelope_open(b.data, len, true, &kind, &r, &err), CORE_CORRUPT);
		CHECK_STR(err.message, "invalid media_reco model");
	}
	/* every single-bit flip, anywhere */
	copy = malloc(b.len);
	for (size_t bit = 0; bit < b.len * 8; bit++)
	{
		memcpy(copy, b.data, b.len);
		copy[bit / 8] ^= (char) (1 << (bit % 8));
		err.status = CORE_OK;
		CHECK_EQ_INT(model_envelope_open(copy, b.len, true, &kind, &r, &err), CORE_CORRUPT);
	}
	/* a payload flip is found by the checksum, and only when it is checked */
	memcpy(copy, b.data, b.len);
	copy[MODEL_HEADER_SIZE + 3] ^= 1;
	CHECK_EQ_INT(model_envelope_open(copy, b.len, true, &kind, &r, &err), CORE_CORRUPT);
	CHECK_STR(err.detail, "The payload checksum does not match: the bytes were altered.");
	CHECK_EQ_INT(model_envelope_open(copy, b.len, false, &kind, &r, &err), CORE_OK);
	/* byte-swapped magic, padding */
	memcpy(copy, b.data, b.len);
	{
		uint32		swapped = 0x4D524D31;

		memcpy(copy, &swapped, 4);
		CHECK_EQ_INT(model_envelope_open(copy, b.len, true, &kind, &r, &err), CORE_CORRUPT);
		CHECK_STR(err.detail, "The model was written on a machine with a different byte order.");
	}
	free(copy);
	copy = calloc(1, b.len + 1);
	memcpy(copy, b.data, b.len);
	CHECK_EQ_INT(model_envelope_open(copy, b.len + 1, true, &kind, &r, &err), CORE_CORRUPT);
	CHECK(strstr(err.detail, "(truncated or padded)") != NULL);
	free(copy);

	/* the payload readers stop at the end */
	{
		char		dst[64];

		model_envelope_open(b.data, b.len, true, &kind, &r, &err);
		CHECK(payload_read(&r, dst, 30, &err));
		CHECK(!payload_read(&r, dst, 11, &err));
		CHECK_EQ_INT(err.status, CORE_CORRUPT);
		CHECK_EQ_INT(payload_end(&r, &err), CORE_CORRUPT);
		CHECK(payload_take(&r, 10, &err) != NULL);
		CHECK_EQ_INT(payload_end(&r, &err), CORE_OK);
	}
}

static int
CmpValueRef(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) == isnan(b) ? 0 : (isnan(a) ? 1 : -1);
	return a < b ? -1 : (a > b);
}

static int
CmpRowRef(const double *x, const double *y, int nf, int a, int b)
{
	int			c = CmpValueRef(y[a], y[b]);

	for (int j = 0; c == 0 && j < nf; j++)
		c = CmpValueRef(x[a * nf + j], x[b * nf + j]);
	return c;
}

/* canonical_row_order: a permutation, sorted by (label, features..., NaN last), independent of arrival order */
static void
test_canonical_row_order(void)
{
	enum
	{
		N = 300, NF = 3
	};
	static double x[N * NF],
				y[N],
				x2[N * NF],
				y2[N];
	static int32 ord[N],
				ord2[N],
				seen[N],
				shuf[N];
	uint64		rs = 7;

	for (int i = 0; i < N; i++)
	{
		y[i] = (double) (unit_rand(&rs) % 3);
		for (int j = 0; j < NF; j++)
		{
			uint64		r = unit_rand(&rs) % 10;

			x[i * NF + j] = r == 0 ? NAN : (double) (r % 4);	/* many ties, some NaN */
		}
	}
	canonical_row_order(N, NF, x, y, NULL, ord);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < N; i++)
	{
		CHECK(ord[i] >= 0 && ord[i] < N);
		if (ord[i] >= 0 && ord[i] < N)
			seen[ord[i]]++;
	}
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(seen[i], 1);
	for (int i = 1; i < N; i++)
		CHECK(CmpRowRef(x, y, NF, ord[i - 1], ord[i]) <= 0);

	/* the same rows in another order give the same sequence of row contents */
	for (int i = 0; i < N; i++)
		shuf[i] = i;
	for (int i = N - 1; i > 0; i--)
	{
		int			j = (int) (unit_rand(&rs) % (uint64) (i + 1));
		int32		t = shuf[i];

		shuf[i] = shuf[j];
		shuf[j] = t;
	}
	for (int i = 0; i < N; i++)
	{
		y2[i] = y[shuf[i]];
		memcpy(&x2[i * NF], &x[shuf[i] * NF], sizeof(double) * NF);
	}
	canonical_row_order(N, NF, x2, y2, NULL, ord2);
	for (int i = 0; i < N; i++)
	{
		CHECK(CmpRowRef(x, y, NF, ord[i], ord[i]) == 0);
		CHECK(CmpValueRef(y[ord[i]], y2[ord2[i]]) == 0);
		for (int j = 0; j < NF; j++)
			CHECK(CmpValueRef(x[ord[i] * NF + j], x2[ord2[i] * NF + j]) == 0);
	}
}

/* the reference order: the comparator handed to qsort_arg, as training used before it polled */
typedef struct RefRows
{
	const double *x;
	const double *y;
	int			nf;
} RefRows;

static int
CmpRowQsortRef(const void *a, const void *b, void *arg)
{
	const RefRows *r = (const RefRows *) arg;

	return CmpRowRef(r->x, r->y, r->nf, *(const int32 *) a, *(const int32 *) b);
}

static int	poll_calls,
			process_calls;

/* an interrupt that is pending at every 5th poll and whose processing returns */
static bool
PendingEvery5(void)
{
	return ++poll_calls % 5 == 0;
}

static void
ProcessReturns(void)
{
	process_calls++;
}

/*
 * canonical_row_order is qsort_arg's order exactly, ties included (rows
 * that differ only by -0 and +0, or by NaN payloads, compare equal but are
 * not the same bytes), and it polls its hooks on a large input without
 * changing that order.
 */
static void
test_canonical_row_order_is_qsort(void)
{
	enum
	{
		N = 20000, NF = 2
	};
	static double x[N * NF],
				y[N];
	static int32 ord[N],
				ref[N];
	const CoreInterrupts hooks = {PendingEvery5, ProcessReturns};
	RefRows		rr = {x, y, NF};
	uint64		rs = 11;
	int			same = 0;

	for (int pass = 0; pass < 3; pass++)
	{
		for (int i = 0; i < N; i++)
		{
			uint64		r = unit_rand(&rs);

			/* pass 1 is presorted, pass 2 has few distinct rows */
			y[i] = pass == 1 ? (double) (i / 100) : (double) (r % 3);
			x[i * NF] = pass == 1 ? 0.0 : ((r >> 8) % 4 == 0 ? -0.0 : (double) ((r >> 10) % (pass == 2 ? 2 : 50)));
			x[i * NF + 1] = (r >> 20) % 9 == 0 ? NAN : (pass == 2 ? 1.0 : (double) ((r >> 24) % 7));
		}
		for (int i = 0; i < N; i++)
			ref[i] = i;
		qsort_arg(ref, N, sizeof(int32), CmpRowQsortRef, &rr);
		poll_calls = process_calls = 0;
		canonical_row_order(N, NF, x, y, &hooks, ord);
		CHECK(memcmp(ord, ref, sizeof(ord)) == 0);
		if (pass != 1)
			CHECK(process_calls > 0);
		canonical_row_order(N, NF, x, y, NULL, ord);
		same += memcmp(ord, ref, sizeof(ord)) == 0;
	}
	CHECK_EQ_INT(same, 3);
}

/* training_classes: distinct labels ascending, -0 as +0; too few is CORE_DATA, too many CORE_LIMIT */
static void
test_training_classes(void)
{
	const double y[] = {2, -0.0, 0, 5, 2, 5, -3.5};
	const double one[] = {4, 4, 4};
	double	   *classes;
	int32		nc;
	CoreError	err;

	CHECK_EQ_INT(training_classes(&unit_arena, y, 7, 100, &classes, &nc, &err), CORE_OK);
	CHECK_EQ_INT(nc, 4);
	if (nc == 4)
	{
		CHECK(classes[0] == -3.5 && classes[1] == 0 && classes[2] == 2 && classes[3] == 5);
		CHECK(!signbit(classes[1]));
	}
	CHECK_EQ_INT(training_classes(&unit_arena, one, 3, 100, &classes, &nc, &err), CORE_DATA);
	CHECK(err.hint[0] != '\0');
	CHECK_EQ_INT(training_classes(&unit_arena, y, 7, 3, &classes, &nc, &err), CORE_LIMIT);
	CHECK(err.hint[0] != '\0');
	CHECK_EQ_INT(training_classes(&unit_arena, y, 7, 4, &classes, &nc, &err), CORE_OK);
}

void
core_suite(void)
{
	RUN(test_core_array_overflow);
	RUN(test_core_buf_growth);
	RUN(test_envelope_round_trip);
	RUN(test_canonical_row_order);
	RUN(test_canonical_row_order_is_qsort);
	RUN(test_training_classes);
}
