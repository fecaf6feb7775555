/*
 * parallel.c
 *	  A small task runner for pure-C work on helper threads.
 *
 * Tasks are claimed one at a time from an atomic counter, so the split of
 * tasks between threads varies from run to run: callers make each task's
 * result independent of which thread ran it (own output slot per task,
 * per-task random seeds), which keeps results independent of the thread
 * count.  Signals are blocked in the helpers, so PostgreSQL's handlers only
 * ever run on the main thread.
 */
#include "core.h"

#include <pthread.h>
#include <signal.h>

#include "parallel.h"

typedef struct WorkerArg
{
	ParallelRun *run;
	int			worker;
} WorkerArg;

/*
 * claim and run tasks until none are left or the run is paused/stopped;
 * on helper threads (poll_main false) as well as on the main thread
 */
static void
RunTasks(ParallelRun *run, int worker, bool poll_main, const SimInterruptHooks *hooks,
		 bool must_progress, bool *paused)
{
	for (;;)
	{
		int64		task;

		if (__atomic_load_n(&run->stop, __ATOMIC_RELAXED))
			return;
		if (poll_main)
		{
			if (!must_progress && hooks && hooks->pending && hooks->pending())
			{
				__atomic_store_n(&run->pause, 1, __ATOMIC_RELAXED);
				*paused = true;
				return;
			}
		}
		else if (__atomic_load_n(&run->pause, __ATOMIC_RELAXED))
			return;
		task = __atomic_fetch_add(&run->next, 1, __ATOMIC_RELAXED);
		if (task >= run->n_tasks)
			return;
		run->fn(run->arg, worker, task);
		must_progress = false;
	}
}

/* a helper thread's body: signals blocked, no PostgreSQL calls */
static void *
WorkerMain(void *p)
{
	WorkerArg  *wa = (WorkerArg *) p;

	RunTasks(wa->run, wa->worker, false, NULL, false, NULL);
	return NULL;
}

void
parallel_run(ParallelRun *run, const SimInterruptHooks *hooks)
{
	int			nw = Max(1, Min(run->n_workers, 64));
	pthread_t	tids[64];
	WorkerArg	args[64];
	bool		resumed = false;

	run->next = 0;
	run->stop = 0;
	for (;;)
	{
		int			started = 0;
		bool		paused = false;

		__atomic_store_n(&run->pause, 0, __ATOMIC_RELAXED);
		if (nw > 1 && __atomic_load_n(&run->next, __ATOMIC_RELAXED) < run->n_tasks)
		{
			sigset_t	all,
						old;

			sigfillset(&all);
			pthread_sigmask(SIG_SETMASK, &all, &old);
			for (int t = 1; t < nw; t++)
			{
				args[t].run = run;
				args[t].worker = t;
				if (pthread_create(&tids[t], NULL, WorkerMain, &args[t]) != 0)
					break;		/* fewer helpers; the main thread covers the rest */
				started++;
			}
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		}

		/*
		 * After an interrupt was processed, the main thread runs one task
		 * before polling again, so a condition that stays pending cannot stall
		 * the run.
		 */
		RunTasks(run, 0, true, hooks, resumed, &paused);
		for (int t = 1; t <= started; t++)
			pthread_join(tids[t], NULL);
		if (!paused || __atomic_load_n(&run->stop, __ATOMIC_RELAXED))
			break;
		hooks->process();		/* may not return */
		resumed = true;
	}
}

void
parallel_stop(ParallelRun *run)
{
	__atomic_store_n(&run->stop, 1, __ATOMIC_RELAXED);
}

bool
parallel_stopped(ParallelRun *run)
{
	return __atomic_load_n(&run->stop, __ATOMIC_RELAXED) != 0;
}
