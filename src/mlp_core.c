/*
 * mlp_core.c
 *	  A feed-forward network trained with mini-batches on OpenBLAS.
 *
 * Inputs: numeric features are standardised with the training mean and
 * standard deviation (a missing value becomes the mean, i.e. 0); a
 * categorical feature (a code 0..L-1, as the column encoding produces) is
 * one-hot encoded over its L training levels (an unseen or missing code is
 * all zeros).  Hidden layers use relu, tanh or the logistic function; the
 * output is a softmax with cross-entropy (classification) or a linear unit
 * with squared loss (regression).  Every layer of a mini-batch is one
 * cblas_sgemm forward and two backward; Adam or SGD with momentum; L2 weight
 * decay; early stopping on a held-out fraction; single precision during
 * training, double in the stored model.  The rows are put in a
 * canonical order first and every random draw comes from the seed, so the
 * same rows, options and seed give the same model bytes.  Training runs on
 * the calling thread (OpenBLAS is pinned to one thread).
 *
 * Training goes through named phases on one Trainer: TrainPlan (sizes and
 * the memory budget), TrainPrepareInputs (row order, standardisation, the
 * expanded input matrix), TrainInitWeights, TrainHoldOut, then per epoch
 * TrainEpoch (TrainBatch: BatchForwardLoss, BatchBackward, BatchUpdate) and
 * EpochEnd (loss, divergence, early stopping), and WriteMlp.
 *
 * Interrupts: a BLAS call is one long uninterruptible stretch, so a product
 * of more than work_slice multiply-adds is computed in slices of output rows
 * with a poll between slices, and element-wise loops over weights poll
 * every work_slice elements.  Slices depend only on the shapes and
 * work_slice, so training stays deterministic; they are not guaranteed to
 * give the unsliced product's last bits (OpenBLAS picks its kernel, and so
 * the order of partial sums, by shape and CPU).  With a default slice of 2^30 a poll comes at least every few
 * tenths of a second whatever the layer sizes or batch size.
 *
 * Plain C (core.h): no PostgreSQL calls; mlp_pg.c is the SQL side.
 */
#include "core.h"

#include <math.h>
#include <string.h>
#include <cblas.h>

#include "common/pg_prng.h"

#include "compare.h"
#include "mlp_core.h"
#include "model_blob.h"
#include "training_core.h"

/*
 * Training runs in single precision (cblas_sgemm: twice the arithmetic per
 * cycle and half the memory traffic of double); the model is stored, and
 * prediction runs, in double.
 */
typedef float real;

#define MLP_DEFAULT_SLICE	(INT64CONST(1) << 30)

typedef struct Net
{
	int32		L;				/* weight layers */
	int32	   *sizes;			/* [L + 1] */
	real	   *W[MLP_MAX_LAYERS + 1];
	real	   *b[MLP_MAX_LAYERS + 1];
} Net;

/* everything one training run holds, phase to phase */
typedef struct Trainer
{
	const MlpParams *p;
	const CoreAlloc *a;
	const CoreInterrupts *hooks;
	CoreError  *err;
	int64		slice;			/* work between polls */
	int64		meter;			/* work left before the next poll */

	/* the data */
	int32		n;				/* rows */
	int32		n_in;			/* raw features */
	int32		d;				/* expanded inputs */
	const double *x;
	const double *y;
	const int32 *levels;
	int32		nc;				/* classes, 0 for regression */
	double	   *classes;
	int32	   *ycls;			/* [n] class index, canonical order */
	double	   *ysorted;		/* [n] label, canonical order */
	double	   *mean;			/* [n_in] */
	double	   *scale;			/* [n_in] */
	real	   *Z;				/* [n x d] expanded inputs, canonical order */

	/* the network, its best copy and the optimiser's state */
	Net			net,
				best;
	real	   *mW[MLP_MAX_LAYERS + 1],
			   *vW[MLP_MAX_LAYERS + 1],
			   *mb[MLP_MAX_LAYERS + 1],
			   *vb[MLP_MAX_LAYERS + 1],
			   *gW[MLP_MAX_LAYERS + 1],
			   *gb[MLP_MAX_LAYERS + 1];
	real	   *acts[MLP_MAX_LAYERS + 2],
			   *deltas[MLP_MAX_LAYERS + 2];
	int32		B;				/* batch size */

	/* the schedule */
	pg_prng_state rng;
	int32	   *perm;			/* [n]: held-out rows first, then training rows */
	int32		n_val;
	int32		n_train;
	int64		step;
	double		best_score;
	double		best_loss;
	double		last_loss;
	int32		since_best;
} Trainer;

static inline double
Act(MlpActivation a, double z)
{
	switch (a)
	{
		case MLP_RELU:
			return z > 0 ? z : 0;
		case MLP_TANH:
			return tanh(z);
		default:
			return 1.0 / (1.0 + exp(-z));
	}
}

/* derivative from the activation's output h */
static inline double
ActGrad(MlpActivation a, double h)
{
	switch (a)
	{
		case MLP_RELU:
			return h > 0 ? 1.0 : 0.0;
		case MLP_TANH:
			return 1.0 - h * h;
		default:
			return h * (1.0 - h);
	}
}

/* count `work` done; poll for interrupts once a slice of it has accumulated */
static inline void
Meter(Trainer *t, int64 work)
{
	t->meter -= work;
	if (t->meter <= 0)
	{
		t->meter = t->slice;
		core_check_interrupts(t->hooks);
	}
}

/* the end of the element slice that starts at w0, polling first */
static inline size_t
SliceEnd(Trainer *t, size_t w0, size_t n)
{
	Meter(t, t->slice);
	return Min(n, w0 + (size_t) t->slice);
}

/*
 * C[M x N] := op(A)[M x K] · op(B)[K x N], row-major, single precision, in
 * slices of rows of C of at most t->slice multiply-adds, polling before each.
 */
static void
Gemm(Trainer *t, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int32 M, int32 N, int32 K,
	 const real *A, int32 lda, const real *Bm, int32 ldb, real *C, int32 ldc)
{
	int64		per_row = Max((int64) N * K, 1);
	int32		rows = M;

	if ((int64) M * per_row > t->slice)
		rows = (int32) Max(t->slice / per_row, 1);
	for (int32 r0 = 0; r0 < M; r0 += rows)
	{
		int32		m = Min(rows, M - r0);
		const real *Ar = ta == CblasNoTrans ? A + (int64) r0 * lda : A + r0;

		Meter(t, t->slice);
		cblas_sgemm(CblasRowMajor, ta, tb, m, N, K, 1.0f, Ar, lda, Bm, ldb, 0.0f,
					C + (int64) r0 * ldc, ldc);
	}
}

