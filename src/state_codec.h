/*
 * state_codec.h
 *	  Decoders of the aggregate states that parallel workers send as bytea
 *	  (forest_fit, roc_auc, confusion_matrix): bytes -> struct, every read
 *	  bounded.  Plain C (core.h), so they are fuzzed without a server
 *	  (test/fuzz/fuzz_states.c); the serialisers stay beside their
 *	  aggregates, in the pq_send* layout (big-endian integers and float8s).
 *
 * Any malformed value (short, long, counts that disagree with the length,
 * values the aggregate itself never holds) is CORE_CORRUPT (22P03 in the
 * server), message "invalid <aggregate> state", and a detail saying what is
 * wrong.  Memory comes from the caller's allocator; after an error the
 * partial arrays are left to the allocator's owner.  Main thread only.
 */
#ifndef MEDIA_RECO_STATE_CODEC_H
#define MEDIA_RECO_STATE_CODEC_H

#include "core.h"

/*
 * forest_fit: int32 nf | int64 n | int32 optlen | options (a jsonb varlena,
 * optlen bytes, or none) | float8 x[n * nf] | float8 y[n] (native order,
 * raw copies of the matrices).
 */
typedef struct ForestFitStateData
{
	int32		nf;
	int64		n;
	int32		optlen;			/* 0: no options */
	char	   *options;		/* [optlen], an aligned copy of the jsonb value */
	double	   *x;				/* [n * nf], row-major */
	double	   *y;				/* [n] */
} ForestFitStateData;

/* nf is also checked against 1..max_features */
extern CoreStatus forest_fit_state_decode(const CoreAlloc *a, const char *data, size_t len,
										  int32 max_features, ForestFitStateData *out,
										  CoreError *err);

/* roc_auc: int64 n | n times (float8 score, byte label 0/1); scores are not NaN */
typedef struct RocAucStateData
{
	int64		n;
	double	   *scores;			/* [n] */
	bool	   *labels;			/* [n] */
} RocAucStateData;

extern CoreStatus roc_auc_state_decode(const CoreAlloc *a, const char *data, size_t len,
									   RocAucStateData *out, CoreError *err);

/*
 * confusion_matrix: int64 n | n times (float8 actual, float8 predicted,
 * int64 count); classes finite, counts >= 1 and their total within int64,
 * so that merging them cannot overflow.
 */
typedef struct ConfusionStateData
{
	int64		n;
	double	   *actual;			/* [n] */
	double	   *predicted;		/* [n] */
	int64	   *count;			/* [n] */
} ConfusionStateData;

extern CoreStatus confusion_state_decode(const CoreAlloc *a, const char *data, size_t len,
										 ConfusionStateData *out, CoreError *err);

#endif
