/*
 * unit.h
 *	  A tiny assertion harness for the plain-C cores (see Makefile).
 *
 * A test is a void function; CHECK records a failure (file, line, the
 * expression) and lets the test go on, so one run lists every broken
 * expectation.  A test passes when none of its checks failed.  main()
 * (unit_main.c) runs every suite and ends with "unit: N passed, M failed".
 */
#ifndef MEDIA_RECO_UNIT_H
#define MEDIA_RECO_UNIT_H

#include "core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

extern void unit_fail(const char *file, int line, const char *fmt,...) pg_attribute_printf(3, 4);
extern void unit_run(const char *name, void (*fn) (void));

#define CHECK(cond) \
	do { if (!(cond)) unit_fail(__FILE__, __LINE__, "%s", #cond); } while (0)
#define CHECK_EQ_INT(a, b) \
	do { long long a_ = (long long) (a), b_ = (long long) (b); \
		 if (a_ != b_) unit_fail(__FILE__, __LINE__, "%s == %s (%lld vs %lld)", #a, #b, a_, b_); } while (0)
#define CHECK_NEAR(a, b, tol) \
	do { double a_ = (a), b_ = (b); \
		 if (!(fabs(a_ - b_) <= (tol))) unit_fail(__FILE__, __LINE__, "%s ~ %s (%.17g vs %.17g)", #a, #b, a_, b_); } while (0)
#define CHECK_STR(a, b) \
	do { const char *a_ = (a), *b_ = (b); \
		 if (strcmp(a_, b_) != 0) unit_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a, #b, a_, b_); } while (0)
#define RUN(fn) unit_run(#fn, fn)

/*
 * An arena over malloc for the cores' CoreAlloc: every block is tracked, so
 * unit_arena_reset frees what a core left (cores leave memory to the
 * allocator's owner, as on error), and an optional byte budget makes the
 * allocator fail, to test CORE_NOMEM paths.
 */
extern CoreAlloc unit_arena;
extern void unit_arena_reset(void);
extern void unit_arena_fail_after(size_t bytes);	/* 0: never fail */
extern size_t unit_arena_live(void);	/* bytes held */

/* deterministic pseudo-random numbers for test data (splitmix64) */
extern uint64 unit_rand(uint64 *state);
extern double unit_uniform(uint64 *state);	/* [0, 1) */

/* the suites */
extern void core_suite(void);
extern void simcore_suite(void);
extern void mlp_suite(void);
extern void forest_suite(void);
extern void treeshap_suite(void);
extern void ease_suite(void);
extern void als_suite(void);
extern void pairsums_suite(void);

#endif
