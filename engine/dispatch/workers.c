/* workers.c — worker threads, shares, expiry and the stuck-task supervisor. */
#include "dispatch/workers.h"
#include "core/clock.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SUPERVISE_MS 10
/* Workers run at a lower priority than request threads, so plugin code
 * that burns CPU slows other plugin calls before it slows the API. */
#define WORKER_NICE 10

typedef struct worker {
  ac_workers *pool;
  pthread_t thread;
  ac_task *current;
  int64_t deadline_ms; /* current's, copied: current may be freed by run */
  int abandoned;
  struct worker *next;
} worker;

struct ac_workers {
  ac_workers_config cfg;
  pthread_mutex_t lock;
  pthread_cond_t work;   /* a task was queued or a share freed */
  pthread_cond_t idle;   /* a worker finished (stop waits on it) */
  ac_task *head, *tail;  /* FIFO */
  int queued;
  worker *workers;       /* live and abandoned */
  int live, busy, abandoned;
  uint64_t abandoned_total, expired_total;
  int stopping;
  pthread_t supervisor;
  pthread_cond_t tick;
};

static int share_free(const ac_task *t) {
  for (int i = 0; i < 2; i++)
    if (t->shares[i] && t->shares[i]->limit > 0 && t->shares[i]->running >= t->shares[i]->limit)
      return 0;
  return 1;
}

static void share_add(ac_task *t, int d) {
  for (int i = 0; i < 2; i++)
    if (t->shares[i])
      t->shares[i]->running += d;
}

/* Unlinks t, found after prev (NULL: the head). */
static void unlink_task(ac_workers *w, ac_task *prev, ac_task *t) {
  if (prev)
    prev->next = t->next;
  else
    w->head = t->next;
  if (w->tail == t)
    w->tail = prev;
  t->next = NULL;
  w->queued--;
}

/* Takes the oldest task whose shares have room; moves tasks past their
 * deadline to *expired. Lock held. */
static ac_task *take(ac_workers *w, int64_t now, ac_task **expired) {
  ac_task *prev = NULL;
  for (ac_task *t = w->head, *next; t; t = next) {
    next = t->next;
    if (t->deadline_ms <= now) {
      unlink_task(w, prev, t);
      t->next = *expired;
      *expired = t;
      w->expired_total++;
      continue;
    }
    if (share_free(t)) {
      unlink_task(w, prev, t);
      return t;
    }
    prev = t;
  }
  return NULL;
}

static void run_expired(ac_task *list, int stopping) {
  while (list) {
    ac_task *next = list->next;
    list->next = NULL;
    list->expired(list, stopping);
    list = next;
  }
}

static int spawn(ac_workers *w);

static void *worker_main(void *arg) {
  worker *me = arg;
  ac_workers *w = me->pool;
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);
  pthread_mutex_lock(&w->lock);
  while (!w->stopping) {
    ac_task *expired = NULL;
    ac_task *t = take(w, ac_clock_mono_ms(), &expired);
    if (expired) {
      pthread_mutex_unlock(&w->lock);
      run_expired(expired, 0);
      pthread_mutex_lock(&w->lock);
    }
    if (!t) {
      if (!expired)
        pthread_cond_wait(&w->work, &w->lock);
      continue;
    }
    if (w->stopping) { /* stop began while the lock was free: hand it back */
      pthread_mutex_unlock(&w->lock);
      t->expired(t, 1);
      pthread_mutex_lock(&w->lock);
      continue;
    }
    share_add(t, 1);
    if (t->run_for_ms > 0) {
      t->deadline_ms = ac_clock_mono_ms() + t->run_for_ms;
      t->run_for_ms = 0;
    }
    me->current = t;
    me->deadline_ms = t->deadline_ms;
    w->busy++;
    pthread_mutex_unlock(&w->lock);
    t->run(t);
    pthread_mutex_lock(&w->lock);
    share_add(t, -1);
    me->current = NULL;
    w->busy--;
    pthread_cond_broadcast(&w->work); /* a share may have room now */
    pthread_cond_broadcast(&w->idle); /* stop may be waiting */
    pthread_mutex_unlock(&w->lock);
    t->release(t);
    pthread_mutex_lock(&w->lock);
    if (me->abandoned)
      break;
  }
  if (me->abandoned) {
    /* replaced long ago: unlink and go */
    for (worker **pp = &w->workers; *pp; pp = &(*pp)->next)
      if (*pp == me) {
        *pp = me->next;
        break;
      }
    w->abandoned--;
    pthread_cond_broadcast(&w->idle);
    pthread_mutex_unlock(&w->lock);
    free(me);
    return NULL;
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* Starts one more worker. Lock held (or before any thread runs). */
static int spawn(ac_workers *w) {
  worker *me = calloc(1, sizeof *me);
  if (!me)
    return AC_ERR_NOMEM;
  me->pool = w;
  /* plugin code never takes the process's signals; SIGURG (the deadline
   * watchdog's) stays open */
  sigset_t block, old;
  sigfillset(&block);
  sigdelset(&block, SIGURG);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int rc = pthread_create(&me->thread, NULL, worker_main, me);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    free(me);
    return AC_ERR_NOMEM;
  }
  me->next = w->workers;
  w->workers = me;
  w->live++;
  return AC_OK;
}

/* Gives up on k, stuck in C: tells the task (under the lock, so run cannot
 * finish and free it meanwhile); the thread exits when run returns. */
