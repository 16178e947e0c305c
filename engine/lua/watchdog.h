/* watchdog.h — arms the deadline hook on a thread running plugin code once
 * its deadline passes, so Lua runs hook-free (full speed) until then.
 *
 * One process-wide watchdog thread keeps the calls in flight; at a call's
 * deadline it signals the call's thread (SIGURG), and the signal handler
 * sets a count hook on the lua_State that thread is running, exactly as
 * lua.c stops a script on Ctrl-C. It keeps re-signalling every
 * AC_WATCHDOG_RESIGNAL_MS until the call ends, so an arming lost in a
 * coroutine switch is repaired. This is the engine's one deliberate global:
 * signal dispositions are process-wide. */
#ifndef AC_LUA_WATCHDOG_H
#define AC_LUA_WATCHDOG_H

#include <lua.h>
#include <pthread.h>
#include <stdint.h>

#define AC_WATCHDOG_RESIGNAL_MS 50

/* One registered call. Lives on the caller's stack between begin and end. */
typedef struct ac_watch {
  pthread_t thread;
  int64_t deadline_ms;    /* monotonic */
  int64_t next_signal_ms; /* when the watchdog signals next */
  struct ac_watch *prev, *next;
} ac_watch;

/* Starts the watchdog (once per process) with the hook to arm. Safe to
 * call repeatedly; later calls must pass the same hook. */
void ac_watchdog_init(lua_Hook hook);

/* Registers the calling thread as running L until deadline_ms. */
void ac_watchdog_begin(ac_watch *w, lua_State *L, int64_t deadline_ms);

/* Unregisters; after it returns no signal for w reaches the thread and the
 * running state is cleared. The caller then clears any armed hook. */
void ac_watchdog_end(ac_watch *w);

/* The lua_State this thread runs now (NULL outside calls). Coroutine
 * switches update it through ac_watchdog_set_running so the signal arms
 * the coroutine that is actually executing. */
lua_State *ac_watchdog_running(void);
void ac_watchdog_set_running(lua_State *L);

/* 1 once the watchdog has signalled this thread's call for its deadline,
 * between ac_watchdog_begin and ac_watchdog_end (where plugin code runs,
 * protected): the allocator then refuses growth, which ends
 * C loops that only ever allocate, such as a __call chain growing the
 * stack, where no hook fires. */
int ac_watchdog_deadline_signalled(void);

/* A per-thread timer on the thread's CPU time that raises the same signal
 * once the thread has run at least us (at most 1.5 us) microseconds since
 * the arm, so the hook can end a time slice; fired tells whether it has.
 * The timer ticks all along, and arming counts from the current tick: no
 * system call per slice (only when the length changes). Made on a
 * thread's first use. */
#define AC_SLICE_OVERRUN_MS 20
void ac_watchdog_slice_arm(int64_t us);
int ac_watchdog_slice_fired(void);
/* 1 once the thread ran AC_SLICE_OVERRUN_MS of CPU past the slice. */
int ac_watchdog_slice_overran(void);

/* One slice for several calls in a row (a request's): armed once by
 * begin; while shared, the calls' own slices do not re-arm the timer, and
 * once it fires every call still to run yields at once. */
void ac_watchdog_slice_share_begin(int64_t us);
void ac_watchdog_slice_share_end(void);
int ac_watchdog_slice_shared(void);

/* Arms the hook on L now (used after a deadline or memory failure is seen
 * synchronously). */
void ac_watchdog_arm(lua_State *L);

#endif
