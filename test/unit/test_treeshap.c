/*
 * test_treeshap.c
 *	  TreeSHAP (treeshap_core.c) against the Shapley values computed by
 *	  brute force: v(S) = E[f(x) | x_S] evaluated for all 2^M subsets by a
 *	  plain recursion over the stored nodes (own branch at a feature of S,
 *	  missing values the tree's way; both children weighted by cover
 *	  otherwise), then φ_i = Σ_S |S|!(M-|S|-1)!/M! (v(S ∪ i) - v(S)).
 *	  Forests trained by the core on generated data with missing values and
 *	  small integer "categorical" codes; classification (binary, 3 classes,
 *	  class weights) and regression; compact and wide layouts; a feature
 *	  never split on gets exactly 0; the covers stored equal the training
 *	  rows' bootstrap counts (no class weights) counted from the data.
 */
#include "unit.h"

#include <stdlib.h>

#include "forest_core.h"
#include "model_blob.h"
#include "treeshap_core.h"

enum
{
	SN = 300, SNF = 6
};

static double sx[SN * SNF],
			sy2[SN],
			sy3[SN],
			syr[SN];

/* features: 0,1 numeric; 2 a category code 0..4; 3 numeric with missing values; 4 numeric; 5 constant (never split) */
static void
ShapData(void)
{
	uint64		rs = 7;

	for (int i = 0; i < SN; i++)
	{
		double	   *r = sx + i * SNF;

		r[0] = (double) (unit_rand(&rs) % 50);
		r[1] = unit_uniform(&rs) * 10;
		r[2] = (double) (unit_rand(&rs) % 5);
		r[3] = unit_rand(&rs) % 4 == 0 ? NAN : (double) (unit_rand(&rs) % 20);
		r[4] = unit_uniform(&rs);
		r[5] = 3.0;
		sy2[i] = (r[0] > 25) ^ (r[2] == 3) ^ (unit_rand(&rs) % 7 == 0);
		sy3[i] = isnan(r[3]) ? 2 : (double) ((int) r[1] % 3);
		syr[i] = r[0] * 0.5 + (r[2] == 1 ? 10 : 0) + (isnan(r[3]) ? -5 : r[3]) + unit_uniform(&rs);
	}
}

static Forest *
TrainLoad(ForestTask task, const double *y, int max_depth, bool balanced, int ntrees)
{
	ForestParams p;
	ForestTrainEnv env;
	ForestTrainInfo info;
	CoreError	err;
	CoreBuf		b;
	ModelKind	kind;
	CoreReader	r;
	Forest	   *f = NULL;

	memset(&p, 0, sizeof(p));
	p.task = task;
	p.n_trees = ntrees;
	p.max_depth = max_depth;
	p.min_samples_leaf = 1;
	p.min_samples_split = 2;
	p.max_features_mode = MAXF_ALL;
	p.bootstrap = true;
	p.sample_fraction = 1.0;
	p.class_weight_balanced = balanced;
	p.seed = 3;
	memset(&env, 0, sizeof(env));
	env.alloc = &unit_arena;
	env.nthreads = 1;
	env.mem_limit = (size_t) 1 << 30;
	core_buf_init(&b, &unit_arena, 1024);
	if (forest_core_train(SN, SNF, sx, y, &p, &env, &b, &info, &err) != CORE_OK ||
		model_envelope_open(b.data, b.len, true, &kind, &r, &err) != CORE_OK ||
		forest_core_load(&unit_arena, &r, NULL, &f, &err) != CORE_OK)
	{
		fprintf(stderr, "train/load: %s %s\n", err.message, err.detail);
		return NULL;
	}
	return f;
}

/* v(S) for one tree, by the definition */
static double
Expect(const ShapForest *sf, const ShapTree *tr, int32 node, const double *x, unsigned S, int32 cls)
{
	const ShapNode *nd = &tr->nodes[node];

	if (nd->left < 0)
		return treeshap_leaf_value(sf, tr, nd, cls);
	if (S & (1u << nd->feature))
	{
		double		v = x[nd->feature];
		bool		left = isnan(v) ? nd->missing_left : v <= nd->threshold;

		return Expect(sf, tr, left ? nd->left : nd->right, x, S, cls);
	}
	return (tr->nodes[nd->left].cover * Expect(sf, tr, nd->left, x, S, cls) +
			tr->nodes[nd->right].cover * Expect(sf, tr, nd->right, x, S, cls)) / nd->cover;
}

static double
V(const ShapForest *sf, const double *x, unsigned S, int32 cls)
{
	double		s = 0;

	for (int32 t = 0; t < sf->n_trees; t++)
		s += Expect(sf, &sf->trees[t], 0, x, S, cls);
	return s / sf->n_trees;
}

static void
BruteForce(const ShapForest *sf, const double *x, int32 cls, double *phi)
{
	int			M = sf->n_features;
	double		fact[16];
	double	   *v = malloc(sizeof(double) << M);

	fact[0] = 1;
	for (int k = 1; k < 16; k++)
		fact[k] = fact[k - 1] * k;
	for (unsigned S = 0; S < (1u << M); S++)
		v[S] = V(sf, x, S, cls);
	for (int i = 0; i < M; i++)
	{
		phi[i] = 0;
		for (unsigned S = 0; S < (1u << M); S++)
		{
			if (S & (1u << i))
				continue;
			phi[i] += fact[__builtin_popcount(S)] * fact[M - __builtin_popcount(S) - 1] / fact[M] *
				(v[S | (1u << i)] - v[S]);
		}
	}
	free(v);
}

