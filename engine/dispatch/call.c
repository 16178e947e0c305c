/* call.c — admission, the slice on the caller's thread, the hand-over to
 * the workers, and exactly-once delivery of a call's outcome. */
#include "dispatch/call.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/hash.h"
#include "lua/convert.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BULKHEAD_BUCKETS 1024
#define BULKHEAD_MAX 100000 /* distinct names; past it, names share one entry */

/* In-flight calls and the worker share of one plugin or namespace. */
typedef struct bulkhead {
  char *name;
  atomic_int inflight;
  ac_share share;
  struct bulkhead *next;
} bulkhead;

struct ac_calls {
  ac_calls_config cfg;
  pthread_mutex_t lock;
  bulkhead *plugins[BULKHEAD_BUCKETS];
  bulkhead *namespaces[BULKHEAD_BUCKETS];
  int count;
  bulkhead overflow_plugin, overflow_ns;
  atomic_int maybe_full; /* a namespace reached its bulkhead since the last scan */
};

enum { PHASE_INIT, PHASE_HOOK, PHASE_DONE };

struct ac_call {
  ac_task task;
  ac_calls *cs;
  atomic_int refs;      /* the caller's and the executor's */
  atomic_int delivered; /* done has been called */
  ac_call_done_fn done;
  void *ud;

  ac_plugin_handle *h;
  char hook[32];
  json_t *arg;
  ac_call_context ctx;
  char ns[160], dept[160], plugin[80];
  json_t *config, *secrets;
  int64_t deadline_ms;
  int64_t started_ms;

  int phase;
  int open;          /* a vm call is open (parked between slices) */
  ac_vm *vm;
  json_t *result;    /* the executor's */
  int want_text;     /* onAgentQuery's results as text when sure */
  int init_ran;
  bulkhead *bp, *bn; /* admitted against these */
  int stuck;         /* abandoned: counted on the plugin version */
  int waiting;       /* parked: its HTTP transfer goes to the loop next */

  /* what done reports; written once, by whoever delivers */
  json_t *final_result;
  int final_init_ran;

  /* the outcomes last: a recycled call resets only what comes before them
   * and each outcome's header */
  ac_outcome out, init_out;
  ac_outcome final_out, final_init;
  /* results text, the executor's and what done reports: their buffers
   * are kept when the call is recycled */
  ac_results_text text, final_text;
  struct ac_call *next_free;
};

/* A recycled call keeps text buffers up to this size. */
#define TEXT_KEEP (64 * 1024)

/* Calls are larger than the allocator's per-thread caches hold, and every
 * query makes several: freed calls are kept for the next ones. Process-wide,
 * because a call abandoned in C may end after its ac_calls is gone. */
#define CALL_POOL_MAX 512
static pthread_mutex_t call_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static ac_call *call_pool;
static int call_pool_size;

static ac_call *call_alloc(void) {
  pthread_mutex_lock(&call_pool_lock);
  ac_call *c = call_pool;
  if (c) {
    call_pool = c->next_free;
    call_pool_size--;
  }
  pthread_mutex_unlock(&call_pool_lock);
  if (!c) {
    if (!(c = malloc(sizeof *c)))
      return NULL;
    memset(c, 0, sizeof *c);
  }
  memset(c, 0, offsetof(ac_call, out));
  return c;
}

static void text_clear(ac_results_text *t) {
  if (t->buf.cap > TEXT_KEEP)
    ac_buf_free(&t->buf);
  ac_buf_reset(&t->buf);
  t->ready = 0;
}

static void call_recycle(ac_call *c) {
  text_clear(&c->text);
  text_clear(&c->final_text);
  pthread_mutex_lock(&call_pool_lock);
  int keep = call_pool_size < CALL_POOL_MAX;
  if (keep) {
    c->next_free = call_pool;
    call_pool = c;
    call_pool_size++;
  }
  pthread_mutex_unlock(&call_pool_lock);
  if (!keep) {
    ac_buf_free(&c->text.buf);
    ac_buf_free(&c->final_text.buf);
    free(c);
  }
}

/* ---- bulkheads -------------------------------------------------------- */

static unsigned hash_name(const char *s) {
  return (unsigned)(ac_hash_str(AC_HASH_SEED, s) % BULKHEAD_BUCKETS);
}