/* one row of raw features into the expanded, standardised input */
static void
Expand(int32 n_in, const int32 *levels, const double *mean, const double *scale,
	   const double *x, double *out)
{
	int32		o = 0;

	for (int32 j = 0; j < n_in; j++)
	{
		double		v = x[j];

		if (levels[j] == 0)
			out[o++] = isnan(v) ? 0.0 : (v - mean[j]) * scale[j];
		else
		{
			for (int32 c = 0; c < levels[j]; c++)
				out[o + c] = 0.0;
			if (!isnan(v) && v >= 0 && v < levels[j] && v == floor(v))
				out[o + (int32) v] = 1.0;
			o += levels[j];
		}
	}
}

/*
 * Forward pass over B rows of `net`: acts[0] is the input, acts[L] the
 * output.  The softmax subtracts each row's largest logit before exp, so
 * huge logits give finite probabilities.
 */
static void
Forward(Trainer *t, const Net *net, int32 B, real **acts)
{
	MlpActivation act = t->p->activation;
	bool		regression = t->p->regression;

	for (int32 l = 0; l < net->L; l++)
	{
		int32		nin = net->sizes[l],
					nout = net->sizes[l + 1];
		real	   *out = acts[l + 1];

		Gemm(t, CblasNoTrans, CblasNoTrans, B, nout, nin, acts[l], nin, net->W[l], nout, out, nout);
		for (int32 r = 0; r < B; r++)
		{
			real	   *row = out + (int64) r * nout;

			for (int32 c = 0; c < nout; c++)
				row[c] += net->b[l][c];
			if (l + 1 < net->L)
				for (int32 c = 0; c < nout; c++)
					row[c] = (real) Act(act, row[c]);
			else if (!regression)
			{
				double		mx = row[0],
							sum = 0;

				for (int32 c = 1; c < nout; c++)
					mx = Max(mx, row[c]);
				for (int32 c = 0; c < nout; c++)
					sum += exp(row[c] - mx);
				for (int32 c = 0; c < nout; c++)
					row[c] = (real) (exp(row[c] - mx) / sum);
			}
		}
		Meter(t, (int64) B * nout);
	}
}

/* score on the held-out rows: accuracy, or R² for regression */
static double
Score(Trainer *t)
{
	const Net  *net = &t->net;
	const int32 *rows = t->perm;
	int32		n = t->n_val,
				B = t->B,
				d = t->d,
				nout = net->sizes[net->L];
	bool		regression = t->p->regression;
	const double *y = t->ysorted;
	double		hits = 0,
				ss_res = 0,
				ss_tot = 0,
				ymean = 0;

	if (regression)
	{
		for (int32 i = 0; i < n; i++)
			ymean += y[rows[i]];
		ymean /= Max(n, 1);
	}
	for (int32 s = 0; s < n; s += B)
	{
		int32		nb = Min(B, n - s);

		for (int32 r = 0; r < nb; r++)
			memcpy(t->acts[0] + (int64) r * d, t->Z + (int64) rows[s + r] * d, sizeof(real) * d);
		Forward(t, net, nb, t->acts);
		for (int32 r = 0; r < nb; r++)
		{
			const real *o = t->acts[net->L] + (int64) r * nout;
			int32		i = rows[s + r];

			if (regression)
			{
				ss_res += (o[0] - y[i]) * (o[0] - y[i]);
				ss_tot += (y[i] - ymean) * (y[i] - ymean);
			}
			else
			{
				int32		best = 0;

				for (int32 c = 1; c < nout; c++)
					if (o[c] > o[best])
						best = c;
				hits += best == t->ycls[i];
			}
		}
	}
	if (regression)
		return ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0;
	return hits / Max(n, 1);
}

/* ---------------------------------------------------------------------------
 * Training phases
 * ------------------------------------------------------------------------- */

/*
 * Phase 1: the row and input counts, the classes, the layer sizes, and the
 * memory the model bytes and the training need, before any big allocation.
 */
static CoreStatus
TrainPlan(Trainer *t, int64 n_rows, size_t mem_limit)
{
	const MlpParams *p = t->p;
	CoreError  *err = t->err;
	Net		   *net = &t->net;
	int64		est;
	int64		bytes;

	if (n_rows < 1)
	{
		core_error(err, CORE_DATA, "no training rows");
		return core_error_detail(err, "Rows with a NULL label are skipped.");
	}
	if (n_rows >= PG_INT32_MAX)
		return core_error(err, CORE_LIMIT, "too many training rows");
	t->n = (int32) n_rows;
	t->d = 0;
	for (int32 j = 0; j < t->n_in; j++)
		t->d += t->levels[j] > 0 ? t->levels[j] : 1;
	if (t->d > MLP_MAX_INPUTS)
		return core_error(err, CORE_LIMIT,
						  "the network would have %d inputs (categories one-hot encoded); the limit is %d",
						  t->d, MLP_MAX_INPUTS);
	t->B = Max(1, Min(p->batch_size, t->n));

	if (!p->regression &&
		training_classes(t->a, t->y, t->n, MLP_MAX_CLASSES, &t->classes, &t->nc, err) != CORE_OK)
		return err->status;

	net->L = p->n_hidden + 1;
	net->sizes = core_array(t->a, net->L + 1, sizeof(int32), false, err);
	if (net->sizes == NULL)
		return err->status;
	net->sizes[0] = t->d;
	for (int32 h = 0; h < p->n_hidden; h++)
		net->sizes[h + 1] = p->hidden[h];
	net->sizes[net->L] = p->regression ? 1 : t->nc;

	bytes = 64 + (int64) t->n_in * 20 + (int64) t->nc * 8;
	for (int32 l = 0; l < net->L; l++)
		bytes += ((int64) net->sizes[l] * net->sizes[l + 1] + net->sizes[l + 1]) * 8;
	/* a bytea holds at most 1 GB (PostgreSQL's MaxAllocSize) */
	if (bytes > (int64) 0x3fffffff - 1024)
	{
		core_error(err, CORE_LIMIT, "the network would need %lld MB of model bytes; the limit is 1 GB",
				   (long long) (bytes >> 20));
		return core_error_hint(err, "Use smaller hidden layers or fewer one-hot categories.");
	}

	est = (int64) t->n * t->d * 4 + (int64) t->n * 24;
	for (int32 l = 0; l < net->L; l++)
		est += ((int64) net->sizes[l] * net->sizes[l + 1] + net->sizes[l + 1]) * 8 * 6;
	for (int32 l = 0; l <= net->L; l++)
		est += (int64) t->B * net->sizes[l] * 8 * 2;
	if (est > (int64) mem_limit)
	{
		core_error(err, CORE_LIMIT, "network training needs about %lld MB, more than maintenance_work_mem (%zu MB)",
				   (long long) (est >> 20) + 1, mem_limit >> 20);
		return core_error_hint(err, "Raise maintenance_work_mem, or use fewer rows, smaller layers or a smaller batch_size.");
	}
	return CORE_OK;
}

