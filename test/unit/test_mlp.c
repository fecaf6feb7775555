/*
 * test_mlp.c
 *	  The network core: prediction on hand-set weights against a forward
 *	  pass written out in the test, softmax at huge logits, loading damaged
 *	  bytes, training's determinism (also with every product sliced),
 *	  accuracy on separable data, its errors and interrupt polls.
 */
#include "unit.h"

#include <stdlib.h>

#include "mlp_core.h"
#include "model_blob.h"

/* a network written by hand in the payload layout of mlp_core.c's WriteMlp */
typedef struct HandNet
{
	uint8		regression,
				activation;
	int32		n_in,
				nc,
				L;
	int32		sizes[MLP_MAX_LAYERS + 2];
	int32		levels[8];
	double		mean[8],
				scale[8],
				classes[8];
	double	   *W[MLP_MAX_LAYERS + 1],
			   *b[MLP_MAX_LAYERS + 1];
} HandNet;

static void
WriteHand(const HandNet *h, CoreBuf *buf)
{
	uint8		head[4] = {h->regression, h->activation, 0, 0};
	CoreError	err;
	size_t		start;

	core_buf_init(buf, &unit_arena, 64);
	start = model_envelope_begin(buf, MODEL_KIND_MLP);
	core_buf_append(buf, head, 4);
	core_buf_append(buf, &h->n_in, 4);
	core_buf_append(buf, &h->nc, 4);
	core_buf_append(buf, &h->L, 4);
	core_buf_append(buf, h->sizes, 4 * (h->L + 1));
	core_buf_append(buf, h->levels, 4 * h->n_in);
	core_buf_append(buf, h->mean, 8 * h->n_in);
	core_buf_append(buf, h->scale, 8 * h->n_in);
	core_buf_append(buf, h->classes, 8 * h->nc);
	for (int l = 0; l < h->L; l++)
	{
		core_buf_append(buf, h->W[l], 8 * h->sizes[l] * h->sizes[l + 1]);
		core_buf_append(buf, h->b[l], 8 * h->sizes[l + 1]);
	}
	CHECK_EQ_INT(model_envelope_finish(buf, start, &err), CORE_OK);
}

static CoreStatus
LoadBytes(const char *data, size_t len, bool crc, Mlp **m, CoreError *err)
{
	CoreReader	r;
	ModelKind	kind;

	*m = NULL;
	if (model_envelope_open(data, len, crc, &kind, &r, err) != CORE_OK)
		return err->status;
	if (kind != MODEL_KIND_MLP)
		return model_corrupt(err, "not a network");
	return mlp_core_load(&unit_arena, &r, m, err);
}

/*
 * inputs: x0 numeric (mean 1, scale 0.5), x1 categorical with 3 levels, so
 * 4 expanded inputs; 3 tanh hidden units; 3 classes
 */
static double W0[4 * 3] = {0.5, -1.0, 0.25,
	1.5, 0.0, -0.5,
	-0.75, 2.0, 1.0,
0.0, 0.3, -2.0};
static double b0[3] = {0.1, -0.2, 0.05};
static double W1[3 * 3] = {1.0, -1.0, 0.5,
	2.0, 0.5, -1.5,
-0.5, 1.0, 1.0};
static double b1[3] = {0.0, 0.3, -0.1};

static void
HandClassifier(HandNet *h)
{
	memset(h, 0, sizeof(*h));
	h->activation = MLP_TANH;
	h->n_in = 2;
	h->nc = 3;
	h->L = 2;
	h->sizes[0] = 4;
	h->sizes[1] = 3;
	h->sizes[2] = 3;
	h->levels[1] = 3;
	h->mean[0] = 1;
	h->scale[0] = 0.5;
	h->scale[1] = 1;
	h->classes[0] = 1;
	h->classes[1] = 2;
	h->classes[2] = 7;
	h->W[0] = W0;
	h->b[0] = b0;
	h->W[1] = W1;
	h->b[1] = b1;
}

