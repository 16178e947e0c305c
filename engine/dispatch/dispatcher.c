/* dispatcher.c — the event workers. */
#include "dispatch/dispatcher.h"
#include "dispatch/call.h"
#include "core/clock.h"
#include "core/crypto.h"
#include "db/events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_POLL_MS 500 /* without a wake-up, workers look for due runs this often */

typedef struct worker_arg {
  struct ac_dispatcher *d;
  int index;
} worker_arg;

struct ac_dispatcher {
  ac_dispatcher_config cfg;
  char *url;
  char owner[96];
  int lease_s; /* never shorter than a call can hold its run */
  pthread_t *threads;
  worker_arg *args;
  int nthreads;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int stopping;
  unsigned wakeups;
  struct worker_state *states; /* one per thread */
};

static const long long schedule_s[] = {5, 30, 120, 600, 1800, 3600, 10800, 21600};
#define SCHEDULE_LEN (int)(sizeof schedule_s / sizeof schedule_s[0])
/* claims of one run, whatever happened to them: past the retry schedule's
 * attempts, with room for a few lost to instances that stopped */
#define AC_RUN_ATTEMPTS_MAX (SCHEDULE_LEN + 4)
/* a run whose plugin's init is still running elsewhere tries again after */
#define INIT_WAIT_RETRY_MS 1000
/* a run refused at admission comes back after 250 to 500 ms */
#define BUSY_RETRY_MS 250

long long ac_dispatcher_backoff_ms(int attempt, int plugin_delay_s, unsigned random) {
  if (attempt > SCHEDULE_LEN)
    return -1;
  if (plugin_delay_s >= 0)
    return (long long)plugin_delay_s * 1000;
  long long base = schedule_s[attempt < 1 ? 0 : attempt - 1] * 1000;
  return base + (long long)(random % (unsigned)(base / 10 + 1));
}

static const char *hook_for(const char *type, unsigned *cap) {
  if (strcmp(type, "approval.created") == 0) {
    *cap = AC_CAP_APPROVAL_HOOK;
    return AC_HOOK_APPROVAL;
  }
  *cap = AC_CAP_DOCUMENT_HOOK;
  return AC_HOOK_DOCUMENT;
}

/* The hook's event argument. */
static json_t *event_arg(const json_t *run) {
  const json_t *payload = json_object_get(run, "payload");
  const char *type = json_string_value(json_object_get(run, "type"));
  json_t *ev = json_pack("{s:O, s:s, s:O, s:O, s:O}", "id", json_object_get(run, "eventId"), "type",
                         type, "namespaceId", json_object_get(run, "namespaceId"), "occurredAt",
                         json_object_get(run, "createdAt"), "deliveryId",
                         json_object_get(run, "deliveryId"));
  const char *ref = strcmp(type, "approval.created") == 0 ? "approvalId" : "documentId";
  json_object_set(ev, ref, json_object_get(payload, ref));
  json_t *data = json_object_get(payload, "data");
  json_object_set_new(ev, "data", data ? json_incref(data) : json_object());
  return ev;
}

/* A claimed run whose hook call is in flight. The call runs on the worker
 * pool (and waits on the HTTP loop) without this thread, which keeps
 * claiming and recording runs meanwhile. */
typedef struct inflight {
  struct worker_state *ws;
  ac_hook_target target;
  char hook[32];
  char event_id[160], plugin[80];
  int attempt;
  ac_call *call;
  struct inflight *next; /* on the worker's done list */
} inflight;

/* One dispatcher thread's runs in flight and those done, to record. */
typedef struct worker_state {
  struct ac_dispatcher *d;
  pthread_mutex_t lock;
  inflight *done;
  int in_flight;
  json_t *outcomes; /* recorded together by the next flush (this thread's) */
} worker_state;

/* Runs a dispatcher thread keeps in flight at once. Parked runs cost a
 * socket and an idle state, not a thread; with the default four threads
 * this is four times what one namespace's bulkhead
 * (AGENTCORE_MAX_CALLS_PER_NAMESPACE, 512) admits, so a namespace whose
 * receiver hangs cannot fill the dispatcher and stall the others. */