/*
 * Phase 2: canonical row order, the labels in that order, the mean and
 * standard deviation of each numeric input, and the expanded input matrix Z.
 */
static CoreStatus
TrainPrepareInputs(Trainer *t)
{
	const CoreAlloc *a = t->a;
	CoreError  *err = t->err;
	int32		n = t->n,
				n_in = t->n_in,
				d = t->d;
	const double *x = t->x;
	const int32 *levels = t->levels;
	int32	   *ord;
	double	   *ss;
	int64	   *cnt;
	double	   *zrow;

	ord = core_array(a, n, sizeof(int32), true, err);
	t->ysorted = core_array(a, n, sizeof(double), true, err);
	if (ord == NULL || t->ysorted == NULL)
		return err->status;
	canonical_row_order(n, n_in, x, t->y, t->hooks, ord);
	for (int32 i = 0; i < n; i++)
		t->ysorted[i] = t->y[ord[i]];
	if (t->nc > 0)
	{
		t->ycls = core_array(a, n, sizeof(int32), true, err);
		if (t->ycls == NULL)
			return err->status;
		for (int32 i = 0; i < n; i++)
		{
			double	   *hit = bsearch(&t->ysorted[i], t->classes, t->nc, sizeof(double), cmp_double);

			t->ycls[i] = (int32) (hit - t->classes);
		}
	}

	/*
	 * Mean and standard deviation of each numeric input, row by row (the
	 * matrix is row-major) in canonical row order, so the sums do not depend
	 * on the arrival order.
	 */
	t->mean = core_array(a, n_in, sizeof(double), true, err);
	t->scale = core_array(a, n_in, sizeof(double), false, err);
	ss = core_array(a, n_in, sizeof(double), true, err);
	cnt = core_array(a, n_in, sizeof(int64), true, err);
	if (t->mean == NULL || t->scale == NULL || ss == NULL || cnt == NULL)
		return err->status;
	for (int32 i = 0; i < n; i++)
	{
		const double *row = x + (int64) ord[i] * n_in;

		for (int32 j = 0; j < n_in; j++)
			if (!isnan(row[j]))
			{
				t->mean[j] += row[j];
				cnt[j]++;
			}
		Meter(t, n_in);
	}
	for (int32 j = 0; j < n_in; j++)
		t->mean[j] = (levels[j] == 0 && cnt[j] > 0) ? t->mean[j] / cnt[j] : 0;
	for (int32 i = 0; i < n; i++)
	{
		const double *row = x + (int64) ord[i] * n_in;

		for (int32 j = 0; j < n_in; j++)
			if (!isnan(row[j]))
				ss[j] += (row[j] - t->mean[j]) * (row[j] - t->mean[j]);
		Meter(t, n_in);
	}
	for (int32 j = 0; j < n_in; j++)
		t->scale[j] = (levels[j] == 0 && cnt[j] > 0 && ss[j] > 0) ? 1.0 / sqrt(ss[j] / cnt[j]) : 1.0;
	core_release(a, ss);
	core_release(a, cnt);

	/* every element is written below: no zeroing pass over what can be gigabytes */
	t->Z = core_array(a, (size_t) n * d, sizeof(real), false, err);
	zrow = core_array(a, d, sizeof(double), true, err);
	if (t->Z == NULL || zrow == NULL)
		return err->status;
	for (int32 i = 0; i < n; i++)
	{
		Expand(n_in, levels, t->mean, t->scale, x + (int64) ord[i] * n_in, zrow);
		for (int32 c = 0; c < d; c++)
			t->Z[(int64) i * d + c] = (real) zrow[c];
		Meter(t, d);
	}
	core_release(a, zrow);
	core_release(a, ord);
	core_check_interrupts(t->hooks);
	return CORE_OK;
}

/*
 * Phase 3: weights Glorot uniform (He for relu), zero biases; Adam or
 * momentum state; the activation and delta buffers of one batch.  The
 * weight draws are the first from the seeded generator.
 */
static CoreStatus
TrainInitWeights(Trainer *t)
{
	const MlpParams *p = t->p;
	const CoreAlloc *a = t->a;
	CoreError  *err = t->err;
	Net		   *net = &t->net;

	pg_prng_seed(&t->rng, p->seed ^ UINT64CONST(0x6D6C70));
	t->best = *net;
	for (int32 l = 0; l < net->L; l++)
	{
		int32		nin = net->sizes[l],
					nout = net->sizes[l + 1];
		size_t		nw = (size_t) nin * nout;
		double		limit = (p->activation == MLP_RELU && l + 1 < net->L)
			? sqrt(6.0 / nin) : sqrt(6.0 / (nin + nout));

		net->W[l] = core_array(a, nw, sizeof(real), true, err);
		net->b[l] = core_array(a, nout, sizeof(real), true, err);
		t->best.W[l] = core_array(a, nw, sizeof(real), true, err);
		t->best.b[l] = core_array(a, nout, sizeof(real), true, err);
		t->mW[l] = core_array(a, nw, sizeof(real), true, err);
		t->vW[l] = core_array(a, nw, sizeof(real), true, err);
		t->mb[l] = core_array(a, nout, sizeof(real), true, err);
		t->vb[l] = core_array(a, nout, sizeof(real), true, err);
		t->gW[l] = core_array(a, nw, sizeof(real), true, err);
		t->gb[l] = core_array(a, nout, sizeof(real), true, err);
		if (!net->W[l] || !net->b[l] || !t->best.W[l] || !t->best.b[l] || !t->mW[l] ||
			!t->vW[l] || !t->mb[l] || !t->vb[l] || !t->gW[l] || !t->gb[l])
			return err->status;
		for (size_t w0 = 0; w0 < nw;)
		{
			size_t		w1 = SliceEnd(t, w0, nw);

			for (size_t w = w0; w < w1; w++)
				net->W[l][w] = (real) ((2.0 * pg_prng_double(&t->rng) - 1.0) * limit);
			w0 = w1;
		}
	}
	for (int32 l = 0; l <= net->L; l++)
	{
		t->acts[l] = core_array(a, (size_t) t->B * net->sizes[l], sizeof(real), true, err);
		t->deltas[l] = core_array(a, (size_t) t->B * net->sizes[l], sizeof(real), true, err);
		if (t->acts[l] == NULL || t->deltas[l] == NULL)
			return err->status;
	}
	return CORE_OK;
}

/* Phase 4: held-out rows for early stopping: a seeded shuffle, the first ones */
static CoreStatus
TrainHoldOut(Trainer *t)
{
	int32		n = t->n;

	t->perm = core_array(t->a, n, sizeof(int32), true, t->err);
	if (t->perm == NULL)
		return t->err->status;
	for (int32 i = 0; i < n; i++)
		t->perm[i] = i;
	shuffle_int32(&t->rng, t->perm, n);
	t->n_val = 0;
	if (t->p->validation_fraction > 0 && n >= 10)
		t->n_val = Max(1, (int32) llround(t->p->validation_fraction * n));
	t->n_train = n - t->n_val;
	return CORE_OK;
}

