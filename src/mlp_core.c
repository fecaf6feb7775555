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
 * the calling backend's thread (OpenBLAS is pinned to one thread).
 */
#include "postgres.h"

#include <math.h>
#include <cblas.h>

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "arrays.h"
#include "core_pg.h"
#include "mlp_core.h"
#include "model_blob_pg.h"
#include "training_core.h"

/*
 * Training runs in single precision (cblas_sgemm: twice the arithmetic per
 * cycle and half the memory traffic of double); the model is stored, and
 * prediction runs, in double.
 */
typedef float real;

typedef struct Net
{
	int32		L;				/* weight layers */
	int32	   *sizes;			/* [L + 1] */
	real	   *W[MLP_MAX_LAYERS + 1];
	real	   *b[MLP_MAX_LAYERS + 1];
} Net;

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

/* forward pass over B rows: acts[0] is the input, acts[L] the output (softmax or linear) */
static void
Forward(const Net *net, MlpActivation act, bool regression, int32 B, real **acts)
{
	for (int32 l = 0; l < net->L; l++)
	{
		int32		nin = net->sizes[l],
					nout = net->sizes[l + 1];
		real	   *out = acts[l + 1];

		CHECK_FOR_INTERRUPTS();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, nout, nin,
					1.0f, acts[l], nin, net->W[l], nout, 0.0f, out, nout);
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
	}
}

/* score on held-out rows: accuracy, or R² for regression */
static double
Score(const Net *net, MlpActivation act, bool regression, const real *Z, const double *y,
	  const int32 *ycls, const int32 *rows, int32 n, int32 B, real **acts)
{
	int32		d = net->sizes[0],
				nout = net->sizes[net->L];
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

		CHECK_FOR_INTERRUPTS();
		for (int32 r = 0; r < nb; r++)
			memcpy(acts[0] + (int64) r * d, Z + (int64) rows[s + r] * d, sizeof(real) * d);
		Forward(net, act, regression, nb, acts);
		for (int32 r = 0; r < nb; r++)
		{
			const real *o = acts[net->L] + (int64) r * nout;
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
				hits += best == ycls[i];
			}
		}
	}
	if (regression)
		return ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0;
	return hits / Max(n, 1);
}

static void
WriteMlp(StringInfo buf, const MlpParams *p, int32 n_in, int32 nc, const double *classes,
		 const int32 *levels, const double *mean, const double *scale, const Net *net)
{
	uint8		head[4] = {(uint8) p->regression, (uint8) p->activation, 0, 0};

	appendBinaryStringInfo(buf, (char *) head, 4);
	appendBinaryStringInfo(buf, (char *) &n_in, 4);
	appendBinaryStringInfo(buf, (char *) &nc, 4);
	appendBinaryStringInfo(buf, (char *) &net->L, 4);
	appendBinaryStringInfo(buf, (char *) net->sizes, sizeof(int32) * (net->L + 1));
	appendBinaryStringInfo(buf, (char *) levels, sizeof(int32) * n_in);
	appendBinaryStringInfo(buf, (char *) mean, sizeof(double) * n_in);
	appendBinaryStringInfo(buf, (char *) scale, sizeof(double) * n_in);
	if (nc > 0)
		appendBinaryStringInfo(buf, (char *) classes, sizeof(double) * nc);
	for (int32 l = 0; l < net->L; l++)
	{
		Size		nw = (Size) net->sizes[l] * net->sizes[l + 1];
		double	   *tmp = palloc_extended(sizeof(double) * Max(nw, (Size) net->sizes[l + 1]), MCXT_ALLOC_HUGE);

		for (Size w = 0; w < nw; w++)
			tmp[w] = net->W[l][w];
		appendBinaryStringInfo(buf, (char *) tmp, sizeof(double) * nw);
		for (int32 c = 0; c < net->sizes[l + 1]; c++)
			tmp[c] = net->b[l][c];
		appendBinaryStringInfo(buf, (char *) tmp, sizeof(double) * net->sizes[l + 1]);
		pfree(tmp);
	}
}

