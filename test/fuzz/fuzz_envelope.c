/*
 * fuzz_envelope.c
 *	  The model envelope (model_envelope_open, with and without the checksum)
 *	  and the bounded payload readers on arbitrary bytes; then a round trip:
 *	  the input as a payload, wrapped by model_envelope_begin/finish, must
 *	  open again, checksum included, onto the same bytes.
 */
#include "core.h"

#include <string.h>

#include "model_blob.h"
#include "fuzz_common.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* walk the payload with reads and takes whose sizes the payload itself gives */
static void
WalkPayload(CoreReader *r, const char *lo, const char *hi)
{
	CoreError	err;

	for (;;)
	{
		uint8		op;
		char		buf[256];
		const char *p;

		if (!payload_read(r, &op, 1, &err))
		{
			FUZZ_CHECK(err.status == CORE_CORRUPT);
			break;
		}
		if (op & 1)
		{
			if (!payload_read(r, buf, op >> 1, &err))
				break;
		}
		else
		{
			size_t		n = (size_t) op << 4;

			p = payload_take(r, n, &err);
			if (p == NULL)
				break;
			FUZZ_CHECK(p >= lo && p + n <= hi);
		}
		FUZZ_CHECK(r->p >= lo && r->p + r->left == hi);
	}
	(void) payload_end(r, &err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *) data;
	FuzzArena	ar;
	CoreError	err;
	ModelKind	kind;
	CoreReader	r;
	CoreBuf		b;
	size_t		start;

	for (int crc = 0; crc <= 1; crc++)
	{
		if (model_envelope_open(p, size, crc, &kind, &r, &err) == CORE_OK)
		{
			FUZZ_CHECK(kind == MODEL_KIND_FOREST || kind == MODEL_KIND_MLP);
			FUZZ_CHECK(r.p == p + MODEL_HEADER_SIZE && r.left == size - MODEL_HEADER_SIZE);
			WalkPayload(&r, p, p + size);
		}
		else
			FUZZ_CHECK(err.status == CORE_CORRUPT && strcmp(err.message, "invalid media_reco model") == 0);
	}

	fuzz_arena_init(&ar);
	core_buf_init(&b, &ar.alloc, 16);
	start = model_envelope_begin(&b, (size & 1) ? MODEL_KIND_MLP : MODEL_KIND_FOREST);
	core_buf_append(&b, data, size);
	FUZZ_CHECK(model_envelope_finish(&b, start, &err) == CORE_OK);
	FUZZ_CHECK(model_envelope_open(b.data, b.len, true, &kind, &r, &err) == CORE_OK);
	FUZZ_CHECK(r.left == size && memcmp(r.p, data, size) == 0);
	fuzz_arena_reset(&ar);
	return 0;
}