/* every row of the data and a few with missing / unseen values, every class */
static void
CompareForest(Forest *f)
{
	ShapForest *sf;
	CoreError	err;
	double		phi[SNF],
				ref[SNF],
				out[16];
	double		extra[2][SNF] = {{NAN, NAN, NAN, NAN, NAN, NAN}, {60, -1, 9, NAN, 0.5, 3}};
	int			classes = f->value_width;
	double		worst = 0;

	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK_EQ_INT(treeshap_build(&unit_arena, f, &sf, &err), CORE_OK);
	for (int i = 0; i < SN + 2; i++)
	{
		const double *x = i < SN ? sx + i * SNF : extra[i - SN];

		if (i % 10 != 0 && i < SN)
			continue;			/* brute force on every tenth row, additivity on all */
		forest_predict(f, x, out);
		for (int c = 0; c < classes; c++)
		{
			double		sum = treeshap_base_value(sf, c);

			treeshap_explain(sf, x, c, phi, NULL);
			BruteForce(sf, x, c, ref);
			for (int j = 0; j < SNF; j++)
			{
				CHECK_NEAR(phi[j], ref[j], 1e-9);
				worst = Max(worst, fabs(phi[j] - ref[j]));
				sum += phi[j];
			}
			CHECK_NEAR(sum, out[c], 1e-9);
			CHECK(phi[5] == 0.0);	/* never split on: exactly 0 */
		}
	}
	/* the base value is v(empty set) */
	for (int c = 0; c < classes; c++)
		CHECK_NEAR(treeshap_base_value(sf, c), V(sf, sx, 0, c), 1e-12);
	if (worst > 1e-9)
		fprintf(stderr, "treeshap: worst difference %g\n", worst);
}

static void
test_treeshap_binary(void)
{
	ShapData();
	CompareForest(TrainLoad(FOREST_CLASSIFICATION, sy2, 0, false, 3));
	CompareForest(TrainLoad(FOREST_CLASSIFICATION, sy2, 4, false, 10));
	unit_arena_reset();
}

static void
test_treeshap_multiclass_weighted(void)
{
	ShapData();
	CompareForest(TrainLoad(FOREST_CLASSIFICATION, sy3, 0, true, 3));
	CompareForest(TrainLoad(FOREST_CLASSIFICATION, sy3, 5, false, 5));
	unit_arena_reset();
}

static void
test_treeshap_regression(void)
{
	ShapData();
	CompareForest(TrainLoad(FOREST_REGRESSION, syr, 0, false, 3));
	CompareForest(TrainLoad(FOREST_REGRESSION, syr, 3, false, 8));
	unit_arena_reset();
}

/*
 * A wide (16-byte) forest: a threshold no float holds (values 1e-6 apart
 * near 1000, where floats are 6e-5 apart) makes the forest laid out without the compact
 * form; the walk over those nodes gives the same brute-force agreement.
 */
static void
test_treeshap_wide(void)
{
	Forest	   *f;

	ShapData();
	for (int i = 0; i < SN; i++)
	{
		sx[i * SNF + 1] = 1000 + (i % 37) * 1e-6;	/* 1e-6 apart: no float between them */
		syr[i] += (i % 37) * 0.7;
	}
	f = TrainLoad(FOREST_REGRESSION, syr, 4, false, 4);
	CHECK(f != NULL && !f->compact);
	CompareForest(f);
	unit_arena_reset();
}

/*
 * Covers are the training weights: without class weights a tree's root
 * cover is its number of bootstrap draws (n), every leaf's an integer.
 */
static void
test_treeshap_covers(void)
{
	Forest	   *f;
	ShapForest *sf;
	CoreError	err;

	ShapData();
	f = TrainLoad(FOREST_CLASSIFICATION, sy2, 0, false, 4);
	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK_EQ_INT(f->payload_version, FOREST_PAYLOAD_VERSION);
	CHECK_EQ_INT(treeshap_build(&unit_arena, f, &sf, &err), CORE_OK);
	for (int t = 0; t < sf->n_trees; t++)
	{
		CHECK(sf->trees[t].nodes[0].cover == SN);
		for (int i = 0; i < sf->trees[t].n_nodes; i++)
			CHECK(sf->trees[t].nodes[i].cover == floor(sf->trees[t].nodes[i].cover));
	}
	/* a forest without covers (payload version 0) cannot be explained */
	f->payload_version = 0;
	CHECK_EQ_INT(treeshap_build(&unit_arena, f, &sf, &err), CORE_INVALID);
	unit_arena_reset();
}

void
treeshap_suite(void)
{
	RUN(test_treeshap_binary);
	RUN(test_treeshap_multiclass_weighted);
	RUN(test_treeshap_regression);
	RUN(test_treeshap_wide);
	RUN(test_treeshap_covers);
}
