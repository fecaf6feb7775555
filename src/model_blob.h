/*
 * model_blob.h
 *	  The envelope every stored model shares: magic, format version, kind,
 *	  payload length and a CRC-32C, plus bounded payload readers.  Plain C
 *	  (core.h): the decoders of untrusted model bytes run without a server
 *	  (test/fuzz).
 *
 * Layout (native byte order, checked through the magic):
 *	  uint32 magic 'MRM1' | uint16 version | uint16 kind | uint64 payload length |
 *	  uint32 crc32c of the payload | uint32 reserved (0) | payload
 * Any truncation, flipped bit or foreign bytes fails here or in the kind's own
 * structural checks with CORE_CORRUPT (22P03 in the server), message
 * "invalid media_reco model" and a detail saying what is wrong.
 */
#ifndef MEDIA_RECO_MODEL_BLOB_H
#define MEDIA_RECO_MODEL_BLOB_H

#include "core.h"

#define MODEL_MAGIC			0x314D524DU	/* "MRM1" on little-endian machines */
#define MODEL_FORMAT_VERSION 1
#define MODEL_HEADER_SIZE	24

typedef enum ModelKind
{
	MODEL_KIND_FOREST = 1,
	MODEL_KIND_MLP = 2
} ModelKind;

/*
 * Writing: model_envelope_begin appends a header at the buffer's end and
 * returns its offset; the kind appends its payload; model_envelope_finish
 * fills in the payload length and checksum (CORE_OK, or the buffer's error).
 */
extern size_t model_envelope_begin(CoreBuf *b, ModelKind kind);
extern CoreStatus model_envelope_finish(CoreBuf *b, size_t start, CoreError *err);

/*
 * Reading: checks the envelope of data[0..len-1] (the checksum too when
 * check_crc), sets *kind and points *payload at the payload.
 */
extern CoreStatus model_envelope_open(const char *data, size_t len, bool check_crc,
									  ModelKind *kind, CoreReader *payload, CoreError *err);

/* CORE_CORRUPT "invalid media_reco model" with the given detail sentence */
extern CoreStatus model_corrupt(CoreError *err, const char *detail);

/* payload readers for the kinds' parsers: false/NULL with err set when the payload is too short */
extern bool payload_read(CoreReader *r, void *dst, size_t n, CoreError *err);
extern const char *payload_take(CoreReader *r, size_t n, CoreError *err);
extern CoreStatus payload_end(const CoreReader *r, CoreError *err);

#endif