#define INFLIGHT_MAX 512

/* Queues a run's outcome for the next flush. refund: the claim was no
 * attempt (the call was refused before it ran), so it does not count
 * towards giving up. */
static void record(worker_state *ws, const char *event_id, const char *plugin, const char *status,
                   long long duration, const char *message, long long retry_in, int refund) {
  json_array_append_new(ws->outcomes,
                        json_pack("{s:s, s:s, s:s, s:I, s:s?, s:I, s:b}", "eventId", event_id,
                                  "pluginId", plugin, "status", status, "durationMs",
                                  (json_int_t)duration, "error",
                                  message && message[0] ? message : NULL, "retryInMs",
                                  (json_int_t)retry_in, "refund", refund));
}

/* Records the queued outcomes in one statement. One that fails the batch
 * (it cannot be stored) is tried alone, so the others still go in; what
 * cannot be recorded comes back when its lease expires. */
static void flush(ac_dispatcher *d, PGconn *db, const char *owner, worker_state *ws) {
  size_t n = json_array_size(ws->outcomes);
  if (n == 0)
    return;
  ac_err err = {0};
  int rc = ac_events_finish_batch(db, owner, ws->outcomes, &err);
  for (size_t i = 0; rc != AC_OK && rc != AC_ERR_DB && n > 1 && i < n; i++) {
    json_t *one = json_pack("[O]", json_array_get(ws->outcomes, i));
    ac_err one_err = {0};
    if (ac_events_finish_batch(db, owner, one, &one_err) != AC_OK)
      ac_logf(d->cfg.env->log, AC_LOG_WARN, "recording a run's outcome failed: %s", one_err.msg);
    json_decref(one);
  }
  if (rc != AC_OK && (rc == AC_ERR_DB || n == 1))
    ac_logf(d->cfg.env->log, AC_LOG_WARN, "recording %zu run outcomes failed: %s", n, err.msg);
  json_array_clear(ws->outcomes);
}

static void call_done(ac_call *c, void *ud) {
  (void)c;
  inflight *f = ud;
  worker_state *ws = f->ws;
  pthread_mutex_lock(&ws->lock);
  f->next = ws->done;
  ws->done = f;
  pthread_mutex_unlock(&ws->lock);
  ac_dispatcher_wake(ws->d);
}

/* Records a finished call's outcome. */
static void finish_one(ac_dispatcher *d, inflight *f) {
  const ac_hook_env *env = d->cfg.env;
  const ac_outcome *o = ac_call_outcome(f->call);
  ac_outcome out = *o;
  int init_ran = ac_call_init_ran(f->call);
  ac_hook_record(env, &f->target, f->hook, init_ran ? ac_call_init_outcome(f->call) : NULL, &out);
  const char *status;
  char message[AC_OUTCOME_MSG_MAX];
  snprintf(message, sizeof message, "%s", out.message);
  long long retry_in = 0;
  int refund = 0;
  unsigned r;
  ac_crypto_random_bytes(&r, sizeof r);
  if (out.kind == AC_OUTCOME_BUSY) {
    /* refused before it ran (a bulkhead was full, a backlog of one
     * namespace say): no attempt and not the plugin's failure, so it comes
     * back soon, with jitter, and never runs out of attempts this way */
    retry_in = BUSY_RETRY_MS + r % BUSY_RETRY_MS;
    status = "retrying";
    refund = 1;
  } else if (out.kind == AC_OUTCOME_RETRY) {
    retry_in = ac_dispatcher_backoff_ms(f->attempt, out.retry_delay_s, r);
    status = retry_in < 0 ? "error" : "retrying";
    if (retry_in < 0)
      snprintf(message, sizeof message, "gave up after %d attempts: %s", f->attempt, out.message);
  } else {
    status = ac_outcome_kind_name(out.kind);
    if (out.kind == AC_OUTCOME_CONTRACT)
      status = "error";
  }
  record(f->ws, f->event_id, f->plugin, status, out.duration_ms, message, retry_in, refund);
  ac_call_release(f->call);
  ac_hook_target_clear(&f->target);
  free(f);
}

