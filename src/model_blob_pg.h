/*
 * model_blob_pg.h
 *	  The server side of the model envelope (model_blob.h): bytea in and out,
 *	  errors raised.  The BlobReader calls below are the raising forms of the
 *	  plain-C payload readers, for parsers not yet returning CoreErrors.
 */
#ifndef MEDIA_RECO_MODEL_BLOB_PG_H
#define MEDIA_RECO_MODEL_BLOB_PG_H

#include "postgres.h"
#include "lib/stringinfo.h"

#include "model_blob.h"

typedef CoreReader BlobReader;

/* writing: start, append the payload with appendBinaryStringInfo, finish */
extern void model_blob_begin(StringInfo buf, ModelKind kind);
extern bytea *model_blob_finish(StringInfo buf);

/* a finished CoreBuf that began with VARHDRSZ spare bytes, as a bytea (54000 beyond 1 GB) */
extern bytea *model_blob_bytea(CoreBuf *b);

/* reading: checks the envelope (22P03) and returns the kind; the reader covers the payload */
extern ModelKind model_blob_open(const bytea *blob, BlobReader *r);
extern ModelKind model_blob_kind(const bytea *blob);
extern void blob_read(BlobReader *r, void *dst, Size n);
extern const char *blob_take(BlobReader *r, Size n);
extern void blob_expect_end(BlobReader *r);
extern void blob_corrupt(const char *detail) pg_attribute_noreturn();

#endif