static bulkhead *bulkhead_of(ac_calls *cs, bulkhead **table, bulkhead *overflow,
                             const char *name, int share) {
  unsigned b = hash_name(name);
  pthread_mutex_lock(&cs->lock);
  bulkhead *e = table[b];
  while (e && strcmp(e->name, name) != 0)
    e = e->next;
  if (!e && cs->count < BULKHEAD_MAX && (e = calloc(1, sizeof *e))) {
    e->name = strdup(name);
    if (!e->name) {
      free(e);
      e = NULL;
    } else {
      e->share.limit = share;
      e->next = table[b];
      table[b] = e;
      cs->count++;
    }
  }
  pthread_mutex_unlock(&cs->lock);
  return e ? e : overflow;
}

int ac_calls_new(const ac_calls_config *cfg, ac_calls **out, ac_err *err) {
  ac_calls *cs = calloc(1, sizeof *cs);
  if (!cs)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  cs->cfg = *cfg;
  if (cs->cfg.plugin_share < 1)
    cs->cfg.plugin_share = 1;
  if (cs->cfg.namespace_share < 1)
    cs->cfg.namespace_share = 1;
  pthread_mutex_init(&cs->lock, NULL);
  cs->overflow_plugin.name = cs->overflow_ns.name = (char *)"";
  cs->overflow_plugin.share.limit = cs->cfg.plugin_share;
  cs->overflow_ns.share.limit = cs->cfg.namespace_share;
  *out = cs;
  return AC_OK;
}

static void free_table(bulkhead **table) {
  for (int i = 0; i < BULKHEAD_BUCKETS; i++)
    for (bulkhead *e = table[i], *next; e; e = next) {
      next = e->next;
      free(e->name);
      free(e);
    }
}

void ac_calls_free(ac_calls *cs) {
  if (!cs)
    return;
  free_table(cs->plugins);
  free_table(cs->namespaces);
  pthread_mutex_destroy(&cs->lock);
  free(cs);
}

int ac_calls_slice_us(const ac_calls *cs) { return cs->cfg.slice_us; }

json_t *ac_calls_full_namespaces(ac_calls *cs) {
  json_t *full = json_array();
  /* the scan takes the lock admissions take, so it runs only after some
   * namespace reached its bulkhead; a namespace filling during the scan
   * sets the hint again */
  if (!atomic_exchange(&cs->maybe_full, 0))
    return full;
  pthread_mutex_lock(&cs->lock);
  for (int i = 0; i < BULKHEAD_BUCKETS; i++)
    for (bulkhead *e = cs->namespaces[i]; e; e = e->next)
      if (atomic_load(&e->inflight) >= cs->cfg.max_per_namespace)
        json_array_append_new(full, json_string(e->name));
  pthread_mutex_unlock(&cs->lock);
  if (json_array_size(full) > 0)
    atomic_store(&cs->maybe_full, 1); /* still full: scan again next time */
  return full;
}

/* ---- outcomes ---------------------------------------------------------- */

/* Every call makes one of these: no formatting, only the header is reset. */
static void set_outcome(ac_outcome *out, ac_outcome_kind kind, const char *msg) {
  out->kind = kind;
  out->duration_ms = 0;
  out->retry_delay_s = -1;
  size_t n = strlen(msg);
  if (n >= sizeof out->message)
    n = sizeof out->message - 1;
  memcpy(out->message, msg, n);
  out->message[n] = '\0';
}

static void count_busy(ac_call *c) {
  if (!c->cs->cfg.metrics)
    return;
  char labels[160] = "";
  ac_metrics_label(labels, sizeof labels, "plugin", c->plugin);
  ac_metrics_add(c->cs->cfg.metrics, "agentcore_calls_busy_total", labels, 1);
}

/* Hands out to done once; later attempts (a stuck call finishing after it
 * was abandoned) are dropped. result is stolen; with_text: the executor
 * ends the call, and its results text goes with it. */
static void deliver(ac_call *c, const ac_outcome *out, json_t *result, int with_text) {
  if (atomic_exchange(&c->delivered, 1)) {
    json_decref(result);
    return;
  }
  if (with_text && c->text.ready) {
    ac_results_text t = c->final_text;
    c->final_text = c->text;
    c->text = t;
    c->text.ready = 0;
  }
  c->final_out = *out;
  if (!c->stuck) {
    c->final_init = c->init_out;
    c->final_init_ran = c->init_ran;
  }
  c->final_out.duration_ms = ac_clock_mono_ms() - c->started_ms;
  c->final_result = result;
  if (out->kind == AC_OUTCOME_BUSY)
    count_busy(c);
  c->done(c, c->ud);
}