/* Starts one claimed run: its hook call goes to the worker pool, or, when
 * there is nothing to call, the run is recorded at once. Returns 1 when a
 * call was started. */
static int start_one(ac_dispatcher *d, PGconn *db, const char *owner, worker_state *ws,
                     const json_t *run) {
  const ac_hook_env *env = d->cfg.env;
  const char *ns = json_string_value(json_object_get(run, "namespaceId"));
  const char *plugin = json_string_value(json_object_get(run, "pluginId"));
  const char *event_id = json_string_value(json_object_get(run, "eventId"));
  unsigned cap;
  const char *hook = hook_for(json_string_value(json_object_get(run, "type")), &cap);
  ac_err err = {0};
  /* a run claimed this often never recorded an outcome (its instances
   * stopped mid-call, or the outcome could not be stored): it ends here
   * instead of coming back at every lease expiry */
  json_int_t attempts = json_integer_value(json_object_get(run, "attempts"));
  if (attempts > AC_RUN_ATTEMPTS_MAX) {
    char message[160];
    snprintf(message, sizeof message,
             "gave up after %lld attempts: no attempt recorded an outcome", (long long)attempts - 1);
    record(ws, event_id, plugin, "error", 0, message, 0, 0);
    return 0;
  }

  json_t *snapshot = NULL, *entry = NULL;
  if (ac_tenancy_namespace(d->cfg.tenancy, NULL, ns, &snapshot, &err) != AC_OK)
    return 0; /* unknown here and unreadable: the lease expires, it comes back */
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(snapshot, "plugins"), i, e) {
    if (strcmp(json_string_value(json_object_get(e, "pluginId")), plugin) == 0)
      entry = e;
  }
  if (!entry) {
    record(ws, event_id, plugin, "skipped", 0,
           "the plugin is no longer enabled in this namespace", 0, 0);
    json_decref(snapshot);
    return 0;
  }
  inflight *f = calloc(1, sizeof *f);
  if (!f) {
    json_decref(snapshot);
    return 0; /* the lease expires and the run comes back */
  }
  ac_outcome out;
  int ready = ac_hook_target_prepare(
      env, ns, json_string_value(json_object_get(snapshot, "departmentId")), entry, cap,
      &f->target, &out);
  if (ready <= 0) {
    char message[AC_OUTCOME_MSG_MAX];
    if (ready == 0)
      snprintf(message, sizeof message, "the plugin does not handle %s", hook);
    else
      snprintf(message, sizeof message, "%s", out.message);
    if (ready < 0 && out.kind == AC_OUTCOME_BUSY) /* init is running: soon again */
      record(ws, event_id, plugin, "retrying", 0, message, INIT_WAIT_RETRY_MS, 1);
    else
      record(ws, event_id, plugin, "skipped", 0, message, 0, 0);
    ac_hook_target_clear(&f->target);
    free(f);
    json_decref(snapshot);
    return 0;
  }
  f->ws = ws;
  snprintf(f->hook, sizeof f->hook, "%s", hook);
  snprintf(f->event_id, sizeof f->event_id, "%s", event_id);
  snprintf(f->plugin, sizeof f->plugin, "%s", plugin);
  f->attempt = (int)json_integer_value(json_object_get(run, "attempts"));
  f->target.ctx.allow_retry = 1;
  json_t *arg = event_arg(run);
  /* init, when it runs first, has a timeout of its own. The call's time
   * counts from when a worker takes it; waiting for one is bounded by what
   * the lease leaves, so the run is recorded before it can be claimed
   * again */
  int64_t run_for = (int64_t)env->timeout_ms * (f->target.run_init ? 2 : 1);
  int64_t wait = (int64_t)d->lease_s * 1000 - run_for - 1500;
  ac_call_spec spec = {f->target.h,   hook, arg, f->target.ctx, f->target.run_init,
                       ac_clock_mono_ms() + (wait > 0 ? wait : 0), run_for, 0};
  f->call = ac_call_new(env->calls, &spec, call_done, f);
  json_decref(arg);
  json_decref(snapshot);
  if (!f->call) {
    ac_hook_target_clear(&f->target);
    free(f);
    return 0;
  }
  pthread_mutex_lock(&ws->lock);
  ws->in_flight++;
  pthread_mutex_unlock(&ws->lock);
  ac_call_go(f->call, 0);
  return 1;
}

