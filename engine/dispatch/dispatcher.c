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
};

static const long long schedule_s[] = {5, 30, 120, 600, 1800, 3600, 10800, 21600};
#define SCHEDULE_LEN (int)(sizeof schedule_s / sizeof schedule_s[0])

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

/* The hook's event argument (SPEC §7). */
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

/* Runs one claimed run and records its outcome, as owner (this worker's
 * lease name). */
static void run_one(ac_dispatcher *d, PGconn *db, const char *owner, const json_t *run) {
  const ac_hook_env *env = d->cfg.env;
  const char *ns = json_string_value(json_object_get(run, "namespaceId"));
  const char *plugin = json_string_value(json_object_get(run, "pluginId"));
  const char *event_id = json_string_value(json_object_get(run, "eventId"));
  int attempt = (int)json_integer_value(json_object_get(run, "attempts"));
  unsigned cap;
  const char *hook = hook_for(json_string_value(json_object_get(run, "type")), &cap);
  ac_err err = {0};

  json_t *snapshot = NULL, *entry = NULL;
  if (ac_tenancy_namespace(d->cfg.tenancy, NULL, ns, &snapshot, &err) == AC_OK) {
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(snapshot, "plugins"), i, e) {
      if (strcmp(json_string_value(json_object_get(e, "pluginId")), plugin) == 0)
        entry = e;
    }
  }
  const char *status = "ok";
  char message[AC_OUTCOME_MSG_MAX] = "";
  long long retry_in = 0, duration = 0;
  if (!snapshot) {
    /* unknown here and unreadable: leave the lease to expire and try again later */
    return;
  }
  if (!entry) {
    status = "skipped";
    snprintf(message, sizeof message, "the plugin is no longer enabled in this namespace");
  } else {
    ac_hook_target t;
    ac_outcome out;
    int ready = ac_hook_target_prepare(env, ns, json_string_value(json_object_get(snapshot, "departmentId")),
                                       entry, cap, &t, &out);
    if (ready == 0) {
      status = "skipped";
      snprintf(message, sizeof message, "the plugin does not handle %s", hook);
    } else if (ready < 0) {
      status = "skipped";
      snprintf(message, sizeof message, "%s", out.message);
    } else {
      t.ctx.allow_retry = 1;
      json_t *arg = event_arg(run);
      ac_outcome init_out;
      int init_ran = 0;
      /* init, when it runs first, has a timeout of its own; the call runs
       * on the worker pool like every plugin call, and this thread waits.
       * Its time counts from when a worker takes it; waiting for one is
       * bounded by what the lease leaves, so the run is recorded before it
       * can be claimed again */
      int64_t run_for = (int64_t)env->timeout_ms * (t.run_init ? 2 : 1);
      int64_t wait = (int64_t)d->lease_s * 1000 - run_for - 1500;
      ac_call_spec spec = {t.h,       hook,      arg,
                           t.ctx,     t.run_init, ac_clock_mono_ms() + (wait > 0 ? wait : 0),
                           run_for};
      ac_call_run_wait(env->calls, &spec, NULL, &out, &init_out, &init_ran);
      ac_hook_record(env, &t, hook, init_ran ? &init_out : NULL, &out);
      json_decref(arg);
      duration = out.duration_ms;
      snprintf(message, sizeof message, "%s", out.message);
      if (out.kind == AC_OUTCOME_RETRY || out.kind == AC_OUTCOME_BUSY) {
        /* busy: no worker share was free; not the plugin's failure, so it
         * is tried again after the first step of the schedule */
        unsigned r;
        ac_crypto_random_bytes(&r, sizeof r);
        retry_in = ac_dispatcher_backoff_ms(attempt, out.kind == AC_OUTCOME_BUSY ? -1 : out.retry_delay_s, r);
        status = retry_in < 0 ? "error" : "retrying";
        if (retry_in < 0)
          snprintf(message, sizeof message, "gave up after %d attempts: %s", attempt, out.message);
      } else {
        status = ac_outcome_kind_name(out.kind);
        if (out.kind == AC_OUTCOME_CONTRACT)
          status = "error";
      }
    }
    ac_hook_target_clear(&t);
  }
  json_decref(snapshot);
  if (ac_events_finish(db, owner, event_id, plugin, status, duration,
                       message[0] ? message : NULL, retry_in, &err) != AC_OK)
    ac_logf(env->log, AC_LOG_WARN, "recording run %s/%s failed: %s", event_id, plugin, err.msg);
}

static void *worker(void *arg) {
  ac_dispatcher *d = ((worker_arg *)arg)->d;
  /* a lease per worker: a worker whose lease was lost cannot record over
   * the worker of this instance that claimed the run again */
  char owner[128];
  snprintf(owner, sizeof owner, "%s-w%d", d->owner, ((worker_arg *)arg)->index);
  PGconn *db = NULL;
  int64_t last_prune = 0;
  for (;;) {
    pthread_mutex_lock(&d->lock);
    int stop = d->stopping;
    pthread_mutex_unlock(&d->lock);
    if (stop)
      break;
    if (!db || PQstatus(db) != CONNECTION_OK) {
      PQfinish(db);
      db = PQconnectdb(d->url);
    }
    json_t *runs = NULL;
    ac_err err = {0};
    if (PQstatus(db) == CONNECTION_OK &&
        ac_events_claim(db, owner, d->lease_s, 1, &runs, &err) == AC_OK &&
        json_array_size(runs) > 0) {
      run_one(d, db, owner, json_array_get(runs, 0));
      json_decref(runs);
      continue;
    }
    json_decref(runs);
    if (PQstatus(db) == CONNECTION_OK && ac_clock_mono_ms() - last_prune > 3600 * 1000) {
      ac_events_prune(db, d->cfg.retention_days, NULL);
      last_prune = ac_clock_mono_ms();
    }
    /* nothing due: sleep until woken or the next poll */
    pthread_mutex_lock(&d->lock);
    unsigned seen = d->wakeups;
    struct timespec ts;
    int64_t until = ac_clock_mono_ms() + IDLE_POLL_MS;
    ts.tv_sec = (time_t)(until / 1000);
    ts.tv_nsec = (long)(until % 1000) * 1000000L;
    while (!d->stopping && d->wakeups == seen)
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
  for (int i = 0; d->threads && d->args && i < cfg->workers; i++) {
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
  for (int i = 0; i < d->nthreads; i++)
    pthread_join(d->threads[i], NULL);
  free(d->threads);
  free(d->args);
  free(d->url);
  pthread_mutex_destroy(&d->lock);
  pthread_cond_destroy(&d->wake);
  free(d);
}
