/*
 * test_forest.c
 *	  The forest core's training under interrupts: polls inside a tree (so
 *	  one big tree cannot hold a cancel off), trees abandoned for an
 *	  interrupt and grown again, and model bytes that stay the same whatever
 *	  the thread count and however often training was interrupted.
 */
#include "unit.h"

#include <stdlib.h>

#include "forest_core.h"

enum
{
	FN = 4000, FNF = 4, FTREES = 5
};

static double fx[FN * FNF],
			fy[FN],
			fyr[FN];

/* noise labels, so the trees grow deep (thousands of nodes); some missing values */
static void
ForestData(void)
{
	uint64		rs = 42;

	for (int i = 0; i < FN; i++)
	{
		for (int j = 0; j < FNF; j++)
		{
			uint64		r = unit_rand(&rs);

			fx[i * FNF + j] = r % 23 == 0 ? NAN : (double) (r % 1000);
		}
		fy[i] = (double) (unit_rand(&rs) % 3);
		fyr[i] = unit_uniform(&rs) * 100.0 + (isnan(fx[i * FNF]) ? 0 : fx[i * FNF] / 10.0);
	}
}

static ForestParams
Params(ForestTask task)
{
	ForestParams p;

	memset(&p, 0, sizeof(p));
	p.task = task;
	p.n_trees = FTREES;
	p.min_samples_leaf = 1;
	p.min_samples_split = 2;
	p.max_features_mode = MAXF_DEFAULT;
	p.bootstrap = true;
	p.sample_fraction = 1.0;
	p.seed = 9;
	return p;
}

static int	polls,
			process_calls,
			pending_period;
static bool raised;

/*
 * An interrupt arrives at every pending_period-th poll (never when 0) and,
 * like the server's, stays pending until processed; processing returns,
 * except with pending_period 1, where it stays pending for good.
 */
static bool
PeriodicPending(void)
{
	polls++;
	if (pending_period > 0 && polls % pending_period == 0)
		raised = true;
	return raised;
}

static void
ReturningProcess(void)
{
	process_calls++;
	if (pending_period != 1)
		raised = false;
}

static const CoreInterrupts periodic_hooks = {PeriodicPending, ReturningProcess};

static CoreStatus
TrainForest(const ForestParams *p, const double *y, int threads, const CoreInterrupts *hooks,
			CoreBuf *out, ForestTrainInfo *info)
{
	ForestTrainEnv env;
	CoreError	err;
	CoreStatus	st;

	memset(&env, 0, sizeof(env));
	env.alloc = &unit_arena;
	env.hooks = hooks;
	env.nthreads = threads;
	env.mem_limit = (size_t) 1 << 30;
	memset(info, 0, sizeof(*info));
	core_buf_init(out, &unit_arena, 1024);
	st = forest_core_train(FN, FNF, fx, y, p, &env, out, info, &err);
	if (st == CORE_OK)
		st = core_buf_status(out, &err);
	if (st != CORE_OK)
		fprintf(stderr, "forest_core_train: %s\n", err.message);
	return st;
}

static bool
SameBytes(const CoreBuf *a, const CoreBuf *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/*
 * The main thread polls inside the trees, not only between them: a single
 * thread growing FTREES trees polls thousands of times (every node and
 * every feature tried), and processing interrupts that return changes no
 * byte of the model.
 */
static void
test_forest_polls_inside_trees(void)
{
	ForestParams p = Params(FOREST_CLASSIFICATION);
	ForestTrainInfo info;
	CoreBuf		ref,
				out;

	ForestData();
	CHECK_EQ_INT(TrainForest(&p, fy, 1, &core_no_interrupts, &ref, &info), CORE_OK);
	CHECK(info.nodes > 1000 * FTREES);
	CHECK_EQ_INT(info.regrown, 0);

	polls = process_calls = 0;
	pending_period = 0;
	raised = false;
	CHECK_EQ_INT(TrainForest(&p, fy, 1, &periodic_hooks, &out, &info), CORE_OK);
	CHECK(SameBytes(&ref, &out));
	CHECK(polls > info.nodes);	/* at least one poll per node */
	CHECK_EQ_INT(process_calls, 0);
	CHECK_EQ_INT(info.regrown, 0);
}

/*
 * Interrupts that are processed and return, arriving while trees grow on
 * 1, 2 and 4 threads: trees are abandoned and grown again, and the model is
 * byte for byte the uninterrupted one, for classification and for
 * regression, with bootstrap rows and with a subsample.
 */
static void
test_forest_regrown_trees_same_bytes(void)
{
	const int	threads[] = {1, 2, 4};

	ForestData();
	for (int task = 0; task < 2; task++)
		for (int sampling = 0; sampling < 2; sampling++)
		{
			ForestParams p = Params(task == 0 ? FOREST_CLASSIFICATION : FOREST_REGRESSION);
			const double *y = task == 0 ? fy : fyr;
			ForestTrainInfo info;
			CoreBuf		ref,
						out;

			if (sampling == 1)
			{
				p.bootstrap = false;
				p.sample_fraction = 0.6;
			}
			CHECK_EQ_INT(TrainForest(&p, y, 1, &core_no_interrupts, &ref, &info), CORE_OK);
			for (int k = 0; k < 3; k++)
			{
				CHECK_EQ_INT(TrainForest(&p, y, threads[k], &core_no_interrupts, &out, &info), CORE_OK);
				CHECK(SameBytes(&ref, &out));

				/* an interrupt every 700 polls: several per tree */
				polls = process_calls = 0;
				pending_period = 700;
				raised = false;
				CHECK_EQ_INT(TrainForest(&p, y, threads[k], &periodic_hooks, &out, &info), CORE_OK);
				CHECK(SameBytes(&ref, &out));
				CHECK(process_calls > 0);
				CHECK(info.regrown > 0);
			}
		}
	pending_period = 0;
	raised = false;
}

/*
 * An interrupt that stays pending whatever process() does (as when the
 * server holds interrupts off) cannot stall training: a pass that grows no
 * tree is followed by one that polls between trees only, and the model is
 * still the same bytes.
 */
static void
test_forest_stuck_interrupt_progresses(void)
{
	ForestParams p = Params(FOREST_CLASSIFICATION);
	ForestTrainInfo info;
	CoreBuf		ref,
				out;

	ForestData();
	CHECK_EQ_INT(TrainForest(&p, fy, 1, &core_no_interrupts, &ref, &info), CORE_OK);
	for (int threads = 1; threads <= 3; threads += 2)
	{
		polls = process_calls = 0;
		pending_period = 1;
		raised = false;
		CHECK_EQ_INT(TrainForest(&p, fy, threads, &periodic_hooks, &out, &info), CORE_OK);
		CHECK(SameBytes(&ref, &out));
		/* one thread: every tree is abandoned at its root in the first pass */
		CHECK(threads == 1 ? info.regrown == FTREES : info.regrown > 0);
		CHECK(process_calls > 0);
	}
	pending_period = 0;
	raised = false;
}

void
forest_suite(void)
{
	RUN(test_forest_polls_inside_trees);
	RUN(test_forest_regrown_trees_same_bytes);
	RUN(test_forest_stuck_interrupt_progresses);
}