/* the forward pass written out: expand, tanh layer, linear layer, softmax */
static void
HandForward(double x0, double x1, double *prob)
{
	double		in[4] = {isnan(x0) ? 0 : (x0 - 1) * 0.5, 0, 0, 0};
	double		h[3],
				z[3],
				sum = 0;

	if (x1 == 0 || x1 == 1 || x1 == 2)
		in[1 + (int) x1] = 1;
	for (int c = 0; c < 3; c++)
	{
		h[c] = b0[c];
		for (int r = 0; r < 4; r++)
			h[c] += in[r] * W0[r * 3 + c];
		h[c] = tanh(h[c]);
	}
	for (int c = 0; c < 3; c++)
	{
		z[c] = b1[c];
		for (int r = 0; r < 3; r++)
			z[c] += h[r] * W1[r * 3 + c];
	}
	for (int c = 0; c < 3; c++)
		sum += exp(z[c]);
	for (int c = 0; c < 3; c++)
		prob[c] = exp(z[c]) / sum;
}

/* prediction on hand-set weights equals the forward pass written out (one-hot, unseen codes, NaN) */
static void
test_mlp_predict_hand_weights(void)
{
	HandNet		h;
	CoreBuf		buf;
	CoreError	err;
	Mlp		   *m;
	const double xs[][2] = {{0, 0}, {3.5, 1}, {-2, 2}, {1, 3}, {NAN, 1}, {0.25, NAN}, {2, 1.5}};

	HandClassifier(&h);
	WriteHand(&h, &buf);
	CHECK_EQ_INT(LoadBytes(buf.data, buf.len, true, &m, &err), CORE_OK);
	if (m == NULL)
		return;
	CHECK_EQ_INT(m->n_in, 2);
	CHECK_EQ_INT(m->n_classes, 3);
	for (int t = 0; t < lengthof(xs); t++)
	{
		double		got[3],
					want[3];

		CHECK_EQ_INT(mlp_core_predict(m, xs[t], got, &err), CORE_OK);
		HandForward(xs[t][0], xs[t][1], want);
		for (int c = 0; c < 3; c++)
			CHECK_NEAR(got[c], want[c], 1e-14);
	}

	/* regression: logistic hidden layer, linear output */
	{
		static double rW0[4 * 2] = {1, -1, 0.5, 0.5, -0.25, 2, 0, 1};
		static double rb0[2] = {0.5, -0.5};
		static double rW1[2] = {3, -2};
		static double rb1[1] = {10};
		double		got,
					in[4] = {(2.5 - 1) * 0.5, 0, 0, 1},
					hid[2];

		h.regression = 1;
		h.activation = MLP_LOGISTIC;
		h.nc = 0;
		h.sizes[1] = 2;
		h.sizes[2] = 1;
		h.W[0] = rW0;
		h.b[0] = rb0;
		h.W[1] = rW1;
		h.b[1] = rb1;
		WriteHand(&h, &buf);
		CHECK_EQ_INT(LoadBytes(buf.data, buf.len, true, &m, &err), CORE_OK);
		if (m == NULL)
			return;
		CHECK_EQ_INT(mlp_core_predict(m, (double[]) {2.5, 2}, &got, &err), CORE_OK);
		for (int c = 0; c < 2; c++)
		{
			double		z = rb0[c];

			for (int r = 0; r < 4; r++)
				z += in[r] * rW0[r * 2 + c];
			hid[c] = 1 / (1 + exp(-z));
		}
		CHECK_NEAR(got, 10 + 3 * hid[0] - 2 * hid[1], 1e-13);
	}
}

