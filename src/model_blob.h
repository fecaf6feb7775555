/*
 * model_blob.h
 *	  The envelope every stored model shares: magic, format version, kind,
 *	  payload length and a CRC-32C, plus a bounds-checked reader.
 *
 * Layout (native byte order, checked through the magic):
 *	  uint32 magic 'MRM1' | uint16 version | uint16 kind | uint64 payload length |
 *	  uint32 crc32c of the payload | uint32 reserved (0) | payload
 * Any truncation, flipped bit or foreign bytes fails here or in the kind's own
 * structural checks with ERRCODE_INVALID_BINARY_REPRESENTATION (22P03).
 */
#ifndef MEDIA_RECO_MODEL_BLOB_H
#define MEDIA_RECO_MODEL_BLOB_H

#include "postgres.h"
#include "lib/stringinfo.h"

#define MODEL_MAGIC			0x314D524DU	/* "MRM1" on little-endian machines */
#define MODEL_FORMAT_VERSION 1
#define MODEL_HEADER_SIZE	24

typedef enum ModelKind
{
	MODEL_KIND_FOREST = 1,
	MODEL_KIND_MLP = 2
} ModelKind;

typedef struct BlobReader
{
	const char *p;
	Size		left;
} BlobReader;

/* writing: start, append the payload with appendBinaryStringInfo, finish */
extern void model_blob_begin(StringInfo buf, ModelKind kind);
extern bytea *model_blob_finish(StringInfo buf);

/* reading: checks the envelope and returns the kind; the reader covers the payload */
extern ModelKind model_blob_open(const bytea *blob, BlobReader *r);
extern ModelKind model_blob_kind(const bytea *blob);
extern void blob_read(BlobReader *r, void *dst, Size n);
extern const char *blob_take(BlobReader *r, Size n);
extern void blob_expect_end(BlobReader *r);
extern void blob_corrupt(const char *detail) pg_attribute_noreturn();

#endif
