/* watchdog.c — deadline watchdog thread and the signal that arms hooks. */
#include "lua/watchdog.h"
#include "core/clock.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Read by the signal handler, so they are plain process/thread state. */
/* set once, before the signal handler is installed, read by it after */
static lua_Hook armed_hook;
static lua_Hook pending_hook;
static _Thread_local lua_State *volatile running_state;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static ac_watch *calls; /* doubly linked list of calls in flight */
static int64_t planned_wake; /* when the watchdog wakes next; begin() only
                               wakes it earlier when needed */

/* this thread's slice timer: ticks counted, where the slice began and how
 * many ticks end it (see ac_watchdog_slice_arm) */
static _Thread_local volatile sig_atomic_t slice_ticks;
static _Thread_local volatile sig_atomic_t slice_start, slice_need, slice_overrun_need;

static unsigned slice_ticks_since_start(void) {
  return (unsigned)slice_ticks - (unsigned)slice_start;
}
static _Thread_local volatile sig_atomic_t deadline_fires; /* since this thread's call began */
static _Thread_local int watching; /* between ac_watchdog_begin and _end: plugin code runs */

static void on_signal(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  int saved = errno;
  if (si && si->si_code == SI_TIMER) { /* this thread's slice timer, not the watchdog */
    slice_ticks++;
    if (slice_ticks_since_start() < (unsigned)slice_need) {
      errno = saved;
      return; /* the slice goes on: no hook */
    }
  } else {
    deadline_fires = 1;
  }
  lua_State *L = running_state;
  if (L)
    lua_sethook(L, armed_hook, LUA_MASKCOUNT, 1);
  errno = saved;
}

static void to_timespec(int64_t mono_ms, struct timespec *ts) {
  ts->tv_sec = (time_t)(mono_ms / 1000);
  ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static void *watchdog_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    int64_t now = ac_clock_mono_ms();
    int64_t next = now + 60000;
    for (ac_watch *w = calls; w; w = w->next) {
      if (w->next_signal_ms <= now) {
        pthread_kill(w->thread, SIGURG);
        w->next_signal_ms = now + AC_WATCHDOG_RESIGNAL_MS;
      }
      if (w->next_signal_ms < next)
        next = w->next_signal_ms;
    }
    planned_wake = next;
    struct timespec ts;
    to_timespec(next, &ts);
    pthread_cond_timedwait(&wake, &lock, &ts);
  }
  return NULL;
}

static void start(void) {
  armed_hook = pending_hook;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&wake, &attr);
  pthread_condattr_destroy(&attr);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_RESTART | SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, NULL);

  /* The watchdog itself never runs Lua: keep SIGURG off it. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGURG);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  pthread_t t;
  if (pthread_create(&t, NULL, watchdog_main, NULL) != 0) {
    /* without it no deadline would ever fire: plugin code must not run */
    fputs("{\"level\":\"error\",\"msg\":\"cannot start the deadline watchdog thread\"}\n", stderr);
    abort();
  }
  pthread_detach(t);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void ac_watchdog_init(lua_Hook hook) {
  static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&init_lock); /* callers pass the same hook; start takes the first */
  if (!pending_hook)
    pending_hook = hook;
  pthread_mutex_unlock(&init_lock);
  pthread_once(&once, start);
}

int ac_watchdog_deadline_signalled(void) { return watching && deadline_fires != 0; }

void ac_watchdog_begin(ac_watch *w, lua_State *L, int64_t deadline_ms) {
  deadline_fires = 0;
  watching = 1;
  w->thread = pthread_self();
  w->deadline_ms = deadline_ms;
  w->next_signal_ms = deadline_ms;
  running_state = L;
  pthread_mutex_lock(&lock);
  w->prev = NULL;
  w->next = calls;
  if (calls)
    calls->prev = w;
  calls = w;
  if (deadline_ms < planned_wake)
    pthread_cond_signal(&wake);
  pthread_mutex_unlock(&lock);
}

void ac_watchdog_end(ac_watch *w) {
  watching = 0;
  pthread_mutex_lock(&lock);
  if (w->prev)
    w->prev->next = w->next;
  else
    calls = w->next;
  if (w->next)
    w->next->prev = w->prev;
  pthread_mutex_unlock(&lock);
  running_state = NULL;
}

lua_State *ac_watchdog_running(void) { return running_state; }

void ac_watchdog_set_running(lua_State *L) { running_state = L; }

/* ---- slice timers ---- */

static pthread_key_t slice_key;
static pthread_once_t slice_once = PTHREAD_ONCE_INIT;
static _Thread_local int slice_state; /* 0 none yet, 1 made, -1 failed */
static _Thread_local timer_t slice_timer;

static void slice_free(void *p) {
  timer_delete(*(timer_t *)p);
  free(p);
}

static void slice_key_make(void) { pthread_key_create(&slice_key, slice_free); }

static int slice_make(void) {
  pthread_once(&slice_once, slice_key_make);
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGURG;
  sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  timer_t *keep = malloc(sizeof *keep);
  /* the thread's CPU time: a request thread the system preempts does not
   * see its slice run out while it is not running */
  if (!keep || timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &slice_timer) != 0) {
    free(keep);
    return -1;
  }
  *keep = slice_timer;
  pthread_setspecific(slice_key, keep); /* deleted when the thread exits */
  return 1;
}

void ac_watchdog_slice_arm(int64_t us) {
  if (slice_state == 0)
    slice_state = slice_make();
  if (slice_state < 0)
    return; /* no timer: the slice simply is not cut */
  /* the timer ticks every half slice (at least every 100 us) and is set
   * again only when the slice length changes: beginning a slice is
   * counting from the current tick, with no system call */
  static _Thread_local int64_t period_us;
  int64_t period = us / 2 > 100 ? us / 2 : 100;
  if (period != period_us) {
    struct itimerspec its;
    its.it_value.tv_sec = its.it_interval.tv_sec = (time_t)(period / 1000000);
    its.it_value.tv_nsec = its.it_interval.tv_nsec = (long)(period % 1000000) * 1000L;
    if (timer_settime(slice_timer, 0, &its, NULL) != 0)
      return;
    period_us = period;
  }
  /* the first tick comes within a period: one more than the slice's
   * periods makes the slice last at least us, at most half as long again */
  slice_start = slice_ticks; /* first: a tick meanwhile counts from here */
  slice_need = (sig_atomic_t)((us + period - 1) / period + 1);
  slice_overrun_need =
      slice_need + (sig_atomic_t)((AC_SLICE_OVERRUN_MS * 1000 + period - 1) / period);
}

static _Thread_local int slice_shared; /* a request's slice is armed */

void ac_watchdog_slice_share_begin(int64_t us) {
  ac_watchdog_slice_arm(us);
  slice_shared = 1;
}

void ac_watchdog_slice_share_end(void) { slice_shared = 0; }

int ac_watchdog_slice_shared(void) { return slice_shared; }

int ac_watchdog_slice_fired(void) {
  return slice_state > 0 && slice_ticks_since_start() >= (unsigned)slice_need;
}
int ac_watchdog_slice_overran(void) {
  return slice_state > 0 && slice_ticks_since_start() >= (unsigned)slice_overrun_need;
}


void ac_watchdog_arm(lua_State *L) {
  if (L)
    lua_sethook(L, armed_hook, LUA_MASKCOUNT, 1);
}