bytea *
mlp_train(int64 n_rows, int32 n_in, const double *x, const double *y, const int32 *levels,
		  const MlpParams *p, Size mem_limit, MlpTrainInfo *info)
{
	int32		n = (int32) n_rows;
	int32		nc = 0;
	double	   *classes = NULL;
	int32	   *ycls = NULL;
	int32	   *ord;
	double	   *ysorted;
	double	   *mean,
			   *scale;
	real	   *Z;
	double	   *zrow;
	int32		d = 0;
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
	int32		B = Max(1, Min(p->batch_size, n));
	int32	   *perm;
	int32		n_val = 0,
				n_train;
	pg_prng_state rng;
	double		best_score = -INFINITY,
				best_loss = INFINITY,
				last_loss = NAN;
	int32		since_best = 0,
				epoch;
	int64		step = 0;
	int64		est;
	StringInfoData buf;

	if (n_rows < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("no training rows"),
				 errdetail("Rows with a NULL label are skipped.")));
	if (n_rows >= PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many training rows")));
	for (int32 j = 0; j < n_in; j++)
		d += levels[j] > 0 ? levels[j] : 1;
	if (d > MLP_MAX_INPUTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the network would have %d inputs (categories one-hot encoded); the limit is %d",
						d, MLP_MAX_INPUTS)));

	/* classes */
	if (!p->regression)
	{
		CoreAlloc	a;
		CoreError	err;

		core_pg_alloc(&a, CurrentMemoryContext);
		core_pg_check(training_classes(&a, y, n, MLP_MAX_CLASSES, &classes, &nc, &err), &err);
	}

	/* the layer sizes and the memory they need */
	net.L = p->n_hidden + 1;
	net.sizes = palloc(sizeof(int32) * (net.L + 1));
	net.sizes[0] = d;
	for (int32 h = 0; h < p->n_hidden; h++)
		net.sizes[h + 1] = p->hidden[h];
	net.sizes[net.L] = p->regression ? 1 : nc;
	est = (int64) n * d * 4 + (int64) n * 24;
	{
		int64		bytes = 64 + (int64) n_in * 20 + (int64) nc * 8;

		for (int32 l = 0; l < net.L; l++)
			bytes += ((int64) net.sizes[l] * net.sizes[l + 1] + net.sizes[l + 1]) * 8;
		if (bytes > (int64) MaxAllocSize - 1024)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the network would need %lld MB of model bytes; the limit is 1 GB",
							(long long) (bytes >> 20)),
					 errhint("Use smaller hidden layers or fewer one-hot categories.")));
	}
	for (int32 l = 0; l < net.L; l++)
		est += ((int64) net.sizes[l] * net.sizes[l + 1] + net.sizes[l + 1]) * 8 * 6;
	for (int32 l = 0; l <= net.L; l++)
		est += (int64) B * net.sizes[l] * 8 * 2;
	if (est > (int64) mem_limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("network training needs about %lld MB, more than maintenance_work_mem (%zu MB)",
						(long long) (est >> 20) + 1, mem_limit >> 20),
				 errhint("Raise maintenance_work_mem, or use fewer rows, smaller layers or a smaller batch_size.")));

	/* canonical row order, standardisation, expanded inputs */
	ord = huge_array(n, sizeof(int32), true);
	canonical_row_order(n, n_in, x, y, ord);
	ysorted = huge_array(n, sizeof(double), true);
	for (int32 i = 0; i < n; i++)
		ysorted[i] = y[ord[i]];
	if (nc > 0)
	{
		ycls = huge_array(n, sizeof(int32), true);
		for (int32 i = 0; i < n; i++)
		{
			double	   *hit = bsearch(&ysorted[i], classes, nc, sizeof(double), cmp_double);

			ycls[i] = (int32) (hit - classes);
		}
	}
	/*
	 * Mean and standard deviation of each numeric input, row by row (the
	 * matrix is row-major) in canonical row order, so the sums do not depend
	 * on the arrival order.
	 */
	mean = palloc0(sizeof(double) * Max(n_in, 1));
	scale = palloc(sizeof(double) * Max(n_in, 1));
	{
		double	   *ss = palloc0(sizeof(double) * Max(n_in, 1));
		int64	   *cnt = palloc0(sizeof(int64) * Max(n_in, 1));

		for (int32 i = 0; i < n; i++)
		{
			const double *row = x + (int64) ord[i] * n_in;

			for (int32 j = 0; j < n_in; j++)
				if (!isnan(row[j]))
				{
					mean[j] += row[j];
					cnt[j]++;
				}
			if ((i & 4095) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		for (int32 j = 0; j < n_in; j++)
			mean[j] = (levels[j] == 0 && cnt[j] > 0) ? mean[j] / cnt[j] : 0;
		for (int32 i = 0; i < n; i++)
		{
			const double *row = x + (int64) ord[i] * n_in;

			for (int32 j = 0; j < n_in; j++)
				if (!isnan(row[j]))
					ss[j] += (row[j] - mean[j]) * (row[j] - mean[j]);
			if ((i & 4095) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		for (int32 j = 0; j < n_in; j++)
			scale[j] = (levels[j] == 0 && cnt[j] > 0 && ss[j] > 0) ? 1.0 / sqrt(ss[j] / cnt[j]) : 1.0;
		pfree(ss);
		pfree(cnt);
	}
	/* every element is written below: no zeroing pass over what can be gigabytes */
	Z = huge_array((Size) n * d, sizeof(real), false);
	zrow = huge_array(d, sizeof(double), true);
	for (int32 i = 0; i < n; i++)
	{
		Expand(n_in, levels, mean, scale, x + (int64) ord[i] * n_in, zrow);
		for (int32 c = 0; c < d; c++)
			Z[(int64) i * d + c] = (real) zrow[c];
		if ((i & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(zrow);
	CHECK_FOR_INTERRUPTS();

	/* weights: Glorot uniform (He for relu), zero biases; Adam or momentum state */
	pg_prng_seed(&rng, p->seed ^ UINT64CONST(0x6D6C70));
	best = net;
	for (int32 l = 0; l < net.L; l++)
	{
		int32		nin = net.sizes[l],
					nout = net.sizes[l + 1];
		Size		nw = (Size) nin * nout;
		double		limit = (p->activation == MLP_RELU && l + 1 < net.L)
			? sqrt(6.0 / nin) : sqrt(6.0 / (nin + nout));

		net.W[l] = huge_array(nw, sizeof(real), true);
		net.b[l] = huge_array(nout, sizeof(real), true);
		best.W[l] = huge_array(nw, sizeof(real), true);
		best.b[l] = huge_array(nout, sizeof(real), true);
		mW[l] = huge_array(nw, sizeof(real), true);
		vW[l] = huge_array(nw, sizeof(real), true);
		mb[l] = huge_array(nout, sizeof(real), true);
		vb[l] = huge_array(nout, sizeof(real), true);
		gW[l] = huge_array(nw, sizeof(real), true);
		gb[l] = huge_array(nout, sizeof(real), true);
		for (Size w = 0; w < nw; w++)
			net.W[l][w] = (real) ((2.0 * pg_prng_double(&rng) - 1.0) * limit);
	}
	for (int32 l = 0; l <= net.L; l++)
	{
		acts[l] = huge_array((Size) B * net.sizes[l], sizeof(real), true);
		deltas[l] = huge_array((Size) B * net.sizes[l], sizeof(real), true);
	}

	/* held-out rows for early stopping: a seeded shuffle, the first ones */
	perm = huge_array(n, sizeof(int32), true);
	for (int32 i = 0; i < n; i++)
		perm[i] = i;
	for (int32 i = n - 1; i > 0; i--)
	{
		int32		j = (int32) pg_prng_uint64_range(&rng, 0, i);
		int32		t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	if (p->validation_fraction > 0 && n >= 10)
		n_val = Max(1, (int32) llround(p->validation_fraction * n));
	n_train = n - n_val;

	for (epoch = 0; epoch < p->epochs; epoch++)
	{
		int32	   *tr = perm + n_val;
		double		loss_sum = 0;
		double		wsq = 0;

		/* reshuffle the training rows */
		for (int32 i = n_train - 1; i > 0; i--)
		{
			int32		j = (int32) pg_prng_uint64_range(&rng, 0, i);
			int32		t = tr[i];

			tr[i] = tr[j];
			tr[j] = t;
		}
		for (int32 s = 0; s < n_train; s += B)
		{
			int32		nb = Min(B, n_train - s);
			int32		nout = net.sizes[net.L];
			real	   *out = acts[net.L];
			real	   *dl = deltas[net.L];

			CHECK_FOR_INTERRUPTS();
			for (int32 r = 0; r < nb; r++)
				memcpy(acts[0] + (int64) r * d, Z + (int64) tr[s + r] * d, sizeof(real) * d);
			Forward(&net, p->activation, p->regression, nb, acts);

			/* output delta (already divided by the batch size) and the loss */
			for (int32 r = 0; r < nb; r++)
			{
				int32		i = tr[s + r];

				for (int32 c = 0; c < nout; c++)
				{
					double		o = out[(int64) r * nout + c];
					double		t = p->regression ? ysorted[i] : (ycls[i] == c ? 1.0 : 0.0);

					dl[(int64) r * nout + c] = (real) ((o - t) / nb);
				}
				if (p->regression)
				{
					double		e = out[(int64) r * nout] - ysorted[i];

					loss_sum += 0.5 * e * e;
				}
				else
					loss_sum -= log(Max(out[(int64) r * nout + ycls[i]], 1e-15));
			}

			/* backward: gradients of every layer, then the update */
			for (int32 l = net.L - 1; l >= 0; l--)
			{
				int32		nin = net.sizes[l],
							no = net.sizes[l + 1];

				CHECK_FOR_INTERRUPTS();
				cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nin, no, nb,
							1.0f, acts[l], nin, deltas[l + 1], no, 0.0f, gW[l], no);
				for (int32 c = 0; c < no; c++)
				{
					double		g = 0;

					for (int32 r = 0; r < nb; r++)
						g += deltas[l + 1][(int64) r * no + c];
					gb[l][c] = (real) g;
				}
				if (l > 0)
				{
					cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nin, no,
								1.0f, deltas[l + 1], no, net.W[l], no, 0.0f, deltas[l], nin);
					for (int64 e = 0; e < (int64) nb * nin; e++)
						deltas[l][e] *= (real) ActGrad(p->activation, acts[l][e]);
				}
				if (p->l2 > 0)
					for (Size w = 0; w < (Size) nin * no; w++)
						gW[l][w] += (real) (p->l2 * net.W[l][w] / nb);
			}
			step++;
			for (int32 l = 0; l < net.L; l++)
			{
				Size		nw = (Size) net.sizes[l] * net.sizes[l + 1];
				int32		no = net.sizes[l + 1];

				if (p->adam)
				{
					double		b1 = 0.9,
								b2 = 0.999,
								eps = 1e-8;
					double		lr = p->learning_rate * sqrt(1.0 - pow(b2, (double) step)) /
						(1.0 - pow(b1, (double) step));

					for (Size w = 0; w < nw; w++)
					{
						mW[l][w] = (real) (b1 * mW[l][w] + (1 - b1) * gW[l][w]);
						vW[l][w] = (real) (b2 * vW[l][w] + (1 - b2) * gW[l][w] * gW[l][w]);
						net.W[l][w] -= (real) (lr * mW[l][w] / (sqrt(vW[l][w]) + eps));
					}
					for (int32 c = 0; c < no; c++)
					{
						mb[l][c] = (real) (b1 * mb[l][c] + (1 - b1) * gb[l][c]);
						vb[l][c] = (real) (b2 * vb[l][c] + (1 - b2) * gb[l][c] * gb[l][c]);
						net.b[l][c] -= (real) (lr * mb[l][c] / (sqrt(vb[l][c]) + eps));
					}
				}
				else
				{
					for (Size w = 0; w < nw; w++)
					{
						mW[l][w] = (real) (p->momentum * mW[l][w] - p->learning_rate * gW[l][w]);
						net.W[l][w] += mW[l][w];
					}
					for (int32 c = 0; c < no; c++)
					{
						mb[l][c] = (real) (p->momentum * mb[l][c] - p->learning_rate * gb[l][c]);
						net.b[l][c] += mb[l][c];
					}
				}
			}
		}
		for (int32 l = 0; l < net.L; l++)
			for (Size w = 0; w < (Size) net.sizes[l] * net.sizes[l + 1]; w++)
				wsq += net.W[l][w] * net.W[l][w];
		/* as scikit-learn reports it: the mean loss plus 0.5 · l2 · ‖W‖² / batch size */
		last_loss = loss_sum / Max(n_train, 1) + 0.5 * p->l2 * wsq / B;
		if (!isfinite(last_loss))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("training diverged at epoch %d (the loss is not finite)", epoch + 1),
					 errhint("Lower learning_rate, or scale the regression target.")));

		/*
		 * Early stopping: on the held-out score, else on the training loss.
		 * The kept weights are those of the best score seen; `tol` only
		 * decides whether an epoch counts as progress for the patience.
		 */
		if (n_val > 0)
		{
			double		sc = Score(&net, p->activation, p->regression, Z, ysorted, ycls, perm, n_val,
								   B, acts);

			if (sc > best_score + p->tol)
				since_best = 0;
			else
				since_best++;
			if (sc > best_score)
			{
				best_score = sc;
				best_loss = last_loss;
				for (int32 l = 0; l < net.L; l++)
				{
					memcpy(best.W[l], net.W[l], sizeof(real) * net.sizes[l] * net.sizes[l + 1]);
					memcpy(best.b[l], net.b[l], sizeof(real) * net.sizes[l + 1]);
				}
			}
		}
		else
		{
			if (last_loss < best_loss - p->tol)
				since_best = 0;
			else
				since_best++;
			best_loss = Min(best_loss, last_loss);
		}
		if (since_best >= p->patience)
		{
			epoch++;
			break;
		}
	}
	if (epoch > p->epochs)
		epoch = p->epochs;

	info->epochs = epoch;
	info->train_loss = n_val > 0 ? best_loss : last_loss;
	info->validation_score = n_val > 0 ? best_score : NAN;
	info->n_classes = nc;
	info->classes = classes;

	model_blob_begin(&buf, MODEL_KIND_MLP);
	WriteMlp(&buf, p, n_in, nc, classes, levels, mean, scale, n_val > 0 ? &best : &net);
	return model_blob_finish(&buf);
}

/* ---------------------------------------------------------------------------
 * Loading and predicting
 * ------------------------------------------------------------------------- */

static void
Corrupt(const char *what)
{
	blob_corrupt(what);
}

static const double *
ReadDoubles(BlobReader *r, Size n, bool finite)
{
	const double *src;
	double	   *dst;

	if (n > r->left / sizeof(double))
		Corrupt("The payload ends before the model structure does.");
	src = (const double *) blob_take(r, sizeof(double) * n);
	dst = palloc_extended(Max(sizeof(double) * n, 1), MCXT_ALLOC_HUGE);
	memcpy(dst, src, sizeof(double) * n);
	if (finite)
		for (Size i = 0; i < n; i++)
			if (!isfinite(dst[i]))
				Corrupt("A network parameter is not finite.");
	return dst;
}

Mlp *
mlp_load(BlobReader *r)
{
	Mlp		   *m = palloc0(sizeof(Mlp));
	uint8		head[4];
	int32		d = 0,
				maxw = 0;

	blob_read(r, head, 4);
	if (head[0] > 1 || head[1] > MLP_LOGISTIC || head[2] || head[3])
		Corrupt("Unknown network task or activation.");
	m->regression = head[0] == 1;
	m->activation = (MlpActivation) head[1];
	blob_read(r, &m->n_in, 4);
	blob_read(r, &m->n_classes, 4);
	blob_read(r, &m->n_layers, 4);
	if (m->n_in < 1 || m->n_in > MLP_MAX_INPUTS)
		Corrupt("The network's input count is out of range.");
	if (m->regression ? m->n_classes != 0 : (m->n_classes < 2 || m->n_classes > MLP_MAX_CLASSES))
		Corrupt("The network's class count is out of range.");
	if (m->n_layers < 1 || m->n_layers > MLP_MAX_LAYERS + 1)
		Corrupt("The network's layer count is out of range.");
	blob_read(r, m->sizes, sizeof(int32) * (m->n_layers + 1));
	m->levels = palloc(sizeof(int32) * m->n_in);
	blob_read(r, m->levels, sizeof(int32) * m->n_in);
	for (int32 j = 0; j < m->n_in; j++)
	{
		if (m->levels[j] < 0 || m->levels[j] > MLP_MAX_LEVELS)
			Corrupt("A categorical input has an invalid number of levels.");
		d += m->levels[j] > 0 ? m->levels[j] : 1;
	}
	if (m->sizes[0] != d || d > MLP_MAX_INPUTS)
		Corrupt("The input layer does not match the inputs.");
	for (int32 l = 1; l < m->n_layers; l++)
		if (m->sizes[l] < 1 || m->sizes[l] > MLP_MAX_WIDTH)
			Corrupt("A hidden layer width is out of range.");
	if (m->sizes[m->n_layers] != (m->regression ? 1 : m->n_classes))
		Corrupt("The output layer does not match the classes.");
	m->mean = (double *) ReadDoubles(r, m->n_in, true);
	m->scale = (double *) ReadDoubles(r, m->n_in, true);
	if (m->n_classes > 0)
	{
		m->classes = (double *) ReadDoubles(r, m->n_classes, true);
		for (int32 c = 1; c < m->n_classes; c++)
			if (!(m->classes[c] > m->classes[c - 1]))
				Corrupt("The class list is not strictly ascending.");
	}
	for (int32 l = 0; l < m->n_layers; l++)
	{
		m->W[l] = (double *) ReadDoubles(r, (Size) m->sizes[l] * m->sizes[l + 1], true);
		m->b[l] = (double *) ReadDoubles(r, m->sizes[l + 1], true);
	}
	blob_expect_end(r);
	for (int32 l = 0; l <= m->n_layers; l++)
		maxw = Max(maxw, m->sizes[l]);
	m->work = palloc(sizeof(double) * 2 * maxw);
	return m;
}

void
mlp_predict(const Mlp *m, const double *x, double *out)
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
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the network's output is not finite for these features"),
					 errhint("The features are far outside the range the network was trained on.")));
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
}