/*
 * One batch, forward: the rows' inputs into acts[0], the forward pass, the
 * output delta (already divided by the batch size) and the loss, added to
 * *loss_sum row by row.
 */
static void
BatchForwardLoss(Trainer *t, const int32 *rows, int32 nb, double *loss_sum)
{
	const MlpParams *p = t->p;
	Net		   *net = &t->net;
	int32		d = t->d;
	int32		nout = net->sizes[net->L];
	real	   *out = t->acts[net->L];
	real	   *dl = t->deltas[net->L];

	for (int32 r = 0; r < nb; r++)
		memcpy(t->acts[0] + (int64) r * d, t->Z + (int64) rows[r] * d, sizeof(real) * d);
	Forward(t, net, nb, t->acts);

	for (int32 r = 0; r < nb; r++)
	{
		int32		i = rows[r];

		for (int32 c = 0; c < nout; c++)
		{
			double		o = out[(int64) r * nout + c];
			double		tv = p->regression ? t->ysorted[i] : (t->ycls[i] == c ? 1.0 : 0.0);

			dl[(int64) r * nout + c] = (real) ((o - tv) / nb);
		}
		if (p->regression)
		{
			double		e = out[(int64) r * nout] - t->ysorted[i];

			*loss_sum += 0.5 * e * e;
		}
		else
			*loss_sum -= log(Max(out[(int64) r * nout + t->ycls[i]], 1e-15));
	}
}

/* One batch, backward: the gradients of every layer, last layer first */
static void
BatchBackward(Trainer *t, int32 nb)
{
	const MlpParams *p = t->p;
	Net		   *net = &t->net;
	real	  **acts = t->acts,
			  **deltas = t->deltas;

	for (int32 l = net->L - 1; l >= 0; l--)
	{
		int32		nin = net->sizes[l],
					no = net->sizes[l + 1];
		size_t		nw = (size_t) nin * no;

		Gemm(t, CblasTrans, CblasNoTrans, nin, no, nb, acts[l], nin, deltas[l + 1], no, t->gW[l], no);
		for (int32 c = 0; c < no; c++)
		{
			double		g = 0;

			for (int32 r = 0; r < nb; r++)
				g += deltas[l + 1][(int64) r * no + c];
			t->gb[l][c] = (real) g;
			Meter(t, nb);
		}
		if (l > 0)
		{
			size_t		ne = (size_t) nb * nin;

			Gemm(t, CblasNoTrans, CblasTrans, nb, nin, no, deltas[l + 1], no, net->W[l], no, deltas[l], nin);
			for (size_t e0 = 0; e0 < ne;)
			{
				size_t		e1 = SliceEnd(t, e0, ne);

				for (size_t e = e0; e < e1; e++)
					deltas[l][e] *= (real) ActGrad(p->activation, acts[l][e]);
				e0 = e1;
			}
		}
		if (p->l2 > 0)
			for (size_t w0 = 0; w0 < nw;)
			{
				size_t		w1 = SliceEnd(t, w0, nw);

				for (size_t w = w0; w < w1; w++)
					t->gW[l][w] += (real) (p->l2 * net->W[l][w] / nb);
				w0 = w1;
			}
	}
}

/* One batch, update: Adam (bias-corrected step size) or SGD with momentum */
static void
BatchUpdate(Trainer *t)
{
	const MlpParams *p = t->p;
	Net		   *net = &t->net;

	t->step++;
	for (int32 l = 0; l < net->L; l++)
	{
		size_t		nw = (size_t) net->sizes[l] * net->sizes[l + 1];
		int32		no = net->sizes[l + 1];
		real	   *W = net->W[l],
				   *b = net->b[l],
				   *mW = t->mW[l],
				   *vW = t->vW[l],
				   *mb = t->mb[l],
				   *vb = t->vb[l],
				   *gW = t->gW[l],
				   *gb = t->gb[l];

		if (p->adam)
		{
			double		b1 = 0.9,
						b2 = 0.999,
						eps = 1e-8;
			double		lr = p->learning_rate * sqrt(1.0 - pow(b2, (double) t->step)) /
				(1.0 - pow(b1, (double) t->step));

			for (size_t w0 = 0; w0 < nw;)
			{
				size_t		w1 = SliceEnd(t, w0, nw);

				for (size_t w = w0; w < w1; w++)
				{
					mW[w] = (real) (b1 * mW[w] + (1 - b1) * gW[w]);
					vW[w] = (real) (b2 * vW[w] + (1 - b2) * gW[w] * gW[w]);
					W[w] -= (real) (lr * mW[w] / (sqrt(vW[w]) + eps));
				}
				w0 = w1;
			}
			for (int32 c = 0; c < no; c++)
			{
				mb[c] = (real) (b1 * mb[c] + (1 - b1) * gb[c]);
				vb[c] = (real) (b2 * vb[c] + (1 - b2) * gb[c] * gb[c]);
				b[c] -= (real) (lr * mb[c] / (sqrt(vb[c]) + eps));
			}
		}
		else
		{
			for (size_t w0 = 0; w0 < nw;)
			{
				size_t		w1 = SliceEnd(t, w0, nw);

				for (size_t w = w0; w < w1; w++)
				{
					mW[w] = (real) (p->momentum * mW[w] - p->learning_rate * gW[w]);
					W[w] += mW[w];
				}
				w0 = w1;
			}
			for (int32 c = 0; c < no; c++)
			{
				mb[c] = (real) (p->momentum * mb[c] - p->learning_rate * gb[c]);
				b[c] += mb[c];
			}
		}
	}
}

/* One epoch: reshuffle the training rows, then every batch; the summed loss into *loss_sum */
static void
TrainEpoch(Trainer *t, double *loss_sum)
{
	int32	   *tr = t->perm + t->n_val;

	shuffle_int32(&t->rng, tr, t->n_train);
	for (int32 s = 0; s < t->n_train; s += t->B)
	{
		int32		nb = Min(t->B, t->n_train - s);

		core_check_interrupts(t->hooks);
		BatchForwardLoss(t, tr + s, nb, loss_sum);
		BatchBackward(t, nb);
		BatchUpdate(t);
	}
}

/*
 * After an epoch: the reported loss, the divergence check, and early
 * stopping on the held-out score, else on the training loss.  The kept
 * weights are those of the best score seen; `tol` only decides whether an
 * epoch counts as progress for the patience.  *stop is set when the
 * patience has run out.
 */
