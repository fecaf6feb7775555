/*
 * state_codec.c
 *	  Bounded decoders of the parallel aggregate states (see state_codec.h).
 *	  Integers and float8s are read as pq_getmsgint / pq_getmsgint64 /
 *	  pq_getmsgfloat8 read them (network byte order); the forest_fit matrices
 *	  are raw native-order copies, as pq_sendbytes wrote them.
 */
#include "core.h"

#include <math.h>
#include <string.h>

#include "port/pg_bswap.h"

#include "state_codec.h"

static CoreStatus
Invalid(CoreError *err, const char *what, const char *detail)
{
	core_error(err, CORE_CORRUPT, "invalid %s state", what);
	return core_error_detail(err, "%s", detail);
}

static bool
ReadInt32(CoreReader *r, int32 *v)
{
	uint32		u;

	if (!core_read(r, &u, 4))
		return false;
	*v = (int32) pg_ntoh32(u);
	return true;
}

static bool
ReadInt64(CoreReader *r, int64 *v)
{
	uint64		u;

	if (!core_read(r, &u, 8))
		return false;
	*v = (int64) pg_ntoh64(u);
	return true;
}

static bool
ReadFloat8(CoreReader *r, double *v)
{
	int64		i;

	if (!ReadInt64(r, &i))
		return false;
	memcpy(v, &i, 8);
	return true;
}

/* the size a 4-byte varlena header announces, or -1 when it is not one */
static int64
VarlenaSize(const char *p)
{
	uint32		h;

	memcpy(&h, p, 4);
#ifdef WORDS_BIGENDIAN
	if ((h & 0xC0000000U) != 0)
		return -1;
	return h & 0x3FFFFFFFU;
#else
	if ((h & 0x03U) != 0)
		return -1;
	return (h >> 2) & 0x3FFFFFFFU;
#endif
}

CoreStatus
forest_fit_state_decode(const CoreAlloc *a, const char *data, size_t len, int32 max_features,
						ForestFitStateData *out, CoreError *err)
{
	CoreReader	r = {data, len};
	const char *opt;
	size_t		cells;

	memset(out, 0, sizeof(*out));
	if (!ReadInt32(&r, &out->nf) || !ReadInt64(&r, &out->n) || !ReadInt32(&r, &out->optlen))
		return Invalid(err, "forest_fit", "The value is shorter than the state's header.");
	if (out->nf < 1 || out->nf > max_features)
		return Invalid(err, "forest_fit", "The feature count is out of range.");
	if (out->n < 0 || out->optlen < 0)
		return Invalid(err, "forest_fit", "A count is negative.");
	/* n * (nf + 1) doubles and the options must be exactly the bytes left */
	if ((size_t) out->optlen > r.left ||
		(uint64) out->n > (r.left - out->optlen) / (sizeof(double) * ((size_t) out->nf + 1)) ||
		(size_t) out->n * (out->nf + 1) * sizeof(double) != r.left - out->optlen)
		return Invalid(err, "forest_fit", "The row and option counts do not match the value's length.");
	if (out->optlen > 0)
	{
		if (out->optlen < 8 || VarlenaSize(r.p) != out->optlen)
			return Invalid(err, "forest_fit", "The options are not a jsonb value of the announced length.");
		out->options = core_array(a, out->optlen, 1, false, err);
		if (out->options == NULL)
			return err->status;
		opt = core_take(&r, out->optlen);
		memcpy(out->options, opt, out->optlen);
	}
	cells = (size_t) out->n * out->nf;
	if ((out->x = core_array(a, cells, sizeof(double), false, err)) == NULL ||
		(out->y = core_array(a, out->n, sizeof(double), false, err)) == NULL)
		return err->status;
	(void) core_read(&r, out->x, cells * sizeof(double));
	(void) core_read(&r, out->y, (size_t) out->n * sizeof(double));
	/* what the transition function accepts: NaN (missing) or finite features, finite labels */
	for (size_t i = 0; i < cells; i++)
		if (isinf(out->x[i]))
			return Invalid(err, "forest_fit", "A feature value is infinite.");
	for (int64 i = 0; i < out->n; i++)
		if (!isfinite(out->y[i]) || fabs(out->y[i]) > 1e300)
			return Invalid(err, "forest_fit", "A label is not finite or above 1e300 in magnitude.");
	return CORE_OK;
}

CoreStatus
roc_auc_state_decode(const CoreAlloc *a, const char *data, size_t len,
					 RocAucStateData *out, CoreError *err)
{
	CoreReader	r = {data, len};

	memset(out, 0, sizeof(*out));
	if (!ReadInt64(&r, &out->n))
		return Invalid(err, "roc_auc", "The value is shorter than the state's header.");
	if (out->n < 0 || (uint64) out->n != r.left / 9 || r.left % 9 != 0)
		return Invalid(err, "roc_auc", "The point count does not match the value's length.");
	if ((out->scores = core_array(a, out->n, sizeof(double), false, err)) == NULL ||
		(out->labels = core_array(a, out->n, sizeof(bool), false, err)) == NULL)
		return err->status;
	for (int64 i = 0; i < out->n; i++)
	{
		uint8		label;

		(void) ReadFloat8(&r, &out->scores[i]);
		(void) core_read(&r, &label, 1);
		if (isnan(out->scores[i]))
			return Invalid(err, "roc_auc", "A score is NaN.");
		if (label > 1)
			return Invalid(err, "roc_auc", "A label byte is neither 0 nor 1.");
		out->labels[i] = label != 0;
	}
	return CORE_OK;
}

CoreStatus
confusion_state_decode(const CoreAlloc *a, const char *data, size_t len,
					   ConfusionStateData *out, CoreError *err)
{
	CoreReader	r = {data, len};
	int64		total = 0;

	memset(out, 0, sizeof(*out));
	if (!ReadInt64(&r, &out->n))
		return Invalid(err, "confusion_matrix", "The value is shorter than the state's header.");
	if (out->n < 0 || (uint64) out->n != r.left / 24 || r.left % 24 != 0)
		return Invalid(err, "confusion_matrix", "The pair count does not match the value's length.");
	if ((out->actual = core_array(a, out->n, sizeof(double), false, err)) == NULL ||
		(out->predicted = core_array(a, out->n, sizeof(double), false, err)) == NULL ||
		(out->count = core_array(a, out->n, sizeof(int64), false, err)) == NULL)
		return err->status;
	for (int64 i = 0; i < out->n; i++)
	{
		(void) ReadFloat8(&r, &out->actual[i]);
		(void) ReadFloat8(&r, &out->predicted[i]);
		(void) ReadInt64(&r, &out->count[i]);
		if (!isfinite(out->actual[i]) || !isfinite(out->predicted[i]))
			return Invalid(err, "confusion_matrix", "A class is not finite.");
		if (out->count[i] < 1 || out->count[i] > PG_INT64_MAX - total)
			return Invalid(err, "confusion_matrix", "A count is below 1 or the counts overflow.");
		total += out->count[i];
	}
	return CORE_OK;
}