/* huge logits: the softmax stays finite, sums to 1 and equals softmax of the logits minus their max */
static void
test_mlp_softmax_huge_logits(void)
{
	static double zW[1 * 3] = {0, 0, 0};
	static double hb[3] = {1e6, 1e6 + 1, 1e6 - 3};
	static double reluW0[1 * 2] = {1, 2};
	static double reluB0[2] = {0, 0};
	static double reluW1[2 * 3] = {1000, -1000, 0, 0, 1001, 0.5};
	static double reluB1[3] = {0, 0, 0};
	HandNet		h;
	CoreBuf		buf;
	CoreError	err;
	Mlp		   *m;
	double		p[3],
				e0 = 1,
				e1 = exp(1),
				e2 = exp(-3);

	memset(&h, 0, sizeof(h));
	h.n_in = 1;
	h.nc = 3;
	h.L = 1;
	h.sizes[0] = 1;
	h.sizes[1] = 3;
	h.scale[0] = 1;
	h.classes[0] = 0;
	h.classes[1] = 1;
	h.classes[2] = 2;
	h.W[0] = zW;
	h.b[0] = hb;
	WriteHand(&h, &buf);
	CHECK_EQ_INT(LoadBytes(buf.data, buf.len, true, &m, &err), CORE_OK);
	if (m == NULL)
		return;
	CHECK_EQ_INT(mlp_core_predict(m, (double[]) {0.5}, p, &err), CORE_OK);
	CHECK_NEAR(p[0], e0 / (e0 + e1 + e2), 1e-12);
	CHECK_NEAR(p[1], e1 / (e0 + e1 + e2), 1e-12);
	CHECK_NEAR(p[2], e2 / (e0 + e1 + e2), 1e-12);

	/* inputs of 1e4 and 1e6 through a relu layer: logits up to ~2e9 */
	h.activation = MLP_RELU;
	h.L = 2;
	h.sizes[1] = 2;
	h.sizes[2] = 3;
	h.W[0] = reluW0;
	h.b[0] = reluB0;
	h.W[1] = reluW1;
	h.b[1] = reluB1;
	WriteHand(&h, &buf);
	CHECK_EQ_INT(LoadBytes(buf.data, buf.len, true, &m, &err), CORE_OK);
	if (m == NULL)
		return;
	for (double x = 1e4; x <= 1e6; x *= 100)
	{
		double		sum = 0;

		CHECK_EQ_INT(mlp_core_predict(m, &x, p, &err), CORE_OK);
		for (int c = 0; c < 3; c++)
		{
			CHECK(isfinite(p[c]) && p[c] >= 0 && p[c] <= 1);
			sum += p[c];
		}
		CHECK_NEAR(sum, 1, 1e-12);
		CHECK_NEAR(p[1], 1, 1e-12);	/* logit 1: 2000x + ... dominates */
	}
	/* an infinite output is an error, not NaN probabilities */
	{
		double		x = 1e306;

		CHECK_EQ_INT(mlp_core_predict(m, &x, p, &err), CORE_RANGE);
		CHECK_STR(err.message, "the network's output is not finite for these features");
	}
}

static MlpParams
DefaultParams(void)
{
	MlpParams	p;

	memset(&p, 0, sizeof(p));
	p.n_hidden = 1;
	p.hidden[0] = 16;
	p.activation = MLP_RELU;
	p.adam = true;
	p.learning_rate = 0.01;
	p.momentum = 0.9;
	p.batch_size = 32;
	p.epochs = 30;
	p.validation_fraction = 0.1;
	p.patience = 10;
	p.tol = 1e-4;
	p.l2 = 1e-4;
	p.seed = 5;
	return p;
}

/* three blobs in two numeric features plus a categorical one that is noise */
#define NB 240
static double bx[NB * 3],
			by[NB];
static const int32 blevels[3] = {0, 0, 4};

static void
Blobs(void)
{
	uint64		rs = 17;

	for (int i = 0; i < NB; i++)
	{
		int			c = i % 3;

		by[i] = c * 10;			/* classes 0, 10, 20 */
		bx[i * 3] = c * 4 + unit_uniform(&rs);
		bx[i * 3 + 1] = (c == 1 ? 5 : -5) + unit_uniform(&rs);
		bx[i * 3 + 2] = (double) (unit_rand(&rs) % 4);
	}
}

static CoreStatus
Train(const MlpParams *p, int n, const double *x, const double *y, const int32 *levels, int nf,
	  size_t mem, const CoreInterrupts *hooks, CoreBuf *out, MlpTrainInfo *info, CoreError *err)
{
	core_buf_init(out, &unit_arena, 16);
	return mlp_core_train(&unit_arena, hooks, n, nf, x, y, levels, p, mem, out, info, err);
}

static int	polls,
			pending_left,
			processed;
static bool
CountingPending(void)
{
	polls++;
	return pending_left > 0;
}
static void
CountingProcess(void)
{
	processed++;
	pending_left--;
}

/*
 * training: the same seed gives the same bytes, another seed others; slicing
 * every product into single rows (and every loop into single elements) with
 * interrupts polled and processed in between changes no byte; the model
 * classifies separable data.
 */
