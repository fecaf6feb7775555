/*
 * core.h
 *	  What a plain-C core (simcore, forest_core, mlp_core, model_blob, the
 *	  state decoders) needs from its caller: memory, errors, interrupts, and
 *	  bounded byte readers and growable byte buffers.
 *
 * A core includes this header (and c.h through it), never postgres.h: it
 * makes no PostgreSQL call, so it builds and runs without a server in the
 * unit tests (test/unit) and under libFuzzer (test/fuzz).  The SQL glue
 * passes an allocator over a memory context and turns a returned CoreError
 * into an ereport (core_pg.h); a unit test or fuzz target passes malloc.
 *
 * Errors are returned, not raised: a core function that can fail returns a
 * CoreStatus and fills a CoreError whose message and detail are the ones the
 * user sees (lowercase message, full-sentence detail and hint).  Memory
 * handed out by a CoreAlloc before a failure belongs to the allocator's
 * context: the glue frees it with the memory context, a harness with its own
 * arena or by exiting, so a failing core need not unwind its allocations
 * (cores still release large scratch arrays they are done with).
 */
#ifndef MEDIA_RECO_CORE_H
#define MEDIA_RECO_CORE_H

#include "c.h"

#include <stdarg.h>

/* what went wrong, mapped to one SQLSTATE each by core_pg.c */
typedef enum CoreStatus
{
	CORE_OK = 0,
	CORE_CORRUPT,				/* bad bytes: 22P03 invalid_binary_representation */
	CORE_NOMEM,					/* an allocation failed: 53200 out_of_memory */
	CORE_LIMIT,					/* a size or budget limit: 54000 program_limit_exceeded */
	CORE_DATA,					/* the data cannot be used: 22000 data_exception */
	CORE_RANGE,					/* a value out of range: 22003 numeric_value_out_of_range */
	CORE_INVALID				/* a bad parameter: 22023 invalid_parameter_value */
} CoreStatus;

#define CORE_MSG_LEN 256

typedef struct CoreError
{
	CoreStatus	status;
	char		message[CORE_MSG_LEN];
	char		detail[CORE_MSG_LEN];	/* "" when none */
	char		hint[CORE_MSG_LEN];		/* "" when none */
} CoreError;

/* Fill err (status, message) and return status; detail and hint are cleared. */
extern CoreStatus core_error(CoreError *err, CoreStatus status, const char *fmt,...) pg_attribute_printf(3, 4);
/* Add a detail or a hint to an error already set; return its status. */
extern CoreStatus core_error_detail(CoreError *err, const char *fmt,...) pg_attribute_printf(2, 3);
extern CoreStatus core_error_hint(CoreError *err, const char *fmt,...) pg_attribute_printf(2, 3);

/*
 * An allocator.  alloc returns NULL on failure (the core then returns
 * CORE_NOMEM); it must accept sizes beyond 1 GB (huge allocations are on
 * purpose in the cores: matrices of training rows).  free may be NULL.
 * alloc is called from the main thread only unless the allocator documents
 * otherwise: cores allocate before starting helper threads.
 */
typedef struct CoreAlloc
{
	void	   *(*alloc) (void *ctx, size_t size);
	void		(*free) (void *ctx, void *p);
	void	   *ctx;
} CoreAlloc;

/*
 * count * elem bytes (at least 1), checked for overflow against
 * CORE_MAX_ALLOC; zeroed when `zero`.  NULL on overflow or failure, with
 * err set (CORE_LIMIT or CORE_NOMEM) when err is not NULL.
 */
#define CORE_MAX_ALLOC ((size_t) 1 << 40)
extern void *core_array(const CoreAlloc *a, size_t count, size_t elem, bool zero, CoreError *err);
extern void core_release(const CoreAlloc *a, void *p);

/* The allocator over malloc, for harnesses (ctx unused). */
extern const CoreAlloc core_malloc_alloc;

/* A bounded reader over untrusted bytes: every read is checked. */
typedef struct CoreReader
{
	const char *p;
	size_t		left;
} CoreReader;

/* Copy n bytes (false, nothing copied, when fewer are left). */
extern bool core_read(CoreReader *r, void *dst, size_t n);
/* Point at the next n bytes and skip them (NULL when fewer are left). */
extern const char *core_take(CoreReader *r, size_t n);

/* A growable byte buffer for serialising, memory from a CoreAlloc. */
typedef struct CoreBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	const CoreAlloc *alloc;
	bool		failed;			/* an append could not grow the buffer */
} CoreBuf;

extern void core_buf_init(CoreBuf *b, const CoreAlloc *a, size_t initial);
extern void core_buf_append(CoreBuf *b, const void *data, size_t n);
/* CORE_OK, or CORE_NOMEM / CORE_LIMIT with err set when an append failed */
extern CoreStatus core_buf_status(const CoreBuf *b, CoreError *err);

/*
 * Interrupts.  `pending` is polled by the main thread between units of work
 * (at least once a second of work); when it returns true the helper threads
 * are joined and `process` runs.  In the server `process` is the glue's
 * CHECK_FOR_INTERRUPTS and may not return (the error unwinds through the
 * core, whose memory lives in the caller's context); a harness passes
 * core_no_interrupts.
 */
typedef struct CoreInterrupts
{
	bool		(*pending) (void);
	void		(*process) (void);
} CoreInterrupts;

extern const CoreInterrupts core_no_interrupts;

/* Poll: process a pending interrupt.  Main thread only. */
static inline void
core_check_interrupts(const CoreInterrupts *hooks)
{
	if (hooks != NULL && hooks->pending != NULL && hooks->pending())
		hooks->process();
}

#endif							/* MEDIA_RECO_CORE_H */
