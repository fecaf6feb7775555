// FUZZ_SOURCES: src/core.c src/model_blob.c src/training_core.c src/mlp_core.c
// FUZZ_LIBS: -L/usr/lib/x86_64-linux-gnu/openblas-serial -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-serial -lopenblas -lm
/*
 * fuzz_mlp.c
 *	  mlp_core_load on arbitrary bytes: as a whole model value (the envelope
 *	  opened without the checksum, so mutations reach the payload parser) or,
 *	  when the envelope does not open, as a bare payload.  Whenever a load
 *	  succeeds, one prediction on each of two fixed rows must not crash and
 *	  must give finite probabilities summing to 1 (or a finite value), or
 *	  CORE_RANGE: validated bytes are safe to predict on.
 *
 * Build (what test/fuzz/run.sh does, by hand), from the repository root:
 *	  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *		-Isrc -I$(pg_config --includedir-server) test/fuzz/fuzz_mlp.c <FUZZ_SOURCES> \
 *		/usr/lib/postgresql/15/lib/libpgcommon.a /usr/lib/postgresql/15/lib/libpgport.a <FUZZ_LIBS>
 * Seeds: test/fuzz/corpus/fuzz_mlp/, written by test/fuzz/gen_mlp_seeds.c.
 */
#include "core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlp_core.h"
#include "model_blob.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* an arena emptied after every input; a cap turns hostile sizes into CORE_NOMEM */
#define ARENA_CAP ((size_t) 256 << 20)

typedef struct Block
{
	struct Block *next;
	size_t		size;
	max_align_t pad[];
} Block;

static Block *blocks;
static size_t held;

static void *
ArenaAlloc(void *ctx, size_t size)
{
	Block	   *b;

	(void) ctx;
	if (size > ARENA_CAP - held || (b = malloc(sizeof(Block) + size)) == NULL)
		return NULL;
	b->next = blocks;
	b->size = size;
	blocks = b;
	held += size;
	return b->pad;
}

static void
ArenaReset(void)
{
	while (blocks)
	{
		Block	   *b = blocks;

		blocks = b->next;
		free(b);
	}
	held = 0;
}

/* free is a no-op until the reset: the cores never rely on it for correctness */
static const CoreAlloc arena = {ArenaAlloc, NULL, NULL};

static double rows[2][MLP_MAX_INPUTS];
static double out[MLP_MAX_CLASSES];

static void
FillRows(void)
{
	for (int i = 0; i < MLP_MAX_INPUTS; i++)
	{
		rows[0][i] = (i % 5) - 1.5;		/* numbers, and codes 0..3 for categories */
		rows[1][i] = (i % 3 == 0) ? NAN : 1e6 * ((i & 1) ? -1 : 1);
	}
}

static void
PredictChecked(const Mlp *m)
{
	for (int k = 0; k < 2; k++)
	{
		CoreError	err;
		int32		n_out = m->regression ? 1 : m->n_classes;
		double		sum = 0;

		if (mlp_core_predict(m, rows[k], out, &err) != CORE_OK)
		{
			if (err.status != CORE_RANGE)
				__builtin_trap();
			continue;
		}
		for (int32 c = 0; c < n_out; c++)
		{
			if (!isfinite(out[c]))
				__builtin_trap();
			if (!m->regression && (out[c] < 0 || out[c] > 1))
				__builtin_trap();
			sum += out[c];
		}
		if (!m->regression && !(fabs(sum - 1) < 1e-9))
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready = false;
	CoreError	err;
	CoreReader	r;
	ModelKind	kind;
	Mlp		   *m = NULL;
	CoreStatus	st;

	if (!ready)
	{
		FillRows();
		ready = true;
	}
	if (model_envelope_open((const char *) data, size, false, &kind, &r, &err) != CORE_OK ||
		kind != MODEL_KIND_MLP)
	{
		r.p = (const char *) data;
		r.left = size;
	}
	st = mlp_core_load(&arena, &r, &m, &err);
	if (st == CORE_OK)
	{
		if (m == NULL || m->n_in < 1 || m->n_in > MLP_MAX_INPUTS)
			__builtin_trap();
		PredictChecked(m);
	}
	else if (st != CORE_CORRUPT && st != CORE_NOMEM)
		__builtin_trap();
	ArenaReset();
	return 0;
}
