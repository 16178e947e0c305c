/* guard.c — abandonable worker threads (see guard.h). */
#include "lua/guard.h"
#include "core/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* Process-wide like the watchdog: the stuck threads belong to no caller. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int max_stuck = 8;
static int stuck;

typedef struct slot {
  ac_guard_job job;
  pthread_t thread;
  pthread_cond_t done_cv;
  int done;
  int abandoned;
} slot;

void ac_guard_set_max_stuck(int max) {
  pthread_mutex_lock(&lock);
  max_stuck = max > 0 ? max : 1;
  pthread_mutex_unlock(&lock);
}

int ac_guard_stuck_count(void) {
  pthread_mutex_lock(&lock);
  int n = stuck;
  pthread_mutex_unlock(&lock);
  return n;
}

static void *thread_main(void *arg) {
  slot *s = arg;
  s->job.run(s->job.arg);
  pthread_mutex_lock(&lock);
  s->done = 1;
  int abandoned = s->abandoned;
  if (abandoned)
    stuck--;
  else
    pthread_cond_signal(&s->done_cv);
  pthread_mutex_unlock(&lock);
  if (abandoned) {
    if (s->job.cleanup)
      s->job.cleanup(s->job.arg);
    pthread_cond_destroy(&s->done_cv);
    free(s);
  }
  return NULL;
}

ac_guard_ticket *ac_guard_start(const ac_guard_job *job, int *rc) {
  pthread_mutex_lock(&lock);
  int full = stuck >= max_stuck;
  pthread_mutex_unlock(&lock);
  if (full) {
    *rc = AC_ERR_BUSY;
    return NULL;
  }
  slot *s = calloc(1, sizeof *s);
  if (!s) {
    *rc = AC_ERR_NOMEM;
    return NULL;
  }
  s->job = *job;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&s->done_cv, &attr);
  pthread_condattr_destroy(&attr);

  /* joinable: a job that ends in time is joined, so its thread has
   * finished (thread-local destructors, libraries' per-thread state
   * included) before the caller goes on; an abandoned one is detached */
  int err = pthread_create(&s->thread, NULL, thread_main, s);
  if (err != 0) {
    pthread_cond_destroy(&s->done_cv);
    free(s);
    *rc = AC_ERR_NOMEM;
    return NULL;
  }
  *rc = AC_OK;
  /* the slot itself serves as the ticket */
  return (ac_guard_ticket *)s;
}

int ac_guard_wait(ac_guard_ticket *t, int64_t wait_until_ms) {
  slot *s = (slot *)t;
  struct timespec ts = {(time_t)(wait_until_ms / 1000), (long)(wait_until_ms % 1000) * 1000000L};
  pthread_mutex_lock(&lock);
  while (!s->done) {
    if (pthread_cond_timedwait(&s->done_cv, &lock, &ts) != 0 && !s->done) {
      s->abandoned = 1;
      stuck++;
      pthread_detach(s->thread); /* it frees the slot when it ends */
      pthread_mutex_unlock(&lock);
      return AC_ERR_TIMEOUT;
    }
  }
  pthread_mutex_unlock(&lock);
  pthread_join(s->thread, NULL);
  pthread_cond_destroy(&s->done_cv);
  free(s);
  return AC_OK;
}

int ac_guard_run(const ac_guard_job *job, int64_t wait_until_ms) {
  int rc;
  ac_guard_ticket *t = ac_guard_start(job, &rc);
  return t ? ac_guard_wait(t, wait_until_ms) : rc;
}