static void
test_mlp_train_deterministic_sliced(void)
{
	MlpParams	p = DefaultParams();
	MlpTrainInfo info;
	CoreBuf		a,
				b,
				c,
				d;
	CoreError	err;
	const CoreInterrupts hooks = {CountingPending, CountingProcess};
	Mlp		   *m;
	int			hits = 0;

	Blobs();
	p.n_hidden = 2;
	p.hidden[1] = 5;
	CHECK_EQ_INT(Train(&p, NB, bx, by, blevels, 3, (size_t) 1 << 30, &core_no_interrupts, &a, &info, &err), CORE_OK);
	CHECK_EQ_INT(info.n_classes, 3);
	CHECK(info.epochs >= 1 && info.epochs <= 30);
	CHECK(isfinite(info.train_loss));
	CHECK_EQ_INT(Train(&p, NB, bx, by, blevels, 3, (size_t) 1 << 30, &core_no_interrupts, &b, &info, &err), CORE_OK);
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);

	p.work_slice = 1;
	polls = processed = 0;
	pending_left = 3;
	CHECK_EQ_INT(Train(&p, NB, bx, by, blevels, 3, (size_t) 1 << 30, &hooks, &c, &info, &err), CORE_OK);
	CHECK(polls > 10000);
	CHECK_EQ_INT(processed, 3);
	/* the same slicing again, no interrupts: the same bytes */
	{
		CoreBuf		c2;

		CHECK_EQ_INT(Train(&p, NB, bx, by, blevels, 3, (size_t) 1 << 30, &core_no_interrupts, &c2, &info, &err), CORE_OK);
		CHECK(c.len == c2.len && memcmp(c.data, c2.data, c.len) == 0);
	}

	/*
	 * Against the unsliced model: the same training up to rounding.  Not the
	 * same bytes: OpenBLAS picks its kernel (and so the order of the partial
	 * sums) by the shape of the product and the CPU, so a one-row slice can
	 * round differently from the whole product (seen on AMD EPYC).
	 */
	CHECK(a.len == c.len);
	{
		Mlp		   *ma,
				   *mc;
		double		worst = 0;

		CHECK_EQ_INT(LoadBytes(a.data, a.len, true, &ma, &err), CORE_OK);
		CHECK_EQ_INT(LoadBytes(c.data, c.len, true, &mc, &err), CORE_OK);
		for (int i = 0; ma != NULL && mc != NULL && i < NB; i++)
		{
			double		pa[3],
						pc[3];

			mlp_core_predict(ma, &bx[i * 3], pa, &err);
			mlp_core_predict(mc, &bx[i * 3], pc, &err);
			for (int k = 0; k < 3; k++)
				worst = Max(worst, fabs(pa[k] - pc[k]));
		}
		CHECK(worst < 1e-6);
	}

	p.work_slice = 0;
	p.seed = 6;
	CHECK_EQ_INT(Train(&p, NB, bx, by, blevels, 3, (size_t) 1 << 30, &core_no_interrupts, &d, &info, &err), CORE_OK);
	CHECK(a.len == d.len && memcmp(a.data, d.data, a.len) != 0);

	/* the model separates the blobs (checked against the labels, argmax of the probabilities) */
	CHECK_EQ_INT(LoadBytes(a.data, a.len, true, &m, &err), CORE_OK);
	if (m == NULL)
		return;
	for (int i = 0; i < NB; i++)
	{
		double		pr[3],
					sum = 0;
		int			best = 0;

		mlp_core_predict(m, &bx[i * 3], pr, &err);
		for (int k = 0; k < 3; k++)
		{
			sum += pr[k];
			if (pr[k] > pr[best])
				best = k;
		}
		CHECK_NEAR(sum, 1, 1e-12);
		hits += m->classes[best] == by[i];
	}
	CHECK(hits >= NB * 95 / 100);
	/* a trained model at inputs far outside the data: finite probabilities summing to 1 */
	for (double x = 1e4; x <= 1e6; x *= 100)
	{
		double		row[3] = {x, -x, 1},
					pr[3],
					sum = 0;

		CHECK_EQ_INT(mlp_core_predict(m, row, pr, &err), CORE_OK);
		for (int k = 0; k < 3; k++)
		{
			CHECK(isfinite(pr[k]));
			sum += pr[k];
		}
		CHECK_NEAR(sum, 1, 1e-12);
	}
}

