/* guard.h — running plugin work on a thread the caller can walk away from.
 *
 * Lua code is stopped at its deadline by the watchdog's hook, but a C
 * function (a library call that runs long without returning to the VM)
 * cannot be interrupted. So callers that must be released in time run the
 * work through ac_guard_run: it executes on a fresh thread while the caller
 * waits at most until its own limit. If the work is still running then, the
 * caller gets AC_ERR_TIMEOUT and the thread is abandoned: it finishes on
 * its own and runs the job's cleanup (freeing the state it used). At most
 * a fixed number of abandoned threads may exist at once; past that
 * ac_guard_run refuses new work (AC_ERR_BUSY) so stuck work cannot pile up. */
#ifndef AC_LUA_GUARD_H
#define AC_LUA_GUARD_H

#include <stdint.h>

typedef struct ac_guard_job {
  void (*run)(void *arg);     /* the work */
  void (*cleanup)(void *arg); /* called by the thread after run if the
                                 caller gave up on it; frees what run used */
  void *arg;
} ac_guard_job;

/* Sets how many abandoned threads may exist at once (default 8). */
void ac_guard_set_max_stuck(int max);

/* Number of abandoned threads still running. */
int ac_guard_stuck_count(void);

/* Runs job on a new thread and waits until it finishes or until the
 * monotonic time wait_until_ms. Returns AC_OK when it finished (cleanup is
 * not called: the caller owns arg again), AC_ERR_TIMEOUT when abandoned
 * (cleanup will run later on that thread; the caller must not touch arg),
 * AC_ERR_BUSY when too many threads are already stuck, or AC_ERR_NOMEM. */
int ac_guard_run(const ac_guard_job *job, int64_t wait_until_ms);

/* The same in two steps, so a caller can start several jobs and wait for
 * them together: ac_guard_start returns a ticket (NULL with *rc set on
 * failure: AC_ERR_BUSY or AC_ERR_NOMEM), ac_guard_wait waits for it until
 * wait_until_ms and returns as ac_guard_run does. Every ticket must be
 * waited for exactly once. */
typedef struct ac_guard_ticket ac_guard_ticket;
ac_guard_ticket *ac_guard_start(const ac_guard_job *job, int *rc);
int ac_guard_wait(ac_guard_ticket *t, int64_t wait_until_ms);

#endif