/* Records every run done so far; returns how many. */
static int drain(ac_dispatcher *d, PGconn *db, const char *owner, worker_state *ws) {
  pthread_mutex_lock(&ws->lock);
  inflight *list = ws->done;
  ws->done = NULL;
  pthread_mutex_unlock(&ws->lock);
  int n = 0;
  while (list) {
    inflight *next = list->next;
    finish_one(d, list);
    list = next;
    n++;
  }
  if (n) {
    pthread_mutex_lock(&ws->lock);
    ws->in_flight -= n;
    pthread_mutex_unlock(&ws->lock);
  }
  return n;
}

static void *worker(void *arg) {
  ac_dispatcher *d = ((worker_arg *)arg)->d;
  /* a lease per worker: a worker whose lease was lost cannot record over
   * the worker of this instance that claimed the run again */
  char owner[128];
  snprintf(owner, sizeof owner, "%s-w%d", d->owner, ((worker_arg *)arg)->index);
  worker_state *ws = &d->states[((worker_arg *)arg)->index];
  PGconn *db = NULL;
  int64_t last_prune = 0;
  char cursor[160] = "";
  for (;;) {
    pthread_mutex_lock(&d->lock);
    int stop = d->stopping;
    pthread_mutex_unlock(&d->lock);
    if (!db || PQstatus(db) != CONNECTION_OK) {
      PQfinish(db);
      db = NULL;
      ac_db_open_conn(d->url, &db, NULL); /* NULL on failure: tried again next round */
    }
    int busy = drain(d, db, owner, ws) > 0;
    flush(d, db, owner, ws);
    pthread_mutex_lock(&ws->lock);
    int room = INFLIGHT_MAX - ws->in_flight, left = ws->in_flight;
    pthread_mutex_unlock(&ws->lock);
    if (stop && left == 0)
      break;
    json_t *runs = NULL;
    ac_err err = {0};
    /* a namespace whose calls are at their bulkhead (a receiver that
     * hangs, say) gets nothing claimed until it has room: its runs would
     * only be refused and claimed again */
    json_t *full = room > 0 && !stop ? ac_calls_full_namespaces(d->cfg.env->calls) : NULL;
    int claimed = !stop && room > 0 && PQstatus(db) == CONNECTION_OK &&
                  ac_events_claim(db, owner, d->lease_s, room, cursor, full, &runs, &err) == AC_OK;
    json_decref(full);
    if (claimed && json_array_size(runs) > 0) {
      size_t i;
      json_t *r;
      cursor[0] = '\0'; /* the next claim's turns start after the last namespace served */
      json_array_foreach(runs, i, r) {
        const char *ns = json_string_value(json_object_get(r, "namespaceId"));
        if (ns && strcmp(ns, cursor) > 0)
          ac_str_copy(cursor, sizeof cursor, ns);
        start_one(d, db, owner, ws, r);
      }
      json_decref(runs);
      flush(d, db, owner, ws);
      continue;
    }
    json_decref(runs);
    if (busy)
      continue;
    if (!stop && PQstatus(db) == CONNECTION_OK && ac_clock_mono_ms() - last_prune > 3600 * 1000) {
      ac_events_prune(db, d->cfg.retention_days, NULL);
      last_prune = ac_clock_mono_ms();
    }
    /* nothing due: sleep until woken (a new event, a call done) or the
     * next poll */
    pthread_mutex_lock(&d->lock);
    unsigned seen = d->wakeups;
    struct timespec ts;
    int64_t until = ac_clock_mono_ms() + (stop ? 20 : IDLE_POLL_MS);
    ts.tv_sec = (time_t)(until / 1000);
    ts.tv_nsec = (long)(until % 1000) * 1000000L;
    while (d->wakeups == seen)
      if (pthread_cond_timedwait(&d->wake, &d->lock, &ts) != 0)
        break;
    pthread_mutex_unlock(&d->lock);
  }
  PQfinish(db);
  return NULL;
}

