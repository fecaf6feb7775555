/*
 * model_blob.c
 *	  The shared model envelope: writing it, and validating it before any
 *	  kind-specific parser looks at the payload.
 */
#include "postgres.h"

#include "port/pg_crc32c.h"
#include "port/pg_bswap.h"
#include "utils/memutils.h"

#include "model_blob.h"

void
model_blob_begin(StringInfo buf, ModelKind kind)
{
	uint32		magic = MODEL_MAGIC;
	uint16		version = MODEL_FORMAT_VERSION;
	uint16		k = (uint16) kind;
	char		zeros[16] = {0};

	initStringInfo(buf);
	/* room for the varlena header, filled in by model_blob_finish */
	appendBinaryStringInfo(buf, zeros, VARHDRSZ);
	appendBinaryStringInfo(buf, (char *) &magic, 4);
	appendBinaryStringInfo(buf, (char *) &version, 2);
	appendBinaryStringInfo(buf, (char *) &k, 2);
	appendBinaryStringInfo(buf, zeros, 16);	/* length, crc, reserved */
}

bytea *
model_blob_finish(StringInfo buf)
{
	char	   *base = buf->data;
	uint64		payload = (uint64) buf->len - VARHDRSZ - MODEL_HEADER_SIZE;
	pg_crc32c	crc;

	if ((Size) buf->len > MaxAllocSize - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model is too large to store (%d bytes)", buf->len)));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, base + VARHDRSZ + MODEL_HEADER_SIZE, payload);
	FIN_CRC32C(crc);
	memcpy(base + VARHDRSZ + 8, &payload, 8);
	memcpy(base + VARHDRSZ + 16, &crc, 4);
	SET_VARSIZE(base, buf->len);
	return (bytea *) base;
}

void
blob_corrupt(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid media_reco model"),
			 errdetail("%s", detail)));
}

static ModelKind
CheckHeader(const bytea *blob, bool check_crc, BlobReader *r)
{
	const char *p = VARDATA_ANY(blob);
	Size		len = VARSIZE_ANY_EXHDR(blob);
	uint32		magic;
	uint16		version,
				kind;
	uint64		payload;
	uint32		crc_stored,
				reserved;

	if (len < MODEL_HEADER_SIZE)
		blob_corrupt("The value is shorter than a model header.");
	memcpy(&magic, p, 4);
	memcpy(&version, p + 4, 2);
	memcpy(&kind, p + 6, 2);
	memcpy(&payload, p + 8, 8);
	memcpy(&crc_stored, p + 16, 4);
	memcpy(&reserved, p + 20, 4);
	if (magic == pg_bswap32(MODEL_MAGIC))
		blob_corrupt("The model was written on a machine with a different byte order.");
	if (magic != MODEL_MAGIC)
		blob_corrupt("The value does not start with the media_reco model magic number.");
	if (version != MODEL_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid media_reco model"),
				 errdetail("Model format version %u is not supported by this build (it reads version %d).",
						   version, MODEL_FORMAT_VERSION)));
	if (kind != MODEL_KIND_FOREST && kind != MODEL_KIND_MLP)
		blob_corrupt("Unknown model kind.");
	if (reserved != 0)
		blob_corrupt("Reserved header bytes are not zero.");
	if (payload != len - MODEL_HEADER_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid media_reco model"),
				 errdetail("The header announces %llu payload bytes but the value holds %zu (truncated or padded).",
						   (unsigned long long) payload, len - MODEL_HEADER_SIZE)));
	if (check_crc)
	{
		pg_crc32c	crc;

		INIT_CRC32C(crc);
		COMP_CRC32C(crc, p + MODEL_HEADER_SIZE, payload);
		FIN_CRC32C(crc);
		if (crc != crc_stored)
			blob_corrupt("The payload checksum does not match: the bytes were altered.");
	}
	if (r)
	{
		r->p = p + MODEL_HEADER_SIZE;
		r->left = payload;
	}
	return (ModelKind) kind;
}

ModelKind
model_blob_open(const bytea *blob, BlobReader *r)
{
	return CheckHeader(blob, true, r);
}

ModelKind
model_blob_kind(const bytea *blob)
{
	return CheckHeader(blob, false, NULL);
}

void
blob_read(BlobReader *r, void *dst, Size n)
{
	memcpy(dst, blob_take(r, n), n);
}

const char *
blob_take(BlobReader *r, Size n)
{
	const char *p = r->p;

	if (n > r->left)
		blob_corrupt("The payload ends before the model structure does.");
	r->p += n;
	r->left -= n;
	return p;
}

void
blob_expect_end(BlobReader *r)
{
	if (r->left != 0)
		blob_corrupt("The payload has trailing bytes after the model structure.");
}