static CoreStatus
EpochEnd(Trainer *t, int32 epoch, double loss_sum, bool *stop)
{
	const MlpParams *p = t->p;
	Net		   *net = &t->net;
	double		wsq = 0;

	for (int32 l = 0; l < net->L; l++)
	{
		size_t		nw = (size_t) net->sizes[l] * net->sizes[l + 1];

		for (size_t w0 = 0; w0 < nw;)
		{
			size_t		w1 = SliceEnd(t, w0, nw);

			for (size_t w = w0; w < w1; w++)
				wsq += net->W[l][w] * net->W[l][w];
			w0 = w1;
		}
	}
	/* as scikit-learn reports it: the mean loss plus 0.5 · l2 · ‖W‖² / batch size */
	t->last_loss = loss_sum / Max(t->n_train, 1) + 0.5 * p->l2 * wsq / t->B;
	if (!isfinite(t->last_loss))
	{
		core_error(t->err, CORE_RANGE, "training diverged at epoch %d (the loss is not finite)", epoch + 1);
		return core_error_hint(t->err, "Lower learning_rate, or scale the regression target.");
	}

	if (t->n_val > 0)
	{
		double		sc = Score(t);

		if (sc > t->best_score + p->tol)
			t->since_best = 0;
		else
			t->since_best++;
		if (sc > t->best_score)
		{
			t->best_score = sc;
			t->best_loss = t->last_loss;
			for (int32 l = 0; l < net->L; l++)
			{
				memcpy(t->best.W[l], net->W[l], sizeof(real) * net->sizes[l] * net->sizes[l + 1]);
				memcpy(t->best.b[l], net->b[l], sizeof(real) * net->sizes[l + 1]);
			}
		}
	}
	else
	{
		if (t->last_loss < t->best_loss - p->tol)
			t->since_best = 0;
		else
			t->since_best++;
		t->best_loss = Min(t->best_loss, t->last_loss);
	}
	*stop = t->since_best >= p->patience;
	return CORE_OK;
}

/*
 * The payload: head (task, activation, 2 zero bytes), n_in, n_classes, L,
 * sizes[L+1], levels, mean, scale, classes, then per layer W and b, all in
 * double.
 */
static CoreStatus
WriteMlp(Trainer *t, CoreBuf *buf, const Net *net)
{
	const MlpParams *p = t->p;
	uint8		head[4] = {(uint8) p->regression, (uint8) p->activation, 0, 0};
	int32		n_in = t->n_in;
	int32		nc = t->nc;
	size_t		maxw = 0;
	double	   *tmp;

	core_buf_append(buf, head, 4);
	core_buf_append(buf, &n_in, 4);
	core_buf_append(buf, &nc, 4);
	core_buf_append(buf, &net->L, 4);
	core_buf_append(buf, net->sizes, sizeof(int32) * (net->L + 1));
	core_buf_append(buf, t->levels, sizeof(int32) * n_in);
	core_buf_append(buf, t->mean, sizeof(double) * n_in);
	core_buf_append(buf, t->scale, sizeof(double) * n_in);
	if (nc > 0)
		core_buf_append(buf, t->classes, sizeof(double) * nc);
	for (int32 l = 0; l < net->L; l++)
		maxw = Max(maxw, Max((size_t) net->sizes[l] * net->sizes[l + 1], (size_t) net->sizes[l + 1]));
	tmp = core_array(t->a, maxw, sizeof(double), false, t->err);
	if (tmp == NULL)
		return t->err->status;
	for (int32 l = 0; l < net->L; l++)
	{
		size_t		nw = (size_t) net->sizes[l] * net->sizes[l + 1];

		for (size_t w0 = 0; w0 < nw;)
		{
			size_t		w1 = SliceEnd(t, w0, nw);

			for (size_t w = w0; w < w1; w++)
				tmp[w] = net->W[l][w];
			w0 = w1;
		}
		core_buf_append(buf, tmp, sizeof(double) * nw);
		for (int32 c = 0; c < net->sizes[l + 1]; c++)
			tmp[c] = net->b[l][c];
		core_buf_append(buf, tmp, sizeof(double) * net->sizes[l + 1]);
	}
	core_release(t->a, tmp);
	return core_buf_status(buf, t->err);
}

/* the training state's big arrays, once the model is written */
static void
TrainRelease(Trainer *t)
{
	core_release(t->a, t->Z);
	for (int32 l = 0; l < t->net.L; l++)
	{
		core_release(t->a, t->net.W[l]);
		core_release(t->a, t->net.b[l]);
		core_release(t->a, t->best.W[l]);
		core_release(t->a, t->best.b[l]);
		core_release(t->a, t->mW[l]);
		core_release(t->a, t->vW[l]);
		core_release(t->a, t->mb[l]);
		core_release(t->a, t->vb[l]);
		core_release(t->a, t->gW[l]);
		core_release(t->a, t->gb[l]);
	}
	for (int32 l = 0; l <= t->net.L; l++)
	{
		core_release(t->a, t->acts[l]);
		core_release(t->a, t->deltas[l]);
	}
	core_release(t->a, t->perm);
	core_release(t->a, t->ycls);
	core_release(t->a, t->ysorted);
	core_release(t->a, t->mean);
	core_release(t->a, t->scale);
	core_release(t->a, t->net.sizes);
}

CoreStatus
mlp_core_train(const CoreAlloc *a, const CoreInterrupts *hooks, int64 n_rows, int32 n_in,
			   const double *x, const double *y, const int32 *levels, const MlpParams *p,
			   size_t mem_limit, CoreBuf *out, MlpTrainInfo *info, CoreError *err)
{
	Trainer		t;
	int32		epoch;
	size_t		start;
	bool		stop = false;

	memset(&t, 0, sizeof(t));
	t.p = p;
	t.a = a;
	t.hooks = hooks;
	t.err = err;
	t.slice = p->work_slice > 0 ? p->work_slice : MLP_DEFAULT_SLICE;
	t.meter = t.slice;
	t.n_in = n_in;
	t.x = x;
	t.y = y;
	t.levels = levels;
	t.best_score = -INFINITY;
	t.best_loss = INFINITY;
	t.last_loss = NAN;

	if (TrainPlan(&t, n_rows, mem_limit) != CORE_OK ||
		TrainPrepareInputs(&t) != CORE_OK ||
		TrainInitWeights(&t) != CORE_OK ||
		TrainHoldOut(&t) != CORE_OK)
		return err->status;

	for (epoch = 0; epoch < p->epochs; epoch++)
	{
		double		loss_sum = 0;

		TrainEpoch(&t, &loss_sum);
		if (EpochEnd(&t, epoch, loss_sum, &stop) != CORE_OK)
			return err->status;
		if (stop)
		{
			epoch++;
			break;
		}
	}
	if (epoch > p->epochs)
		epoch = p->epochs;

	info->epochs = epoch;
	info->train_loss = t.n_val > 0 ? t.best_loss : t.last_loss;
	info->validation_score = t.n_val > 0 ? t.best_score : NAN;
	info->n_classes = t.nc;
	info->classes = t.classes;

	start = model_envelope_begin(out, MODEL_KIND_MLP);
	if (WriteMlp(&t, out, t.n_val > 0 ? &t.best : &t.net) != CORE_OK)
		return err->status;
	TrainRelease(&t);
	return model_envelope_finish(out, start, err);
}

