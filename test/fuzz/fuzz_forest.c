/*
 * fuzz_forest.c
 *	  forest_core_load on arbitrary bytes, as a whole model value (envelope
 *	  opened without the checksum, so mutations reach the payload parser)
 *	  or, when that fails, as a bare payload.  Whenever a load succeeds,
 *	  prediction on fixed rows must not crash and must give probabilities
 *	  (or a finite value): validated bytes are safe to predict on.  A model
 *	  with node covers (forest payload version 1) is also laid out for
 *	  TreeSHAP and explained on the same rows, every class: validated
 *	  covers are safe to explain with (no crash, no out-of-bounds path).
 */
#include "core.h"

#include <math.h>
#include <string.h>

#include "forest_core.h"
#include "model_blob.h"
#include "treeshap_core.h"
#include "fuzz_common.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static double rows[3][FOREST_MAX_FEATURES];
static double out[FOREST_MAX_CLASSES];
static double phi[FOREST_MAX_FEATURES];
static bool rows_ready = false;

static void
FillRows(void)
{
	for (int i = 0; i < FOREST_MAX_FEATURES; i++)
	{
		rows[0][i] = (i % 7) - 3.0;
		rows[1][i] = (i % 3 == 0) ? NAN : 1e300 * ((i & 1) ? -1 : 1);
		rows[2][i] = i * 0.25;
	}
	rows_ready = true;
}

static void
Predict(const Forest *f)
{
	for (int k = 0; k < 3; k++)
	{
		double		v;

		forest_predict(f, rows[k], out);
		if (f->task == FOREST_CLASSIFICATION)
		{
			double		sum = 0;

			for (int32 c = 0; c < f->n_classes; c++)
			{
				FUZZ_CHECK(out[c] >= -1e-9 && out[c] <= 1 + 1e-9);
				sum += out[c];
			}
			FUZZ_CHECK(fabs(sum - 1) < 1e-6);
		}
		else
			FUZZ_CHECK(isfinite(out[0]));
		v = forest_predict_value(f, rows[k], out);
		if (f->task == FOREST_CLASSIFICATION)
		{
			bool		found = false;

			for (int32 c = 0; c < f->n_classes; c++)
				found |= f->classes[c] == v;
			FUZZ_CHECK(found);
		}
		else
			FUZZ_CHECK(isfinite(v));
	}
}

static void
Explain(FuzzArena *ar, const Forest *f)
{
	ShapForest *sf;
	CoreError	err;

	if (f->payload_version < 1)
	{
		FUZZ_CHECK(treeshap_build(&ar->alloc, f, &sf, &err) == CORE_INVALID);
		return;
	}
	if (treeshap_build(&ar->alloc, f, &sf, &err) != CORE_OK)
	{
		FUZZ_CHECK(err.status == CORE_NOMEM || err.status == CORE_LIMIT);
		return;
	}
	for (int k = 0; k < 3; k++)
		for (int32 c = 0; c < Min(f->value_width, 4); c++)
		{
			treeshap_explain(sf, rows[k], c, phi, NULL);
			(void) treeshap_base_value(sf, c);
		}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	ar;
	CoreError	err;
	CoreReader	r;
	ModelKind	kind;
	Forest	   *f = NULL;

	if (!rows_ready)
		FillRows();
	fuzz_arena_init(&ar);
	if (model_envelope_open((const char *) data, size, false, &kind, &r, &err) != CORE_OK ||
		kind != MODEL_KIND_FOREST)
	{
		r.p = (const char *) data;
		r.left = size;
	}
	if (forest_core_load(&ar.alloc, &r, NULL, &f, &err) == CORE_OK)
	{
		FUZZ_CHECK(f != NULL && r.left == 0);
		Predict(f);
		Explain(&ar, f);
	}
	else
		FUZZ_CHECK(f == NULL && (err.status == CORE_CORRUPT || err.status == CORE_NOMEM ||
								 err.status == CORE_LIMIT));
	fuzz_arena_reset(&ar);
	return 0;
}
