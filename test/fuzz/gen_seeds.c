/*
 * gen_seeds.c
 *	  Writes the seed corpora of test/fuzz/corpus/: real models trained by
 *	  forest_core_train on small generated data (binary, multi-class,
 *	  regression, missing values, a wide model that cannot be compacted),
 *	  each as a model value, as a bare payload and truncated; and aggregate
 *	  states in the serialisers' layout.  Run by gen_seeds.sh; the output is
 *	  committed, so the fuzz run does not depend on it.
 */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port/pg_bswap.h"

#include "forest_core.h"
#include "model_blob.h"

static const char *outdir;

static void
WriteFile(const char *target, const char *name, const void *p, size_t n)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
}

static void
Model(const char *name, ForestTask task, int32 nclass, int32 nf, int32 n, int32 ntrees,
	  bool missing, int max_depth)
{
	double	   *x = malloc(sizeof(double) * n * nf);
	double	   *y = malloc(sizeof(double) * n);
	ForestParams p;
	ForestTrainEnv env = {&core_malloc_alloc, NULL, NULL, NULL, 1, (size_t) 1 << 30};
	ForestTrainInfo info;
	CoreBuf		b;
	CoreError	err;
	char		fname[128];

	for (int32 i = 0; i < n; i++)
	{
		double		s = 0;

		for (int32 f = 0; f < nf; f++)
		{
			x[(size_t) i * nf + f] = (missing && (i + f) % 5 == 0) ? NAN : (double) ((i * 31 + f * 17) % 23) - 11;
			s += x[(size_t) i * nf + f] * (f % 3 == 0);
		}
		if (isnan(s))
			s = i;
		y[i] = task == FOREST_REGRESSION ? s * 0.5 + (i % 4) : (double) (((int64) fabs(s) + i % 2) % nclass);
	}
	memset(&p, 0, sizeof(p));
	p.task = task;
	p.n_trees = ntrees;
	p.max_depth = max_depth;
	p.min_samples_leaf = 1;
	p.min_samples_split = 2;
	p.max_features_mode = MAXF_DEFAULT;
	p.bootstrap = true;
	p.sample_fraction = 1.0;
	p.seed = 42;
	core_buf_init(&b, &core_malloc_alloc, 256);
	if (forest_core_train(n, nf, x, y, &p, &env, &b, &info, &err) != CORE_OK)
	{
		fprintf(stderr, "%s: %s\n", name, err.message);
		exit(1);
	}
	snprintf(fname, sizeof(fname), "%s.model", name);
	WriteFile("fuzz_forest", fname, b.data, b.len);
	snprintf(fname, sizeof(fname), "%s.payload", name);
	WriteFile("fuzz_forest", fname, b.data + MODEL_HEADER_SIZE, b.len - MODEL_HEADER_SIZE);
	snprintf(fname, sizeof(fname), "%s.cut", name);
	WriteFile("fuzz_forest", fname, b.data + MODEL_HEADER_SIZE, (b.len - MODEL_HEADER_SIZE) * 2 / 3);
	snprintf(fname, sizeof(fname), "%s.model", name);
	WriteFile("fuzz_envelope", fname, b.data, b.len);
	snprintf(fname, sizeof(fname), "%s.head", name);
	WriteFile("fuzz_envelope", fname, b.data, MODEL_HEADER_SIZE + 7);
	fprintf(stderr, "%s: %zu bytes, %lld nodes\n", name, b.len, (long long) info.nodes);
	free(b.data);
	free(x);
	free(y);
	free(info.classes);
}

/* pq_send* layout: big-endian integers and float8 bits */
static void
Put64(char **w, uint64 v)
{
	v = pg_hton64(v);
	memcpy(*w, &v, 8);
	*w += 8;
}

static void
PutF8(char **w, double d)
{
	uint64		v;

	memcpy(&v, &d, 8);
	Put64(w, v);
}

static void
States(void)
{
	char		buf[4096];
	char	   *w;

	/* roc_auc: selector byte 1 */
	w = buf;
	*w++ = 1;
	Put64(&w, 4);
	for (int i = 0; i < 4; i++)
	{
		PutF8(&w, i * 0.3 - 0.2);
		*w++ = (char) (i & 1);
	}
	WriteFile("fuzz_states", "roc_auc", buf, w - buf);
	WriteFile("fuzz_states", "roc_auc.cut", buf, (w - buf) - 3);
	/* confusion_matrix: selector byte 2 */
	w = buf;
	*w++ = 2;
	Put64(&w, 3);
	for (int i = 0; i < 3; i++)
	{
		PutF8(&w, i % 2);
		PutF8(&w, i / 2);
		Put64(&w, 5 + i);
	}
	WriteFile("fuzz_states", "confusion", buf, w - buf);
	WriteFile("fuzz_states", "confusion.cut", buf, (w - buf) - 9);
	/* forest_fit: selector byte 0; nf 2, n 3, a jsonb '{}' of 8 bytes */
	{
		uint32		v;
		uint32		hdr = 8 << 2;	/* 4-byte varlena header, little-endian layout */
		uint32		jb = 0x20000000U;	/* an empty jsonb object */

		w = buf;
		*w++ = 0;
		v = pg_hton32(2);
		memcpy(w, &v, 4);
		w += 4;
		Put64(&w, 3);
		v = pg_hton32(8);
		memcpy(w, &v, 4);
		w += 4;
		memcpy(w, &hdr, 4);
		w += 4;
		memcpy(w, &jb, 4);
		w += 4;
		for (int i = 0; i < 9; i++)
		{
			double		d = i == 4 ? NAN : i * 1.5;

			memcpy(w, &d, 8);
			w += 8;
		}
		WriteFile("fuzz_states", "forest_fit", buf, w - buf);
		WriteFile("fuzz_states", "forest_fit.cut", buf, (w - buf) - 8);
	}
}

int
main(int argc, char **argv)
{
	if (argc != 2)
	{
		fprintf(stderr, "usage: gen_seeds corpus-dir\n");
		return 2;
	}
	outdir = argv[1];
	Model("binary", FOREST_CLASSIFICATION, 2, 4, 60, 3, false, 0);
	Model("multiclass", FOREST_CLASSIFICATION, 4, 5, 80, 3, true, 0);
	Model("regression", FOREST_REGRESSION, 0, 3, 50, 2, true, 5);
	Model("stump", FOREST_CLASSIFICATION, 2, 1, 8, 1, false, 1);
	Model("wide", FOREST_CLASSIFICATION, 3, 300, 30, 1, false, 3);
	States();
	return 0;
}