static void call_unref(ac_call *c) {
  if (atomic_fetch_sub(&c->refs, 1) != 1)
    return;
  ac_plugin_handle_release(c->h);
  json_decref(c->arg);
  json_decref(c->config);
  json_decref(c->secrets);
  json_decref(c->result);
  json_decref(c->final_result);
  call_recycle(c);
}

/* The executor is done with the call: state and client back, bulkheads
 * freed. */
static void executor_leave(ac_call *c) {
  if (c->ctx.http) {
    ac_http_request_cancel(c->ctx.http); /* a call ended while it waited */
    ac_http_pool_give(c->cs->cfg.http, c->ctx.http);
    c->ctx.http = NULL;
  }
  if (c->vm)
    ac_plugin_handle_give_state(c->h, c->ns, c->vm);
  c->vm = NULL;
  if (c->bp) {
    atomic_fetch_sub(&c->bp->inflight, 1);
    atomic_fetch_sub(&c->bn->inflight, 1);
  }
  if (c->stuck)
    ac_plugin_handle_add_stuck(c->h, -1);
  call_unref(c);
}

/* ---- running ------------------------------------------------------------- */

/* context.http's client, taken on first use and kept for the rest of the
 * call: its transfer may be in flight while the call is parked. */
static ac_http_client *take_http(void *ud) {
  ac_call *c = ud;
  if (!c->ctx.http && c->cs->cfg.http)
    c->ctx.http = ac_http_pool_take(c->cs->cfg.http);
  return c->ctx.http;
}

/* Runs the call on this thread for at most slice_us (0: to the end).
 * Returns 1 when it ended (c->out, c->result), 0 when it must go on. */
static int step(ac_call *c, int64_t slice_us) {
  c->deadline_ms = c->task.deadline_ms; /* a worker may have started the clock */
  /* the vm's slice timer counts this thread's CPU time; the wall clock
   * here only spreads what is left over the phases */
  int64_t slice_end = slice_us > 0 ? ac_clock_mono_us() + slice_us : 0;
  if (!c->vm) {
    /* building a state runs the plugin's top level, which may take up to
     * the timeout: only a worker does that */
    if (slice_end && !(c->vm = ac_plugin_handle_idle_state(c->h, c->ns)))
      return 0;
    if (!c->vm)
      c->vm = ac_plugin_handle_take_state(c->h, c->ns, &c->out);
    if (!c->vm) {
      c->phase = PHASE_DONE;
      return 1;
    }
    ac_vm_allow_wait(c->vm, c->cs->cfg.loop != NULL);
  }

  while (c->phase != PHASE_DONE) {
    int64_t left = 0;
    if (slice_end) {
      left = slice_end - ac_clock_mono_us();
      if (left <= 0)
        return 0;
    }
    int init = c->phase == PHASE_INIT;
    const char *hook = init ? AC_HOOK_INIT : c->hook;
    ac_outcome *out = init ? &c->init_out : &c->out;
    json_t **result = init ? NULL : &c->result;
    ac_results_text *text = !init && c->want_text ? &c->text : NULL;
    ac_vm_step st;
    if (!c->open)
      st = ac_plugin_call_begin(c->vm, hook, init ? NULL : c->arg, &c->ctx, c->deadline_ms, left,
                                result, text, out);
    else
      st = ac_plugin_call_continue(c->vm, hook, left, result, text, out);
    if (slice_end && ac_vm_blocked_inline(c->vm))
      ac_plugin_handle_no_inline(c->h);
    if (st != AC_VM_STEP_DONE) {
      c->open = 1;
      c->waiting = st == AC_VM_STEP_WAIT;
      return 0;
    }
    c->open = 0;
    if (init) {
      c->init_ran = 1;
      if (c->init_out.kind != AC_OUTCOME_OK) {
        c->out = c->init_out;
        c->phase = PHASE_DONE;
      } else {
        c->phase = PHASE_HOOK;
      }
    } else {
      c->phase = PHASE_DONE;
    }
  }
  return 1;
}

/* Delivers the executor's outcome (dropped if the call was abandoned). */
static void conclude(ac_call *c) {
  if (!c->stuck)
    ac_plugin_handle_note_outcome(c->h, c->out.kind);
  json_t *r = c->result;
  c->result = NULL;
  deliver(c, &c->out, r, 1);
}

static void task_run(ac_task *t) {
  ac_call *c = (ac_call *)t;
  if (step(c, 0))
    conclude(c);
  /* else parked: release hands its transfer to the loop */
}

static void task_expired(ac_task *t, int stopping);

/* The loop ran the call's transfer: back to the workers to go on. */
static void transfer_done(void *ud) {
  ac_call *c = ud;
  if (ac_workers_submit(c->cs->cfg.workers, &c->task) != AC_OK)
    task_expired(&c->task, 1);
}

