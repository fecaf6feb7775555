/*
 * fuzz_common.h
 *	  What every libFuzzer target in test/fuzz shares: a CoreAlloc over an
 *	  arena that is emptied after each input (so LeakSanitizer sees no leak
 *	  from a core that, by design, leaves a failed call's memory to the
 *	  allocator's owner) and that refuses to grow beyond a cap (so a hostile
 *	  size becomes CORE_NOMEM, not an out-of-memory kill).
 */
#ifndef MEDIA_RECO_FUZZ_COMMON_H
#define MEDIA_RECO_FUZZ_COMMON_H

#include "core.h"

#include <stdlib.h>

#define FUZZ_ARENA_CAP ((size_t) 512 << 20)

typedef struct FuzzBlock
{
	struct FuzzBlock *prev;
	struct FuzzBlock *next;
	size_t		size;
	size_t		pad;			/* keeps the payload 16-byte aligned */
} FuzzBlock;

typedef struct FuzzArena
{
	FuzzBlock	head;			/* circular list sentinel */
	size_t		bytes;
	CoreAlloc	alloc;
} FuzzArena;

static void *
FuzzArenaAlloc(void *ctx, size_t size)
{
	FuzzArena  *ar = (FuzzArena *) ctx;
	FuzzBlock  *b;

	if (size > FUZZ_ARENA_CAP - ar->bytes)
		return NULL;
	b = malloc(sizeof(FuzzBlock) + size);
	if (b == NULL)
		return NULL;
	b->size = size;
	b->next = ar->head.next;
	b->prev = &ar->head;
	ar->head.next->prev = b;
	ar->head.next = b;
	ar->bytes += size;
	return b + 1;
}

static void
FuzzArenaFree(void *ctx, void *p)
{
	FuzzArena  *ar = (FuzzArena *) ctx;
	FuzzBlock  *b = (FuzzBlock *) p - 1;

	b->prev->next = b->next;
	b->next->prev = b->prev;
	ar->bytes -= b->size;
	free(b);
}

static void
fuzz_arena_init(FuzzArena *ar)
{
	ar->head.next = ar->head.prev = &ar->head;
	ar->bytes = 0;
	ar->alloc.alloc = FuzzArenaAlloc;
	ar->alloc.free = FuzzArenaFree;
	ar->alloc.ctx = ar;
}

/* free everything still held (what a memory context reset does in the server) */
static void
fuzz_arena_reset(FuzzArena *ar)
{
	while (ar->head.next != &ar->head)
		FuzzArenaFree(ar, ar->head.next + 1);
}

/* a broken invariant is a finding: abort so libFuzzer saves the input */
#define FUZZ_CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

#endif