/* every truncation and every bit flip is CORE_CORRUPT; the structural checks hold without the checksum */
static void
test_mlp_load_rejects_damage(void)
{
	MlpParams	p = DefaultParams();
	MlpTrainInfo info;
	CoreBuf		a;
	CoreError	err;
	Mlp		   *m;
	char	   *copy;
	int			accepted = 0;

	Blobs();
	p.hidden[0] = 3;
	p.epochs = 2;
	CHECK_EQ_INT(Train(&p, NB, bx, by, blevels, 3, (size_t) 1 << 30, &core_no_interrupts, &a, &info, &err), CORE_OK);
	/* the model outside the arena, which is reset after every load */
	{
		char	   *keep = malloc(a.len);

		memcpy(keep, a.data, a.len);
		a.data = keep;
	}
	copy = malloc(a.len + 8);
	for (size_t len = 0; len < a.len; len++)
	{
		err.status = CORE_OK;
		CHECK_EQ_INT(LoadBytes(a.data, len, true, &m, &err), CORE_CORRUPT);
		unit_arena_reset();
	}
	for (size_t bit = 0; bit < a.len * 8; bit++)
	{
		memcpy(copy, a.data, a.len);
		copy[bit / 8] ^= (char) (1 << (bit % 8));
		err.status = CORE_OK;
		CHECK_EQ_INT(LoadBytes(copy, a.len, true, &m, &err), CORE_CORRUPT);
		unit_arena_reset();
	}

	/*
	 * without the checksum, a byte set to 0xFF anywhere in the payload is
	 * either rejected by a structural check or a network that predicts
	 * without a crash (ASan/UBSan watch)
	 */
	for (size_t pos = MODEL_HEADER_SIZE; pos < a.len; pos++)
	{
		double		out[16],
					row[3] = {1, 2, 3};

		memcpy(copy, a.data, a.len);
		copy[pos] = (char) 0xFF;
		err.status = CORE_OK;
		if (LoadBytes(copy, a.len, false, &m, &err) == CORE_OK)
		{
			accepted++;
			CHECK(m->n_in == 3);
			(void) mlp_core_predict(m, row, out, &err);
		}
		else
			CHECK_EQ_INT(err.status, CORE_CORRUPT);
		unit_arena_reset();
	}
	CHECK(accepted > 0);		/* most weight bytes can take any value */

	/* named structural checks, each with its detail */
	{
		const size_t P = MODEL_HEADER_SIZE;
		struct
		{
			size_t		off;
			int32		value;
			const char *detail;
		}			cases[] = {
			{P + 1, 7, "Unknown network task or activation."},
			{P + 4, 0, "The network's input count is out of range."},
			{P + 8, 1, "The network's class count is out of range."},
			{P + 12, 0, "The network's layer count is out of range."},
			{P + 16, 5, "The input layer does not match the inputs."},
			{P + 20, 5000, "A hidden layer width is out of range."},
			{P + 24, 4, "The output layer does not match the classes."},
			{P + 28 + 8, 1001, "A categorical input has an invalid number of levels."},
		};

		for (int t = 0; t < lengthof(cases); t++)
		{
			memcpy(copy, a.data, a.len);
			if (cases[t].off == P + 1)
				copy[P + 1] = (char) cases[t].value;
			else
				memcpy(copy + cases[t].off, &cases[t].value, 4);
			CHECK_EQ_INT(LoadBytes(copy, a.len, false, &m, &err), CORE_CORRUPT);
			CHECK_STR(err.detail, cases[t].detail);
			unit_arena_reset();
		}
		/* a NaN mean (after sizes[4] and levels[3]) */
		memcpy(copy, a.data, a.len);
		memcpy(copy + P + 28 + 12, &(double) {NAN}, 8);
		CHECK_EQ_INT(LoadBytes(copy, a.len, false, &m, &err), CORE_CORRUPT);
		CHECK_STR(err.detail, "A network parameter is not finite.");
		/* classes out of order: swap the first two */
		memcpy(copy, a.data, a.len);
		memcpy(copy + P + 28 + 12 + 48, a.data + P + 28 + 12 + 56, 8);
		memcpy(copy + P + 28 + 12 + 56, a.data + P + 28 + 12 + 48, 8);
		CHECK_EQ_INT(LoadBytes(copy, a.len, false, &m, &err), CORE_CORRUPT);
		CHECK_STR(err.detail, "The class list is not strictly ascending.");
	}
	/* trailing bytes, in an otherwise valid envelope */
	{
		CoreBuf		t;
		size_t		start;

		core_buf_init(&t, &unit_arena, 16);
		start = model_envelope_begin(&t, MODEL_KIND_MLP);
		core_buf_append(&t, a.data + MODEL_HEADER_SIZE, a.len - MODEL_HEADER_SIZE);
		core_buf_append(&t, "x", 1);
		model_envelope_finish(&t, start, &err);
		CHECK_EQ_INT(LoadBytes(t.data, t.len, true, &m, &err), CORE_CORRUPT);
		CHECK_STR(err.detail, "The payload has trailing bytes after the model structure.");
	}
	free(copy);
	free(a.data);
}

