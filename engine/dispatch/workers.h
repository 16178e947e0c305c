/* workers.h — the fixed pool of threads that run plugin calls.
 *
 * Request threads never wait for plugin code: a call that needs more than
 * a short slice, or must wait, is queued here as a task. A task counts
 * against up to two shares (its plugin's and its namespace's), each
 * allowing only so many of its tasks to run at once, so one plugin or
 * tenant cannot hold every worker; a queued task whose deadline passes
 * before a worker takes it ends without running. A supervisor thread gives
 * up on a worker whose task is stuck (inside a C function) past its
 * deadline plus a grace: the task is told, a new worker takes the stuck
 * one's place (up to a cap), and the stuck thread exits once its task
 * returns. */
#ifndef AC_DISPATCH_WORKERS_H
#define AC_DISPATCH_WORKERS_H

#include "core/err.h"

#include <stdint.h>

typedef struct ac_workers ac_workers;

/* How many of a share's tasks run now, and how many may. The pool changes
 * running under its lock; the owner sets limit before first use. */
typedef struct ac_share {
  int running;
  int limit;
} ac_share;

typedef struct ac_task ac_task;
struct ac_task {
  /* On a worker thread. */
  void (*run)(ac_task *t);
  /* After run, once the pool no longer refers to t (the supervisor cannot
   * abandon it any more): t may be freed here. */
  void (*release)(ac_task *t);
  /* Instead of run, when the deadline passed while the task waited or the
   * pool is stopping; the task is the caller's again. */
  void (*expired)(ac_task *t, int stopping);
  /* Once, from the supervisor, while run is stuck past deadline + grace;
   * run still returns later on its own thread. Must not block. */
  void (*abandoned)(ac_task *t);
  int64_t deadline_ms; /* monotonic: while queued, and while running */
  int64_t run_for_ms;  /* > 0: when a worker first takes the task, its
                          deadline becomes now + run_for_ms (work that is
                          timed from its start, not from its queueing) */
  ac_share *shares[2]; /* may be NULL */
  ac_task *next;       /* the pool's */
};

typedef struct ac_workers_config {
  int threads;   /* workers (>= 1) */
  int max_stuck; /* abandoned threads allowed at once */
  int grace_ms;  /* waited past a task's deadline before giving up on it */
} ac_workers_config;

/* Starts the workers and the supervisor. *out: caller stops it. */
int ac_workers_start(const ac_workers_config *cfg, ac_workers **out, ac_err *err);

/* Stops taking tasks, expires the queued ones (stopping = 1), waits for
 * the running ones and frees the pool. Abandoned threads still stuck keep
 * what they need: the pool is then left allocated for them. NULL: no-op. */
void ac_workers_stop(ac_workers *w);

/* Queues t. Never blocks; t must stay valid until release or expired. Returns AC_ERR_BUSY when stopping (t is not
 * queued). */
int ac_workers_submit(ac_workers *w, ac_task *t);

/* Figures for /metrics. */
typedef struct ac_workers_stats {
  int threads;   /* live workers (not abandoned) */
  int busy;      /* running a task */
  int queued;    /* waiting for a worker */
  int abandoned; /* stuck threads still running */
  uint64_t abandoned_total;
  uint64_t expired_total;
} ac_workers_stats;
void ac_workers_get_stats(ac_workers *w, ac_workers_stats *st);

/* 1 when abandoned threads have reached the cap. */
int ac_workers_stuck_full(ac_workers *w);

#endif
