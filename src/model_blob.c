/*
 * model_blob.c
 *	  The shared model envelope: writing it, and validating it before any
 *	  kind-specific parser looks at the payload.  Plain C (see model_blob.h).
 */
#include "core.h"

#include <string.h>

#include "port/pg_bswap.h"
#include "port/pg_crc32c.h"

#include "model_blob.h"

size_t
model_envelope_begin(CoreBuf *b, ModelKind kind)
{
	size_t		start = b->len;
	uint32		magic = MODEL_MAGIC;
	uint16		version = MODEL_FORMAT_VERSION;
	uint16		k = (uint16) kind;
	char		zeros[16] = {0};

	core_buf_append(b, &magic, 4);
	core_buf_append(b, &version, 2);
	core_buf_append(b, &k, 2);
	core_buf_append(b, zeros, 16);	/* length, crc, reserved */
	return start;
}

CoreStatus
model_envelope_finish(CoreBuf *b, size_t start, CoreError *err)
{
	uint64		payload;
	pg_crc32c	crc;

	if (core_buf_status(b, err) != CORE_OK)
		return err->status;
	payload = (uint64) (b->len - start - MODEL_HEADER_SIZE);
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, b->data + start + MODEL_HEADER_SIZE, payload);
	FIN_CRC32C(crc);
	memcpy(b->data + start + 8, &payload, 8);
	memcpy(b->data + start + 16, &crc, 4);
	return CORE_OK;
}

CoreStatus
model_corrupt(CoreError *err, const char *detail)
{
	core_error(err, CORE_CORRUPT, "invalid media_reco model");
	return core_error_detail(err, "%s", detail);
}

CoreStatus
model_envelope_open(const char *p, size_t len, bool check_crc,
					ModelKind *kind_out, CoreReader *r, CoreError *err)
{
	uint32		magic;
	uint16		version,
				kind;
	uint64		payload;
	uint32		crc_stored,
				reserved;

	if (len < MODEL_HEADER_SIZE)
		return model_corrupt(err, "The value is shorter than a model header.");
	memcpy(&magic, p, 4);
	memcpy(&version, p + 4, 2);
	memcpy(&kind, p + 6, 2);
	memcpy(&payload, p + 8, 8);
	memcpy(&crc_stored, p + 16, 4);
	memcpy(&reserved, p + 20, 4);
	if (magic == pg_bswap32(MODEL_MAGIC))
		return model_corrupt(err, "The model was written on a machine with a different byte order.");
	if (magic != MODEL_MAGIC)
		return model_corrupt(err, "The value does not start with the media_reco model magic number.");
	if (version != MODEL_FORMAT_VERSION)
	{
		core_error(err, CORE_CORRUPT, "invalid media_reco model");
		return core_error_detail(err, "Model format version %u is not supported by this build (it reads version %d).",
								 version, MODEL_FORMAT_VERSION);
	}
	if (kind != MODEL_KIND_FOREST && kind != MODEL_KIND_MLP)
		return model_corrupt(err, "Unknown model kind.");
	if (reserved != 0)
		return model_corrupt(err, "Reserved header bytes are not zero.");
	if (payload != len - MODEL_HEADER_SIZE)
	{
		core_error(err, CORE_CORRUPT, "invalid media_reco model");
		return core_error_detail(err, "The header announces %llu payload bytes but the value holds %zu (truncated or padded).",
								 (unsigned long long) payload, len - MODEL_HEADER_SIZE);
	}
	if (check_crc)
	{
		pg_crc32c	crc;

		INIT_CRC32C(crc);
		COMP_CRC32C(crc, p + MODEL_HEADER_SIZE, payload);
		FIN_CRC32C(crc);
		if (crc != crc_stored)
			return model_corrupt(err, "The payload checksum does not match: the bytes were altered.");
	}
	*kind_out = (ModelKind) kind;
	if (r)
	{
		r->p = p + MODEL_HEADER_SIZE;
		r->left = payload;
	}
	return CORE_OK;
}

bool
payload_read(CoreReader *r, void *dst, size_t n, CoreError *err)
{
	if (core_read(r, dst, n))
		return true;
	model_corrupt(err, "The payload ends before the model structure does.");
	return false;
}

const char *
payload_take(CoreReader *r, size_t n, CoreError *err)
{
	const char *p = core_take(r, n);

	if (p == NULL)
		model_corrupt(err, "The payload ends before the model structure does.");
	return p;
}

CoreStatus
payload_end(const CoreReader *r, CoreError *err)
{
	if (r->left != 0)
		return model_corrupt(err, "The payload has trailing bytes after the model structure.");
	return CORE_OK;
}