/* training's errors: messages as the SQL functions report them */
static void
test_mlp_train_errors(void)
{
	MlpParams	p = DefaultParams();
	MlpTrainInfo info;
	CoreBuf		out;
	CoreError	err;
	static double x[400 * 2],
				y[400];
	static const int32 lv[2] = {0, 0};

	for (int i = 0; i < 400; i++)
	{
		x[2 * i] = i % 2;
		x[2 * i + 1] = (i / 2) % 2;
		y[i] = (i % 2) ^ ((i / 2) % 2);
	}
	CHECK_EQ_INT(Train(&p, 0, x, y, lv, 2, (size_t) 1 << 30, &core_no_interrupts, &out, &info, &err), CORE_DATA);
	CHECK_STR(err.message, "no training rows");
	CHECK_STR(err.detail, "Rows with a NULL label are skipped.");

	/* the case of expected/mlp.out: 400 xor rows, hidden [4096, 4096], batch 256, 1 MB */
	p.n_hidden = 2;
	p.hidden[0] = p.hidden[1] = 4096;
	p.batch_size = 256;
	CHECK_EQ_INT(Train(&p, 400, x, y, lv, 2, 1024 * 1024, &core_no_interrupts, &out, &info, &err), CORE_LIMIT);
	CHECK_STR(err.message, "network training needs about 802 MB, more than maintenance_work_mem (1 MB)");
	CHECK_STR(err.hint, "Raise maintenance_work_mem, or use fewer rows, smaller layers or a smaller batch_size.");

	/* a single class */
	p = DefaultParams();
	{
		static double one[400];

		CHECK_EQ_INT(Train(&p, 400, x, one, lv, 2, (size_t) 1 << 30, &core_no_interrupts, &out, &info, &err), CORE_DATA);
	}

	/* the case of expected/mlp.out: y = i * 1e200, regression, learning rate 1 */
	{
		static double a[50],
					yy[50];
		static const int32 lv1[1] = {0};

		for (int i = 0; i < 50; i++)
		{
			a[i] = i + 1;
			yy[i] = (i + 1) * 1e200;
		}
		p = DefaultParams();
		p.regression = true;
		p.learning_rate = 1;
		p.hidden[0] = 64;
		p.batch_size = 256;
		p.epochs = 50;
		CHECK_EQ_INT(Train(&p, 50, a, yy, lv1, 1, (size_t) 1 << 30, &core_no_interrupts, &out, &info, &err), CORE_RANGE);
		CHECK_STR(err.message, "training diverged at epoch 1 (the loss is not finite)");
	}

	/* an allocator that runs out is CORE_NOMEM, at whatever point */
	p = DefaultParams();
	Blobs();
	for (size_t budget = 1000; budget < 400000; budget = budget * 3 / 2)
	{
		CoreStatus	st;

		unit_arena_reset();
		unit_arena_fail_after(budget);
		st = Train(&p, NB, bx, by, blevels, 3, (size_t) 1 << 30, &core_no_interrupts, &out, &info, &err);
		unit_arena_fail_after(0);
		CHECK(st == CORE_NOMEM || st == CORE_OK);
	}
}

static void test_mlp_integrated_gradients(void);

void
mlp_suite(void)
{
	RUN(test_mlp_predict_hand_weights);
	RUN(test_mlp_softmax_huge_logits);
	RUN(test_mlp_train_deterministic_sliced);
	RUN(test_mlp_load_rejects_damage);
	RUN(test_mlp_train_errors);
	RUN(test_mlp_integrated_gradients);
}

/*
 * Integrated gradients on the hand network, tanh and relu, every class:
 * the attributions against an independent computation (central finite
 * differences of HandForward-style predictions along the path, integrated
 * by a composite Simpson rule on 20,000 intervals, with one-hot blocks
 * summed) within 1e-8 (tanh; relu 1e-4, the reference's own error across a
 * kink), and completeness Σ attr = f(x) - f(0) within 1e-9 at 64 steps: for
 * relu the path crosses kinks (hidden units changing sign), which the
 * pieces follow, so the rule stays exact there.
 */