static void abandon(ac_workers *w, worker *k) {
  k->abandoned = 1;
  w->abandoned++;
  w->abandoned_total++;
  w->live--;
  pthread_detach(k->thread);
  k->current->abandoned(k->current);
}

static void *supervise(void *arg) {
  ac_workers *w = arg;
  pthread_mutex_lock(&w->lock);
  while (!w->stopping) {
    int64_t now = ac_clock_mono_ms();
    for (worker *k = w->workers; k; k = k->next) {
      if (!k->current || k->abandoned || now < k->deadline_ms + w->cfg.grace_ms)
        continue;
      abandon(w, k);
      if (w->abandoned <= w->cfg.max_stuck)
        spawn(w);
    }
    ac_task *expired = NULL;
    ac_task *prev = NULL;
    for (ac_task *t = w->head, *next; t; t = next) {
      next = t->next;
      if (t->deadline_ms <= now) {
        unlink_task(w, prev, t);
        t->next = expired;
        expired = t;
        w->expired_total++;
      } else {
        prev = t;
      }
    }
    if (expired) {
      pthread_mutex_unlock(&w->lock);
      run_expired(expired, 0);
      pthread_mutex_lock(&w->lock);
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += SUPERVISE_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->tick, &w->lock, &ts);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

int ac_workers_start(const ac_workers_config *cfg, ac_workers **out, ac_err *err) {
  *out = NULL;
  ac_workers *w = calloc(1, sizeof *w);
  if (!w)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  w->cfg = *cfg;
  if (w->cfg.threads < 1)
    w->cfg.threads = 1;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->work, NULL);
  pthread_cond_init(&w->idle, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->tick, &attr);
  pthread_condattr_destroy(&attr);
  pthread_mutex_lock(&w->lock);
  int rc = AC_OK;
  for (int i = 0; i < w->cfg.threads && rc == AC_OK; i++)
    rc = spawn(w);
  pthread_mutex_unlock(&w->lock);
  if (rc == AC_OK && pthread_create(&w->supervisor, NULL, supervise, w) != 0)
    rc = AC_ERR_NOMEM;
  if (rc != AC_OK) {
    ac_workers_stop(w);
    return ac_err_set(err, AC_ERR_NOMEM, "cannot start the plugin workers");
  }
  *out = w;
  return AC_OK;
}

void ac_workers_stop(ac_workers *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->lock);
  int had_supervisor = !w->stopping && w->supervisor;
  w->stopping = 1;
  ac_task *queued = w->head;
  w->head = w->tail = NULL;
  w->queued = 0;
  pthread_cond_broadcast(&w->work);
  pthread_cond_broadcast(&w->tick);
  pthread_mutex_unlock(&w->lock);
  run_expired(queued, 1);
  if (had_supervisor)
    pthread_join(w->supervisor, NULL);
  /* running tasks get until their deadline plus the grace; one still
   * running then is stuck in C and its thread is abandoned, not joined */
  pthread_mutex_lock(&w->lock);
  for (;;) {
    int64_t now = ac_clock_mono_ms();
    int running = 0;
    for (worker *k = w->workers; k; k = k->next) {
      if (k->abandoned || !k->current)
        continue;
      if (now < k->deadline_ms + w->cfg.grace_ms) {
        running++;
        continue;
      }
      abandon(w, k);
    }
    if (!running)
      break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += SUPERVISE_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->idle, &w->lock, &ts);
  }
  pthread_mutex_unlock(&w->lock);
  /* join the others; abandoned ones unlink themselves when they return */
  for (;;) {
    pthread_mutex_lock(&w->lock);
    worker *k = w->workers;
    while (k && k->abandoned)
      k = k->next;
    if (k) {
      for (worker **pp = &w->workers; *pp; pp = &(*pp)->next)
        if (*pp == k) {
          *pp = k->next;
          break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    if (!k)
      break;
    pthread_join(k->thread, NULL);
    free(k);
  }
  pthread_mutex_lock(&w->lock);
  int stuck = w->abandoned;
  pthread_mutex_unlock(&w->lock);
  if (stuck)
    return; /* stuck threads still hold the pool: leave it to them */
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->work);
  pthread_cond_destroy(&w->idle);
  pthread_cond_destroy(&w->tick);
  free(w);
}

int ac_workers_submit(ac_workers *w, ac_task *t) {
  t->next = NULL;
  pthread_mutex_lock(&w->lock);
  if (w->stopping) {
    pthread_mutex_unlock(&w->lock);
    return AC_ERR_BUSY;
  }
  if (w->tail)
    w->tail->next = t;
  else
    w->head = t;
  w->tail = t;
  w->queued++;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
  return AC_OK;
}

void ac_workers_get_stats(ac_workers *w, ac_workers_stats *st) {
  pthread_mutex_lock(&w->lock);
  st->threads = w->live;
  st->busy = w->busy;
  st->queued = w->queued;
  st->abandoned = w->abandoned;
  st->abandoned_total = w->abandoned_total;
  st->expired_total = w->expired_total;
  pthread_mutex_unlock(&w->lock);
}

int ac_workers_stuck_full(ac_workers *w) {
  pthread_mutex_lock(&w->lock);
  int full = w->abandoned >= w->cfg.max_stuck;
  pthread_mutex_unlock(&w->lock);
  return full;
}