/* ---------------------------------------------------------------------------
 * Loading and predicting
 * ------------------------------------------------------------------------- */

/* n doubles from the payload into a new array; `finite` rejects NaN and infinities */
static double *
ReadDoubles(const CoreAlloc *a, CoreReader *r, size_t n, bool finite, CoreError *err)
{
	const char *src;
	double	   *dst;

	if (n > r->left / sizeof(double))
	{
		model_corrupt(err, "The payload ends before the model structure does.");
		return NULL;
	}
	src = payload_take(r, sizeof(double) * n, err);
	if (src == NULL)
		return NULL;
	dst = core_array(a, n, sizeof(double), false, err);
	if (dst == NULL)
		return NULL;
	memcpy(dst, src, sizeof(double) * n);
	if (finite)
		for (size_t i = 0; i < n; i++)
			if (!isfinite(dst[i]))
			{
				model_corrupt(err, "A network parameter is not finite.");
				return NULL;
			}
	return dst;
}

/* the header fields and the layer sizes, each checked against the limits */
static CoreStatus
LoadShape(const CoreAlloc *a, CoreReader *r, Mlp *m, CoreError *err)
{
	uint8		head[4];
	int32		d = 0;

	if (!payload_read(r, head, 4, err))
		return err->status;
	if (head[0] > 1 || head[1] > MLP_LOGISTIC || head[2] || head[3])
		return model_corrupt(err, "Unknown network task or activation.");
	m->regression = head[0] == 1;
	m->activation = (MlpActivation) head[1];
	if (!payload_read(r, &m->n_in, 4, err) ||
		!payload_read(r, &m->n_classes, 4, err) ||
		!payload_read(r, &m->n_layers, 4, err))
		return err->status;
	if (m->n_in < 1 || m->n_in > MLP_MAX_INPUTS)
		return model_corrupt(err, "The network's input count is out of range.");
	if (m->regression ? m->n_classes != 0 : (m->n_classes < 2 || m->n_classes > MLP_MAX_CLASSES))
		return model_corrupt(err, "The network's class count is out of range.");
	if (m->n_layers < 1 || m->n_layers > MLP_MAX_LAYERS + 1)
		return model_corrupt(err, "The network's layer count is out of range.");
	if (!payload_read(r, m->sizes, sizeof(int32) * (m->n_layers + 1), err))
		return err->status;
	m->levels = core_array(a, m->n_in, sizeof(int32), false, err);
	if (m->levels == NULL || !payload_read(r, m->levels, sizeof(int32) * m->n_in, err))
		return err->status;
	for (int32 j = 0; j < m->n_in; j++)
	{
		if (m->levels[j] < 0 || m->levels[j] > MLP_MAX_LEVELS)
			return model_corrupt(err, "A categorical input has an invalid number of levels.");
		d += m->levels[j] > 0 ? m->levels[j] : 1;
	}
	if (m->sizes[0] != d || d > MLP_MAX_INPUTS)
		return model_corrupt(err, "The input layer does not match the inputs.");
	for (int32 l = 1; l < m->n_layers; l++)
		if (m->sizes[l] < 1 || m->sizes[l] > MLP_MAX_WIDTH)
			return model_corrupt(err, "A hidden layer width is out of range.");
	if (m->sizes[m->n_layers] != (m->regression ? 1 : m->n_classes))
		return model_corrupt(err, "The output layer does not match the classes.");
	return CORE_OK;
}

CoreStatus
mlp_core_load(const CoreAlloc *a, CoreReader *r, Mlp **out, CoreError *err)
{
	Mlp		   *m = core_array(a, 1, sizeof(Mlp), true, err);
	int32		maxw = 0;

	*out = NULL;
	if (m == NULL || LoadShape(a, r, m, err) != CORE_OK)
		return err->status;
	if ((m->mean = ReadDoubles(a, r, m->n_in, true, err)) == NULL ||
		(m->scale = ReadDoubles(a, r, m->n_in, true, err)) == NULL)
		return err->status;
	if (m->n_classes > 0)
	{
		if ((m->classes = ReadDoubles(a, r, m->n_classes, true, err)) == NULL)
			return err->status;
		for (int32 c = 1; c < m->n_classes; c++)
			if (!(m->classes[c] > m->classes[c - 1]))
				return model_corrupt(err, "The class list is not strictly ascending.");
	}
	for (int32 l = 0; l < m->n_layers; l++)
	{
		if ((m->W[l] = ReadDoubles(a, r, (size_t) m->sizes[l] * m->sizes[l + 1], true, err)) == NULL ||
			(m->b[l] = ReadDoubles(a, r, m->sizes[l + 1], true, err)) == NULL)
			return err->status;
	}
	if (payload_end(r, err) != CORE_OK)
		return err->status;
	for (int32 l = 0; l <= m->n_layers; l++)
		maxw = Max(maxw, m->sizes[l]);
	m->work = core_array(a, (size_t) 2 * maxw, sizeof(double), false, err);
	if (m->work == NULL)
		return err->status;
	*out = m;
	return CORE_OK;
}

CoreStatus
mlp_core_predict(const Mlp *m, const double *x, double *out, CoreError *err)
{
	double	   *a = m->work;
	double	   *z;
	int32		maxw = 0;

	for (int32 l = 0; l <= m->n_layers; l++)
		maxw = Max(maxw, m->sizes[l]);
	z = m->work + maxw;
	Expand(m->n_in, m->levels, m->mean, m->scale, x, a);
	for (int32 l = 0; l < m->n_layers; l++)
	{
		int32		nin = m->sizes[l],
					nout = m->sizes[l + 1];
		double	   *t;

		memcpy(z, m->b[l], sizeof(double) * nout);
		cblas_dgemv(CblasRowMajor, CblasTrans, nin, nout, 1.0, m->W[l], nout, a, 1, 1.0, z, 1);
		if (l + 1 < m->n_layers)
			for (int32 c = 0; c < nout; c++)
				z[c] = Act(m->activation, z[c]);
		t = a;
		a = z;
		z = t;
	}
	for (int32 c = 0; c < m->sizes[m->n_layers]; c++)
		if (!isfinite(a[c]))
		{
			core_error(err, CORE_RANGE, "the network's output is not finite for these features");
			return core_error_hint(err, "The features are far outside the range the network was trained on.");
		}
	if (m->regression)
		out[0] = a[0];
	else
	{
		double		mx = a[0],
					sum = 0;

		for (int32 c = 1; c < m->n_classes; c++)
			mx = Max(mx, a[c]);
		for (int32 c = 0; c < m->n_classes; c++)
		{
			out[c] = exp(a[c] - mx);
			sum += out[c];
		}
		for (int32 c = 0; c < m->n_classes; c++)
			out[c] /= sum;
	}
	return CORE_OK;
}