static double
IgPredict(const Mlp *m, const double *z, int32 cls)
{
	/* a forward pass on the expanded input z, written out (no BLAS) */
	double		a[8],
				o[8];
	int32		n = m->sizes[0];

	memcpy(a, z, sizeof(double) * n);
	for (int32 l = 0; l < m->n_layers; l++)
	{
		for (int32 c = 0; c < m->sizes[l + 1]; c++)
		{
			double		s = m->b[l][c];

			for (int32 j = 0; j < m->sizes[l]; j++)
				s += a[j] * m->W[l][j * m->sizes[l + 1] + c];
			if (l + 1 < m->n_layers)
				s = m->activation == MLP_TANH ? tanh(s) : (s > 0 ? s : 0);
			o[c] = s;
		}
		n = m->sizes[l + 1];
		memcpy(a, o, sizeof(double) * n);
	}
	{
		double		mx = a[0],
					sum = 0;

		for (int32 c = 1; c < n; c++)
			mx = Max(mx, a[c]);
		for (int32 c = 0; c < n; c++)
			sum += exp(a[c] - mx);
		return exp(a[cls] - mx) / sum;
	}
}

static void
test_mlp_integrated_gradients(void)
{
	for (int act = 0; act < 2; act++)
	{
		HandNet		h;
		CoreBuf		buf;
		CoreError	err;
		Mlp		   *m;
		MlpIg	   *ig;
		double		xs[3][2] = {{3.0, 2}, {-2.5, 0}, {0.2, NAN}};

		HandClassifier(&h);
		h.activation = act == 0 ? MLP_TANH : MLP_RELU;
		WriteHand(&h, &buf);
		CHECK_EQ_INT(LoadBytes(buf.data, buf.len, true, &m, &err), CORE_OK);
		CHECK_EQ_INT(mlp_core_ig_prepare(&unit_arena, m, 64, &ig, &err), CORE_OK);
		for (int r = 0; r < 3; r++)
			for (int32 cls = 0; cls < 3; cls++)
			{
				double		attr[2],
							out[3],
							base[3],
							nanx[2] = {NAN, NAN},
							z[4] = {isnan(xs[r][0]) ? 0 : (xs[r][0] - 1) * 0.5, 0, 0, 0},
							ref[4] = {0, 0, 0, 0},
							sum;
				int			N = 20000;

				if (!isnan(xs[r][1]))
					z[1 + (int) xs[r][1]] = 1;
				CHECK_EQ_INT(mlp_core_integrated_gradients(&unit_arena, NULL, m, ig, xs[r], cls, attr, &err), CORE_OK);
				CHECK_EQ_INT(mlp_core_predict(m, xs[r], out, &err), CORE_OK);
				CHECK_EQ_INT(mlp_core_predict(m, nanx, base, &err), CORE_OK);
				sum = attr[0] + attr[1];
				CHECK_NEAR(sum, out[cls] - base[cls], 1e-9);
				/* the reference: z_j ∫ ∂f/∂z_j by finite differences and Simpson's rule */
				for (int j = 0; j < 4; j++)
				{
					if (z[j] == 0)
						continue;
					for (int k = 0; k <= N; k++)
					{
						double		al = (double) k / N,
									p[4],
									mi[4],
									eps = 1e-6,
									d,
									wk = (k == 0 || k == N) ? 1 : (k % 2 ? 4 : 2);

						for (int i = 0; i < 4; i++)
							p[i] = mi[i] = al * z[i];
						p[j] += eps;
						mi[j] -= eps;
						d = (IgPredict(m, p, cls) - IgPredict(m, mi, cls)) / (2 * eps);
						ref[j] += wk * d / (3.0 * N);
					}
					ref[j] *= z[j];
				}
				/* Simpson's rule is itself only O(1/N) across a relu kink */
				CHECK_NEAR(attr[0], ref[0], act == 0 ? 1e-8 : 1e-4);
				CHECK_NEAR(attr[1], ref[1] + ref[2] + ref[3], act == 0 ? 1e-8 : 1e-4);
			}
		if (act == 1)
			CHECK(ig->pieces >= 1);
	}
	unit_arena_reset();
}