/* Hands a parked call's transfer to the event loop (not on any worker). */
static void park_on_loop(ac_call *c) {
  c->waiting = 0;
  if (ac_http_loop_add(c->cs->cfg.loop, c->ctx.http, transfer_done, c) == AC_OK)
    return;
  /* the loop is stopping: the transfer never runs */
  ac_http_client_transfer_done(c->ctx.http, (int)CURLE_ABORTED_BY_CALLBACK);
  transfer_done(c);
}

static void task_release(ac_task *t) {
  ac_call *c = (ac_call *)t;
  if (c->waiting)
    park_on_loop(c);
  else
    executor_leave(c);
}

static void task_expired(ac_task *t, int stopping) {
  ac_call *c = (ac_call *)t;
  c->waiting = 0;
  ac_outcome out;
  int started = c->open;
  if (c->open) {
    ac_vm_call_abort(c->vm, AC_OUTCOME_BUSY, "busy", &out);
    c->open = 0;
  }
  /* a call that never ran is refused (busy); one that ran and was still
   * waiting at its deadline (a transfer ends then at the latest, and the
   * call needs a worker to go on) ran out of time */
  if (stopping)
    set_outcome(&out, AC_OUTCOME_BUSY, "busy: the engine is stopping");
  else if (started)
    set_outcome(&out, AC_OUTCOME_TIMEOUT,
                "timeout: call exceeded its time while it waited (on the network or for a worker)");
  else
    set_outcome(&out, AC_OUTCOME_BUSY,
                "busy: no worker was free for this plugin before the deadline");
  deliver(c, &out, NULL, 0);
  executor_leave(c);
}

static void task_abandoned(ac_task *t) {
  ac_call *c = (ac_call *)t;
  c->stuck = 1;
  ac_plugin_handle_add_stuck(c->h, 1);
  ac_plugin_handle_no_inline(c->h);
  ac_outcome out;
  set_outcome(&out, AC_OUTCOME_TIMEOUT,
              "timeout: call exceeded its time (stuck in a C function; abandoned)");
  deliver(c, &out, NULL, 0);
}

/* ---- the public side ------------------------------------------------------- */

static void copy_str(char *dst, size_t size, const char *src, const char **field) {
  if (!src) {
    *field = NULL;
    return;
  }
  ac_str_copy(dst, size, src);
  *field = dst;
}

ac_call *ac_call_new(ac_calls *cs, const ac_call_spec *spec, ac_call_done_fn done, void *ud) {
  ac_call *c = call_alloc();
  if (!c)
    return NULL;
  c->cs = cs;
  atomic_init(&c->refs, 2);
  c->done = done;
  c->ud = ud;
  ac_plugin_handle_ref(spec->h);
  c->h = spec->h;
  ac_str_copy(c->hook, sizeof c->hook, spec->hook);
  c->arg = spec->arg ? json_incref((json_t *)spec->arg) : NULL;
  c->ctx = spec->ctx;
  copy_str(c->ns, sizeof c->ns, spec->ctx.namespace_id, &c->ctx.namespace_id);
  copy_str(c->dept, sizeof c->dept, spec->ctx.department_id, &c->ctx.department_id);
  copy_str(c->plugin, sizeof c->plugin, spec->ctx.plugin_id, &c->ctx.plugin_id);
  c->config = spec->ctx.config ? json_incref((json_t *)spec->ctx.config) : NULL;
  c->secrets = spec->ctx.secrets ? json_incref((json_t *)spec->ctx.secrets) : NULL;
  c->ctx.config = c->config;
  c->ctx.secrets = c->secrets;
  c->ctx.http = NULL;
  c->ctx.http_take = take_http;
  c->ctx.http_ud = c;
  c->deadline_ms = spec->deadline_ms;
  c->phase = spec->run_init && ac_plugin_handle_info(spec->h)->has_init ? PHASE_INIT : PHASE_HOOK;
  c->task.run = task_run;
  c->task.release = task_release;
  c->task.expired = task_expired;
  c->task.abandoned = task_abandoned;
  c->task.deadline_ms = spec->deadline_ms;
  c->task.run_for_ms = spec->run_for_ms;
  c->want_text = spec->results_as_text;
  c->text.plugin_id = c->final_text.plugin_id = c->plugin;
  c->text.buf.limit = c->final_text.buf.limit = AC_CONVERT_BYTES_MAX;
  set_outcome(&c->out, AC_OUTCOME_ERROR, "the call did not run");
  set_outcome(&c->init_out, AC_OUTCOME_OK, "");
  set_outcome(&c->final_out, AC_OUTCOME_ERROR, "the call did not run");
  set_outcome(&c->final_init, AC_OUTCOME_OK, "");
  return c;
}