int ac_dispatcher_start(const ac_dispatcher_config *cfg, ac_dispatcher **out, ac_err *err) {
  *out = NULL;
  ac_dispatcher *d = calloc(1, sizeof *d);
  if (!d)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  d->cfg = *cfg;
  d->url = strdup(cfg->database_url);
  char rnd[AC_CRYPTO_RANDOM_ID_SIZE];
  ac_crypto_random_id(rnd);
  snprintf(d->owner, sizeof d->owner, "%s-%s", cfg->instance_id ? cfg->instance_id : "agentcore",
           rnd);
  pthread_mutex_init(&d->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&d->wake, &attr);
  pthread_condattr_destroy(&attr);
  /* a run leased for less than a call may hold it would be claimed again
   * while still in flight (delivered twice under normal operation) */
  int hold_s = (2 * cfg->env->timeout_ms + 500 + 500 + 999) / 1000; /* + 0.5 s to record */
  hold_s *= 2; /* and as long again to wait for a worker */
  d->lease_s = cfg->lease_s > hold_s ? cfg->lease_s : hold_s;
  if (d->lease_s != cfg->lease_s)
    ac_logf(cfg->env->log, AC_LOG_WARN,
            "AGENTCORE_LEASE_S=%d is shorter than a hook call may hold its run; leases last %d s",
            cfg->lease_s, d->lease_s);
  d->threads = calloc((size_t)cfg->workers, sizeof *d->threads);
  d->args = calloc((size_t)cfg->workers, sizeof *d->args);
  d->states = calloc((size_t)cfg->workers, sizeof *d->states);
  for (int i = 0; d->states && i < cfg->workers; i++) {
    d->states[i].d = d;
    d->states[i].outcomes = json_array();
    pthread_mutex_init(&d->states[i].lock, NULL);
  }
  for (int i = 0; d->threads && d->args && d->states && i < cfg->workers; i++) {
    d->args[d->nthreads] = (worker_arg){d, d->nthreads};
    if (pthread_create(&d->threads[d->nthreads], NULL, worker, &d->args[d->nthreads]) == 0)
      d->nthreads++;
  }
  *out = d;
  return AC_OK;
}

void ac_dispatcher_wake(ac_dispatcher *d) {
  if (!d)
    return;
  pthread_mutex_lock(&d->lock);
  d->wakeups++;
  pthread_cond_broadcast(&d->wake);
  pthread_mutex_unlock(&d->lock);
}

void ac_dispatcher_stop(ac_dispatcher *d) {
  if (!d)
    return;
  pthread_mutex_lock(&d->lock);
  d->stopping = 1;
  pthread_cond_broadcast(&d->wake);
  pthread_mutex_unlock(&d->lock);
  /* each thread ends once its calls in flight are recorded */
  for (int i = 0; i < d->nthreads; i++)
    pthread_join(d->threads[i], NULL);
  for (int i = 0; d->states && i < d->cfg.workers; i++) {
    pthread_mutex_destroy(&d->states[i].lock);
    json_decref(d->states[i].outcomes);
  }
  free(d->states);
  free(d->threads);
  free(d->args);
  free(d->url);
  pthread_mutex_destroy(&d->lock);
  pthread_cond_destroy(&d->wake);
  free(d);
}
