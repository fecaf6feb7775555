/*
 * gen_mlp_seeds.c
 *	  Writes the seed corpus of fuzz_mlp (test/fuzz/corpus/fuzz_mlp/): small
 *	  networks trained by the core on synthetic data, each as a whole model
 *	  value (<name>.model) and as a bare payload (<name>.payload), covering
 *	  both tasks, every activation, categorical inputs, no hidden layer and
 *	  several hidden layers.  Run by gen_mlp_seeds.sh; the output depends
 *	  only on the seeds below, so regenerating gives the same files.
 */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp_core.h"
#include "model_blob.h"

typedef struct Config
{
	const char *name;
	bool		regression;
	int			n_hidden;
	int			hidden[3];
	MlpActivation act;
	bool		adam;
	int			n_in;
	int			levels[4];
	int			n_classes;
} Config;

static const Config configs[] = {
	{"cls_relu", false, 2, {6, 4}, MLP_RELU, true, 3, {0, 0, 3}, 3},
	{"reg_tanh", true, 1, {5}, MLP_TANH, false, 2, {0, 0}, 0},
	{"cls_logistic", false, 1, {3}, MLP_LOGISTIC, true, 1, {0}, 2},
	{"cls_nohidden", false, 0, {0}, MLP_RELU, true, 4, {0, 5, 0, 2}, 4},
	{"reg_deep", true, 3, {4, 4, 3}, MLP_RELU, true, 2, {0, 0}, 0},
};

static uint64
Next(uint64 *s)
{
	uint64		z = (*s += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static void
WriteFile(const char *dir, const char *name, const char *ext, const char *data, size_t len)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	enum
	{
		N = 120
	};

	if (argc != 2)
	{
		fprintf(stderr, "usage: gen_mlp_seeds DIR\n");
		return 2;
	}
	for (int k = 0; k < lengthof(configs); k++)
	{
		const Config *c = &configs[k];
		static double x[N * 4],
					y[N];
		MlpParams	p;
		MlpTrainInfo info;
		CoreBuf		buf;
		CoreError	err;
		uint64		s = 1000 + k;

		for (int i = 0; i < N; i++)
		{
			double		t = 0;

			for (int j = 0; j < c->n_in; j++)
			{
				double		v = c->levels[j] ? (double) (Next(&s) % c->levels[j])
					: (double) (Next(&s) % 1000) / 100.0;

				x[i * c->n_in + j] = (Next(&s) % 17 == 0) ? NAN : v;
				t += v * (j + 1);
			}
			y[i] = c->regression ? t : (double) (((int) t) % c->n_classes);
		}
		memset(&p, 0, sizeof(p));
		p.regression = c->regression;
		p.n_hidden = c->n_hidden;
		memcpy(p.hidden, c->hidden, sizeof(c->hidden));
		p.activation = c->act;
		p.adam = c->adam;
		p.learning_rate = 0.01;
		p.momentum = 0.9;
		p.batch_size = 32;
		p.epochs = 5;
		p.validation_fraction = 0.1;
		p.patience = 10;
		p.tol = 1e-4;
		p.l2 = 1e-4;
		p.seed = 7 + k;
		core_buf_init(&buf, &core_malloc_alloc, 256);
		if (mlp_core_train(&core_malloc_alloc, &core_no_interrupts, N, c->n_in, x, y, c->levels,
						   &p, (size_t) 1 << 30, &buf, &info, &err) != CORE_OK)
		{
			fprintf(stderr, "%s: %s\n", c->name, err.message);
			return 1;
		}
		WriteFile(argv[1], c->name, "model", buf.data, buf.len);
		WriteFile(argv[1], c->name, "payload", buf.data + MODEL_HEADER_SIZE, buf.len - MODEL_HEADER_SIZE);
		printf("%s: %zu bytes\n", c->name, buf.len);
	}
	return 0;
}