/* ---------------------------------------------------------------------------
 * Integrated gradients
 *
 * The attribution of expanded input j at standardised input z is
 * z_j · ∫_0^1 ∂f(αz)/∂z_j dα, from the all-zero standardised input (every
 * numeric input at its training mean, no category), for f the softmax
 * probability of one class or the regression output.
 *
 * Quadrature.  A relu network is piecewise affine along the path: its
 * gradient jumps wherever a hidden unit changes sign, and a rule over the
 * whole of [0, 1] converges only like 1/steps across such a jump (measured on
 * the regression test's 16-unit network: errors above 1e-3 at 64 nodes and
 * above 1e-5 at 1024).  So
 * the path is first cut where any hidden unit's pre-activation crosses 0,
 * layer by layer (between two cuts of the layers below, a layer's
 * pre-activations are affine in α, so each crossing is found exactly from
 * the values at the cut points), and each piece gets its own `steps`-node
 * Gauss-Legendre rule.  Within a piece the logits are affine in α, so a
 * regression output is integrated exactly and a softmax probability (an
 * analytic function) with an error falling exponentially in steps.  tanh and
 * logistic networks are analytic along the whole path: one piece.  The
 * gradients at the nodes are one forward and one backward pass over a batch
 * of rows (cblas_dgemm per layer, in chunks of IG_CHUNK nodes), exact for the
 * network as stored (backpropagation, no finite differences).
 *
 * The sum is written g(α_1) + Σ_k w_k (g(α_k) - g(α_1)): the same rule up to
 * rounding, and when the gradient is the same at every node (a linear
 * network) every difference is exactly 0, so the attribution is exactly
 * z_j · w_j whatever the number of steps.  A one-hot block's attributions are
 * summed into its raw input.
 * ------------------------------------------------------------------------- */

#define IG_CHUNK 64

/* Gauss-Legendre nodes and weights on [0, 1] (Newton on P_n from the usual cosine guesses) */
static void
GaussLegendre(int32 n, double *node, double *weight)
{
	for (int32 i = 0; i < (n + 1) / 2; i++)
	{
		double		x = cos(M_PI * (i + 0.75) / (n + 0.5)),
					dp = 1;

		for (int iter = 0; iter < 100; iter++)
		{
			double		p0 = 1,
						p1 = x,
						dx;

			for (int32 k = 2; k <= n; k++)
			{
				double		p2 = ((2.0 * k - 1) * x * p1 - (k - 1.0) * p0) / k;

				p0 = p1;
				p1 = p2;
			}
			dp = n * (x * p1 - p0) / (x * x - 1);
			dx = p1 / dp;
			x -= dx;
			if (fabs(dx) < 1e-16)
				break;
		}
		{
			double		p0 = 1,
						p1 = x;

			for (int32 k = 2; k <= n; k++)
			{
				double		p2 = ((2.0 * k - 1) * x * p1 - (k - 1.0) * p0) / k;

				p0 = p1;
				p1 = p2;
			}
			dp = n * (x * p1 - p0) / (x * x - 1);
		}
		node[i] = (1 - x) / 2;
		node[n - 1 - i] = (1 + x) / 2;
		weight[i] = weight[n - 1 - i] = 1.0 / ((1 - x * x) * dp * dp);
	}
	if (n % 2 == 1)
		node[n / 2] = 0.5;		/* the middle node exactly */
}

CoreStatus
mlp_core_ig_prepare(const CoreAlloc *a, const Mlp *m, int32 steps, MlpIg **out, CoreError *err)
{
	MlpIg	   *ig;
	int32		maxw = 0;

	*out = NULL;
	if (steps < 1 || steps > MLP_IG_MAX_STEPS)
		return core_error(err, CORE_INVALID, "the number of integrated-gradient steps must be between 1 and %d",
						  MLP_IG_MAX_STEPS);
	if ((ig = core_array(a, 1, sizeof(MlpIg), true, err)) == NULL ||
		(ig->node = core_array(a, steps, sizeof(double), false, err)) == NULL ||
		(ig->weight = core_array(a, steps, sizeof(double), false, err)) == NULL ||
		(ig->alpha = core_array(a, IG_CHUNK, sizeof(double), false, err)) == NULL ||
		(ig->w = core_array(a, IG_CHUNK, sizeof(double), false, err)) == NULL)
		return err->status;
	ig->steps = steps;
	GaussLegendre(steps, ig->node, ig->weight);
	for (int32 l = 0; l <= m->n_layers; l++)
	{
		maxw = Max(maxw, m->sizes[l]);
		if ((ig->acts[l] = core_array(a, (size_t) IG_CHUNK * m->sizes[l], sizeof(double), false, err)) == NULL)
			return err->status;
	}
	if ((ig->g = core_array(a, (size_t) IG_CHUNK * maxw, sizeof(double), false, err)) == NULL ||
		(ig->g2 = core_array(a, (size_t) IG_CHUNK * maxw, sizeof(double), false, err)) == NULL ||
		(ig->z = core_array(a, m->sizes[0], sizeof(double), false, err)) == NULL ||
		(ig->gsum = core_array(a, m->sizes[0], sizeof(double), false, err)) == NULL ||
		(ig->g1 = core_array(a, m->sizes[0], sizeof(double), false, err)) == NULL)
		return err->status;
	*out = ig;
	return CORE_OK;
}

/*
 * Forward pass of rows alpha[0..B) · z through the first `layers` weight
 * layers into ig->acts; the last of them is left as pre-activations when
 * `pre` (and it is the output layer's logits when layers = n_layers).
 */
static void
IgForward(const Mlp *m, MlpIg *ig, const double *alpha, int32 B, int32 layers, bool pre)
{
	int32		n0 = m->sizes[0];

	for (int32 r = 0; r < B; r++)
		for (int32 j = 0; j < n0; j++)
			ig->acts[0][(int64) r * n0 + j] = alpha[r] * ig->z[j];
	for (int32 l = 0; l < layers; l++)
	{
		int32		nin = m->sizes[l],
					nout = m->sizes[l + 1];
		double	   *o = ig->acts[l + 1];

		for (int32 r = 0; r < B; r++)
			memcpy(o + (int64) r * nout, m->b[l], sizeof(double) * nout);
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, nout, nin, 1.0,
					ig->acts[l], nin, m->W[l], nout, 1.0, o, nout);
		if (l + 1 < m->n_layers && !(pre && l + 1 == layers))
			for (int64 e = 0; e < (int64) B * nout; e++)
				o[e] = Act(m->activation, o[e]);
	}
}

