/*
 * unit_main.c
 *	  The runner and the arena allocator of the unit tests (unit.h).
 */
#include "unit.h"

#include <stdarg.h>
#include <stdlib.h>

static int	n_passed,
			n_failed;
static int	current_failures;
static const char *current_name;

void
unit_fail(const char *file, int line, const char *fmt,...)
{
	va_list		ap;

	if (current_failures++ < 20)
	{
		fprintf(stderr, "FAIL %s: %s:%d: ", current_name, file, line);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
}

void
unit_run(const char *name, void (*fn) (void))
{
	current_name = name;
	current_failures = 0;
	fn();
	unit_arena_reset();
	unit_arena_fail_after(0);
	if (current_failures == 0)
		n_passed++;
	else
	{
		n_failed++;
		fprintf(stderr, "failed: %s (%d checks)\n", name, current_failures);
	}
}

/* ---------- arena ---------- */

typedef struct Block
{
	struct Block *prev,
			   *next;
	size_t		size;
	max_align_t pad[];			/* keeps the payload maximally aligned */
} Block;

static Block arena_head = {&arena_head, &arena_head, 0};
static size_t arena_bytes;
static size_t arena_budget;

static void *
ArenaAlloc(void *ctx, size_t size)
{
	Block	   *b;

	(void) ctx;
	if (arena_budget > 0 && arena_bytes + size > arena_budget)
		return NULL;
	b = malloc(sizeof(Block) + size);
	if (b == NULL)
		return NULL;
	b->size = size;
	b->next = arena_head.next;
	b->prev = &arena_head;
	arena_head.next->prev = b;
	arena_head.next = b;
	arena_bytes += size;
	return b->pad;
}

static void
ArenaFree(void *ctx, void *p)
{
	Block	   *b = (Block *) ((char *) p - offsetof(Block, pad));

	(void) ctx;
	b->prev->next = b->next;
	b->next->prev = b->prev;
	arena_bytes -= b->size;
	free(b);
}

CoreAlloc	unit_arena = {ArenaAlloc, ArenaFree, NULL};

void
unit_arena_reset(void)
{
	while (arena_head.next != &arena_head)
		ArenaFree(NULL, arena_head.next->pad);
}

void
unit_arena_fail_after(size_t bytes)
{
	arena_budget = bytes == 0 ? 0 : arena_bytes + bytes;
}

size_t
unit_arena_live(void)
{
	return arena_bytes;
}

uint64
unit_rand(uint64 *state)
{
	uint64		z = (*state += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

double
unit_uniform(uint64 *state)
{
	return (double) (unit_rand(state) >> 11) * (1.0 / 9007199254740992.0);
}

int
main(void)
{
	core_suite();
	simcore_suite();
	mlp_suite();
	forest_suite();
	treeshap_suite();
	ease_suite();
	als_suite();
	pairsums_suite();
	printf("unit: %d passed, %d failed\n", n_passed, n_failed);
	return n_failed == 0 ? 0 : 1;
}
