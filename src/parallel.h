/*
 * parallel.h
 *	  Run independent pure-C tasks on helper threads, pausing for interrupts.
 *
 * The helpers never call PostgreSQL: no palloc, no ereport, no locks.  The
 * main thread takes a share of the tasks and polls for interrupts between
 * them; when one is pending it stops handing out tasks, joins the helpers,
 * lets PostgreSQL process the interrupt (which may raise an error and not
 * return) and then resumes with the tasks left.
 */
#ifndef MEDIA_RECO_PARALLEL_H
#define MEDIA_RECO_PARALLEL_H

#include "core.h"

/* the interrupt hooks of core.h, under the name the cores have used */
typedef CoreInterrupts SimInterruptHooks;

/*
 * A task function: runs task `task` (0 .. n_tasks-1) on worker `worker`
 * (0 is the main thread).  It must be pure C.  It may set *stop (through
 * parallel_stop) to make the run end early, e.g. on a memory failure.
 */
typedef void (*ParallelTaskFn) (void *arg, int worker, int64 task);

typedef struct ParallelRun
{
	int64		n_tasks;
	int			n_workers;		/* including the main thread, >= 1 */
	ParallelTaskFn fn;
	void	   *arg;
	int64		next;			/* atomic: next task to claim */
	int			pause;			/* atomic: main thread asks helpers to stop */
	int			stop;			/* atomic: a task asked the run to end */
} ParallelRun;

/*
 * Run tasks 0 .. n_tasks-1 of `run` on up to n_workers threads (the caller's
 * thread is worker 0 and polls hooks, which may be NULL or core_no_interrupts,
 * between its tasks).  Returns when every task ran or a task stopped the run.
 * Call from the main thread only; allocates nothing; fn runs on helper threads.
 */
extern void parallel_run(ParallelRun *run, const SimInterruptHooks *hooks);
/* From a task (any thread): ask the run to end after the tasks under way. */
extern void parallel_stop(ParallelRun *run);
/* Whether a task stopped the run (any thread). */
extern bool parallel_stopped(ParallelRun *run);

/*
 * For tasks that are long themselves (a whole tree): worker 0 calls
 * parallel_request_pause when its own poll finds an interrupt pending, and
 * every worker abandons its task once parallel_pause_requested is true; the
 * run then pauses as it does between tasks (the abandoned tasks are the
 * caller's to redo).  Any thread; parallel_run clears the flag on resuming.
 */
static inline void
parallel_request_pause(ParallelRun *run)
{
	__atomic_store_n(&run->pause, 1, __ATOMIC_RELAXED);
}

static inline bool
parallel_pause_requested(ParallelRun *run)
{
	return __atomic_load_n(&run->pause, __ATOMIC_RELAXED) != 0;
}

#endif
