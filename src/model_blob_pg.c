/*
 * model_blob_pg.c
 *	  Model envelopes as bytea values, errors raised (see model_blob_pg.h).
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "core_pg.h"
#include "model_blob_pg.h"

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
	CoreBuf		b;
	CoreError	err;

	if ((Size) buf->len > MaxAllocSize - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model is too large to store (%d bytes)", buf->len)));
	/* the envelope's writer fills in length and checksum over the StringInfo's bytes */
	b.data = buf->data;
	b.len = buf->len;
	b.cap = buf->maxlen;
	b.alloc = NULL;
	b.failed = false;
	core_pg_check(model_envelope_finish(&b, VARHDRSZ, &err), &err);
	SET_VARSIZE(buf->data, buf->len);
	return (bytea *) buf->data;
}

bytea *
model_blob_bytea(CoreBuf *b)
{
	CoreError	err;

	core_pg_check(core_buf_status(b, &err), &err);
	if (b->len > MaxAllocSize - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model is too large to store (%zu bytes)", b->len)));
	SET_VARSIZE(b->data, b->len);
	return (bytea *) b->data;
}

void
blob_corrupt(const char *detail)
{
	CoreError	err;

	model_corrupt(&err, detail);
	core_pg_raise(&err);
}

static ModelKind
OpenBytea(const bytea *blob, bool check_crc, BlobReader *r)
{
	CoreError	err;
	ModelKind	kind;

	core_pg_check(model_envelope_open(VARDATA_ANY(blob), VARSIZE_ANY_EXHDR(blob), check_crc,
									  &kind, r, &err), &err);
	return kind;
}

ModelKind
model_blob_open(const bytea *blob, BlobReader *r)
{
	return OpenBytea(blob, true, r);
}

ModelKind
model_blob_kind(const bytea *blob)
{
	return OpenBytea(blob, false, NULL);
}

void
blob_read(BlobReader *r, void *dst, Size n)
{
	CoreError	err;

	if (!payload_read(r, dst, n, &err))
		core_pg_raise(&err);
}

const char *
blob_take(BlobReader *r, Size n)
{
	CoreError	err;
	const char *p = payload_take(r, n, &err);

	if (p == NULL)
		core_pg_raise(&err);
	return p;
}

void
blob_expect_end(BlobReader *r)
{
	CoreError	err;

	core_pg_check(payload_end(r, &err), &err);
}