/* Refuses a call that would pass a bulkhead; 0 when admitted. */
static int refuse(ac_call *c) {
  ac_calls *cs = c->cs;
  const char *why = NULL;
  if (ac_plugin_handle_stuck(c->h) > 0 && ac_workers_stuck_full(cs->cfg.workers))
    why = "busy: too many calls of this plugin are stuck in C functions";
  if (!why) {
    c->bp = bulkhead_of(cs, cs->plugins, &cs->overflow_plugin, c->plugin, cs->cfg.plugin_share);
    c->bn = bulkhead_of(cs, cs->namespaces, &cs->overflow_ns, c->ns, cs->cfg.namespace_share);
    int p = atomic_fetch_add(&c->bp->inflight, 1);
    int n = atomic_fetch_add(&c->bn->inflight, 1);
    if (n + 1 >= cs->cfg.max_per_namespace)
      atomic_store(&cs->maybe_full, 1);
    if (p >= cs->cfg.max_per_plugin)
      why = "busy: this plugin has too many calls in flight";
    else if (n >= cs->cfg.max_per_namespace)
      why = "busy: this namespace has too many calls in flight";
    if (why) {
      atomic_fetch_sub(&c->bp->inflight, 1);
      atomic_fetch_sub(&c->bn->inflight, 1);
      c->bp = c->bn = NULL;
    }
  }
  if (!why)
    return 0;
  ac_outcome out;
  set_outcome(&out, AC_OUTCOME_BUSY, why);
  deliver(c, &out, NULL, 0);
  executor_leave(c);
  return 1;
}

void ac_call_go(ac_call *c, int64_t slice_us) {
  c->started_ms = ac_clock_mono_ms();
  if (refuse(c))
    return;
  c->task.shares[0] = &c->bp->share;
  c->task.shares[1] = &c->bn->share;
  if (!ac_plugin_handle_inline_ok(c->h))
    slice_us = 0;
  if (slice_us > 0 && step(c, slice_us)) {
    conclude(c);
    executor_leave(c);
    return;
  }
  if (c->waiting) { /* parked on a transfer: no worker needed meanwhile */
    park_on_loop(c);
    return;
  }
  if (ac_workers_submit(c->cs->cfg.workers, &c->task) != AC_OK)
    task_expired(&c->task, 1);
}

const ac_outcome *ac_call_outcome(const ac_call *c) { return &c->final_out; }
const ac_outcome *ac_call_init_outcome(const ac_call *c) { return &c->final_init; }
int ac_call_init_ran(const ac_call *c) { return c->final_init_ran; }

json_t *ac_call_take_result(ac_call *c) {
  json_t *r = c->final_result;
  c->final_result = NULL;
  return r;
}

const ac_buf *ac_call_results_text(const ac_call *c) {
  return c->final_text.ready ? &c->final_text.buf : NULL;
}

void ac_call_release(ac_call *c) {
  if (c)
    call_unref(c);
}

/* ---- waiting for a call -------------------------------------------------- */

typedef struct waiter {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int done;
} waiter;

static void wake(ac_call *c, void *ud) {
  (void)c;
  waiter *w = ud;
  pthread_mutex_lock(&w->lock);
  w->done = 1;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

void ac_call_run_wait(ac_calls *cs, const ac_call_spec *spec, json_t **result, ac_outcome *out,
                      ac_outcome *init_out, int *init_ran) {
  if (result)
    *result = NULL;
  waiter w = {.done = 0};
  pthread_mutex_init(&w.lock, NULL);
  pthread_cond_init(&w.cond, NULL);
  ac_call *c = ac_call_new(cs, spec, wake, &w);
  if (!c) {
    set_outcome(out, AC_OUTCOME_ERROR, "out of memory starting a call");
    if (init_out)
      set_outcome(init_out, AC_OUTCOME_OK, "");
    if (init_ran)
      *init_ran = 0;
  } else {
    ac_call_go(c, 0);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
      pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    *out = c->final_out;
    if (init_out)
      *init_out = c->final_init;
    if (init_ran)
      *init_ran = c->final_init_ran;
    if (result)
      *result = ac_call_take_result(c);
    ac_call_release(c);
  }
  pthread_cond_destroy(&w.cond);
  pthread_mutex_destroy(&w.lock);
}