/* the gradients at rows alpha[0..B) of the path into ig->g (B x sizes[0]) */
static void
IgGradients(const Mlp *m, MlpIg *ig, const double *alpha, int32 B, int32 cls)
{
	int32		L = m->n_layers;
	int32		n0 = m->sizes[0];
	int32		K = m->sizes[L];
	double	   *g = ig->g,
			   *g2 = ig->g2;

	IgForward(m, ig, alpha, B, L, false);
	/* ∂f/∂logits */
	for (int32 r = 0; r < B; r++)
	{
		double	   *lg = ig->acts[L] + (int64) r * K;
		double	   *gr = g + (int64) r * K;

		if (m->regression)
			gr[0] = 1.0;
		else
		{
			double		mx = lg[0],
						sum = 0,
						pc;

			for (int32 c = 1; c < K; c++)
				mx = Max(mx, lg[c]);
			for (int32 c = 0; c < K; c++)
				sum += (gr[c] = exp(lg[c] - mx));
			for (int32 c = 0; c < K; c++)
				gr[c] /= sum;
			pc = gr[cls];
			for (int32 c = 0; c < K; c++)
				gr[c] = pc * ((c == cls ? 1.0 : 0.0) - gr[c]);
		}
	}
	/* back through the layers: g_l = (g_{l+1} W_l') ⊙ act'(h_l) */
	for (int32 l = L - 1; l >= 0; l--)
	{
		int32		nin = m->sizes[l],
					nout = m->sizes[l + 1];
		double	   *t;

		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, nin, nout, 1.0,
					g, nout, m->W[l], nout, 0.0, g2, nin);
		if (l > 0)
			for (int64 e = 0; e < (int64) B * nin; e++)
				g2[e] *= ActGrad(m->activation, ig->acts[l][e]);
		t = g;
		g = g2;
		g2 = t;
	}
	if (g != ig->g)
		memcpy(ig->g, g, sizeof(double) * (size_t) B * n0);
}

static int
CmpDouble(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * The cut points of a relu network's path: 0, 1 and every α in (0, 1)
 * where a hidden unit's pre-activation is 0, ascending, into *cuts (from a).
 * Other activations: just 0 and 1.
 */
static CoreStatus
IgCuts(const CoreAlloc *a, const Mlp *m, MlpIg *ig, double **cuts_out, int32 *n_out, CoreError *err)
{
	int32		n = 2,
				cap = 64;
	double	   *cuts = core_array(a, cap, sizeof(double), false, err);

	if (cuts == NULL)
		return err->status;
	cuts[0] = 0;
	cuts[1] = 1;
	if (m->activation == MLP_RELU)
		for (int32 l = 1; l < m->n_layers; l++)
		{
			int32		w = m->sizes[l];
			int32		n_before = n;
			double		prev_alpha = 0;
			double	   *prev = NULL;

			/*
			 * pre-activations of hidden layer l at every cut point, in chunks
			 * that overlap by one point (a chunk's first row is the previous
			 * chunk's last, whose values the next forward pass overwrites)
			 */
			for (int32 p0 = 0; p0 < n_before; p0 += IG_CHUNK - 1)
			{
				int32		B = Min(IG_CHUNK, n_before - p0);

				IgForward(m, ig, cuts + p0, B, l, true);
				for (int32 r = 0; r < B; r++)
				{
					const double *u = ig->acts[l] + (int64) r * w;

					if (prev != NULL && !(p0 > 0 && r == 0))
						for (int32 j = 0; j < w; j++)
							if ((prev[j] < 0 && u[j] > 0) || (prev[j] > 0 && u[j] < 0))
							{
								double		al = prev_alpha + (cuts[p0 + r] - prev_alpha) * prev[j] / (prev[j] - u[j]);

								if (n == cap)
								{
									double	   *bigger;

									if (cap >= MLP_IG_MAX_PIECES)
									{
										core_error(err, CORE_LIMIT, "the network's path has more than %d linear pieces",
												   MLP_IG_MAX_PIECES);
										return core_error_hint(err, "Integrated gradients of so large a relu network are not supported.");
									}
									if ((bigger = core_array(a, (size_t) cap * 2, sizeof(double), false, err)) == NULL)
										return err->status;
									memcpy(bigger, cuts, sizeof(double) * n);
									core_release(a, cuts);
									cuts = bigger;
									cap *= 2;
								}
								cuts[n++] = al;
							}
					prev = (double *) u;
					prev_alpha = cuts[p0 + r];
				}
			}
			qsort(cuts, n, sizeof(double), CmpDouble);
		}
	*cuts_out = cuts;
	*n_out = n;
	return CORE_OK;
}

CoreStatus
mlp_core_integrated_gradients(const CoreAlloc *a, const CoreInterrupts *hooks, const Mlp *m,
							  MlpIg *ig, const double *x, int32 cls, double *attr, CoreError *err)
{
	int32		n0 = m->sizes[0];
	double	   *cuts = NULL;
	int32		n_cuts = 0;
	int32		B = 0;
	bool		first = true;
	CoreStatus	st;

	Expand(m->n_in, m->levels, m->mean, m->scale, x, ig->z);
	if ((st = IgCuts(a, m, ig, &cuts, &n_cuts, err)) != CORE_OK)
		return st;
	ig->pieces = 0;
	memset(ig->gsum, 0, sizeof(double) * n0);
	for (int32 p = 0; p + 1 < n_cuts; p++)
	{
		double		s = cuts[p],
					len = cuts[p + 1] - cuts[p];

		if (!(len > 0))
			continue;
		ig->pieces++;
		for (int32 k = 0; k < ig->steps; k++)
		{
			ig->alpha[B] = s + len * ig->node[k];
			ig->w[B] = len * ig->weight[k];
			B++;
			if (B == IG_CHUNK || (p + 2 == n_cuts && k + 1 == ig->steps))
			{
				core_check_interrupts(hooks);
				IgGradients(m, ig, ig->alpha, B, cls);
				if (first)
					memcpy(ig->g1, ig->g, sizeof(double) * n0);
				first = false;
				for (int32 r = 0; r < B; r++)
					for (int32 j = 0; j < n0; j++)
						ig->gsum[j] += ig->w[r] * (ig->g[(int64) r * n0 + j] - ig->g1[j]);
				B = 0;
			}
		}
	}
	if (B > 0)
	{
		IgGradients(m, ig, ig->alpha, B, cls);
		if (first)
			memcpy(ig->g1, ig->g, sizeof(double) * n0);
		for (int32 r = 0; r < B; r++)
			for (int32 j = 0; j < n0; j++)
				ig->gsum[j] += ig->w[r] * (ig->g[(int64) r * n0 + j] - ig->g1[j]);
	}
	core_release(a, cuts);
	{
		int32		o = 0;

		for (int32 i = 0; i < m->n_in; i++)
		{
			int32		w = m->levels[i] == 0 ? 1 : m->levels[i];

			attr[i] = 0;
			for (int32 c = 0; c < w; c++, o++)
				attr[i] += ig->z[o] * (ig->g1[o] + ig->gsum[o]);
		}
	}
	return CORE_OK;
}
