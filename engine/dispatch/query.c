/* query.c — concurrent onAgentQuery fan-out, answered when the last call
 * ends. */
#include "dispatch/query.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json_write.h"
#include "dispatch/call.h"
#include "lua/watchdog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_error(json_t *errors, const char *plugin, const char *kind, const char *message) {
  json_t *e = json_pack("{s:s, s:s, s:s}", "pluginId", plugin, "kind", kind, "message", message);
  if (!e) /* a message that is not UTF-8 must not lose the entry */
    e = json_pack("{s:s, s:s, s:s}", "pluginId", plugin, "kind", kind, "message",
                  "(message is not valid UTF-8)");
  json_array_append_new(errors, e);
}

/* Checks a plugin's returned value and keeps its valid results. */
static void take_results(const ac_schema *schema, const char *plugin, json_t *value,
                         json_t *results, json_t *errors) {
  if (json_is_object(value) && json_object_size(value) == 0) {
    return; /* an empty table reads as {} */
  }
  if (json_is_null(value))
    return;
  if (!json_is_array(value)) {
    add_error(errors, plugin, "contract", "onAgentQuery must return an array of results");
    return;
  }
  size_t i;
  json_t *r;
  size_t kept = 0;
  json_array_foreach(value, i, r) {
    if (kept == AC_QUERY_MAX_RESULTS)
      break;
    /* the value is this call's own: results are marked in place, after
     * the check (the schema is compiled without pluginId) */
    json_t *copy = json_incref(r);
    json_t *errs = NULL;
    if (ac_schema_validate(schema, copy, &errs) != AC_OK) {
      json_t *e0 = json_array_get(errs, 0);
      char msg[600];
      snprintf(msg, sizeof msg, "result %zu is not a valid PluginResult: %s %s", i + 1,
               json_string_value(json_object_get(e0, "path")),
               json_string_value(json_object_get(e0, "message")));
      add_error(errors, plugin, "contract", msg);
      json_decref(copy);
    } else {
      json_object_set_new(copy, "pluginId", json_string(plugin));
      json_array_append_new(results, copy);
      kept++;
    }
    json_decref(errs);
  }
}

/* One plugin's place in the answer: small, so a request with many plugins
 * stays a small allocation; outcomes are read from the call itself. */
typedef struct slot {
  struct query_run *run;
  ac_hook_target target;
  int state;           /* 1 called, 0 skipped, -1 failed before the call */
  ac_outcome *early;   /* state -1: why (NULL: out of memory) */
  ac_call *call;       /* held until the answer is built */
  char plugin[80];     /* named in errors even when the plugin is not loaded */
} slot;

typedef struct query_run {
  const ac_hook_env *env;
  const ac_schema *schema;
  int64_t start_ms;
  ac_query_done_fn done;
  void *ud;
  char ns[160], dept[160]; /* the request's strings are gone by the answer */
  pthread_mutex_t lock;
  int pending; /* calls not yet ended, plus one while calls are started */
  size_t n, capacity;
  struct query_run *next_free;
  slot slots[];
} query_run;

/* A run (a slot per plugin) is larger than the allocator's per-thread
 * caches hold, and every query makes one: freed runs with room for
 * RUN_POOL_SLOTS plugins are kept for the next queries. */
#define RUN_POOL_SLOTS 32
#define RUN_POOL_MAX 64
static pthread_mutex_t run_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static query_run *run_pool;
static int run_pool_size;

/* A zeroed run with n slots; NULL when out of memory. */
static query_run *run_alloc(size_t n) {
  query_run *run = NULL;
  if (n <= RUN_POOL_SLOTS) {
    pthread_mutex_lock(&run_pool_lock);
    if ((run = run_pool)) {
      run_pool = run->next_free;
      run_pool_size--;
    }
    pthread_mutex_unlock(&run_pool_lock);
  }
  size_t capacity = n <= RUN_POOL_SLOTS ? RUN_POOL_SLOTS : n;
  if (!run && !(run = malloc(sizeof *run + capacity * sizeof(slot))))
    return NULL;
  memset(run, 0, sizeof *run + n * sizeof(slot));
  run->capacity = capacity;
  return run;
}

static void run_free(query_run *run) {
  int keep = 0;
  if (run->capacity == RUN_POOL_SLOTS) {
    pthread_mutex_lock(&run_pool_lock);
    if ((keep = run_pool_size < RUN_POOL_MAX)) {
      run->next_free = run_pool;
      run_pool = run;
      run_pool_size++;
    }
    pthread_mutex_unlock(&run_pool_lock);
  }
  if (!keep)
    free(run);
}

/* Appends a plugin's results that came as a value: checked, then written. */
static int append_checked(ac_buf *body, size_t results_start, const ac_schema *schema,
                          const char *plugin, json_t *value, json_t *errors) {
  json_t *kept = json_array();
  take_results(schema, plugin, value, kept, errors);
  int rc = kept ? AC_OK : AC_ERR_NOMEM;
  size_t i;
  json_t *r;
  json_array_foreach(kept, i, r) {
    if (rc == AC_OK && body->len > results_start)
      rc = ac_buf_append(body, ",", 1);
    if (rc == AC_OK)
      rc = ac_json_append(body, r);
  }
  json_decref(kept);
  return rc;
}

/* Writes the answer in plugin order, frees the run and hands the text to
 * done. Results that came as text (the usual case) are copied as they are. */
static void answer(query_run *run) {
  ac_buf body = AC_BUF_INIT(AC_QUERY_BODY_MAX);
  json_t *errors = json_array();
  int rc = errors ? ac_buf_puts(&body, "{\"results\":[") : AC_ERR_NOMEM;
  size_t results_start = body.len;
  for (size_t i = 0; i < run->n; i++) {
    slot *s = &run->slots[i];
    const char *plugin = s->plugin;
    if (s->state < 0) {
      add_error(errors, plugin, ac_outcome_kind_name(s->early ? s->early->kind : AC_OUTCOME_ERROR),
                s->early ? s->early->message : "out of memory starting a call");
      free(s->early);
    } else if (s->state == 1) {
      const ac_outcome *out = ac_call_outcome(s->call);
      const ac_buf *text = ac_call_results_text(s->call);
      if (out->kind != AC_OUTCOME_OK) {
        add_error(errors, plugin, ac_outcome_kind_name(out->kind), out->message);
      } else if (text) {
        if (rc == AC_OK && text->len && body.len > results_start)
          rc = ac_buf_append(&body, ",", 1);
        if (rc == AC_OK)
          rc = ac_buf_append(&body, text->data, text->len);
      } else {
        json_t *value = ac_call_take_result(s->call);
        if (rc == AC_OK)
          rc = append_checked(&body, results_start, run->schema, plugin, value, errors);
        json_decref(value);
      }
      ac_call_release(s->call);
    }
    ac_hook_target_clear(&s->target);
  }
  if (rc == AC_OK)
    rc = ac_buf_puts(&body, "],\"errors\":");
  if (rc == AC_OK)
    rc = ac_json_append(&body, errors);
  if (rc == AC_OK)
    rc = ac_buf_puts(&body, ",\"tookMs\":");
  if (rc == AC_OK)
    rc = ac_json_append_integer(&body, (long long)(ac_clock_mono_ms() - run->start_ms));
  if (rc == AC_OK)
    rc = ac_buf_append(&body, "}", 1);
  json_decref(errors);
  char *text = rc == AC_OK ? ac_buf_take(&body) : NULL;
  ac_buf_free(&body);
  ac_query_done_fn done = run->done;
  void *ud = run->ud;
  pthread_mutex_destroy(&run->lock);
  run_free(run);
  done(text, ud);
}

static void release_one(query_run *run) {
  pthread_mutex_lock(&run->lock);
  int last = --run->pending == 0;
  pthread_mutex_unlock(&run->lock);
  if (last)
    answer(run);
}

static void call_done(ac_call *c, void *ud) {
  slot *s = ud;
  ac_hook_record(s->run->env, &s->target, AC_HOOK_QUERY,
                 ac_call_init_ran(c) ? ac_call_init_outcome(c) : NULL, ac_call_outcome(c));
  release_one(s->run);
}

/* Keeps why a plugin was not called; NULL (reported as out of memory) when
 * even that cannot be kept. */
static ac_outcome *keep_outcome(const ac_outcome *out) {
  ac_outcome *copy = malloc(sizeof *copy);
  if (copy)
    *copy = *out;
  return copy;
}

void ac_query_start(const ac_hook_env *env, const ac_schema *result_schema, const char *ns,
                    const json_t *snapshot, const json_t *query, int64_t start_ms,
                    ac_query_done_fn done, void *ud) {
  const json_t *plugins = json_object_get(snapshot, "plugins");
  const char *dept = json_string_value(json_object_get(snapshot, "departmentId"));
  size_t n = json_array_size(plugins);
  query_run *run = run_alloc(n);
  if (!run) {
    done(NULL, ud);
    return;
  }
  run->env = env;
  run->schema = result_schema;
  run->start_ms = start_ms;
  run->done = done;
  run->ud = ud;
  run->n = n;
  run->pending = 1;
  pthread_mutex_init(&run->lock, NULL);
  ac_str_copy(run->ns, sizeof run->ns, ns);
  ac_str_copy(run->dept, sizeof run->dept, dept ? dept : "");
  int64_t deadline = ac_clock_mono_ms() + env->timeout_ms;
  for (size_t i = 0; i < n; i++) {
    slot *s = &run->slots[i];
    s->run = run;
    const json_t *entry = json_array_get(plugins, i);
    ac_str_copy(s->plugin, sizeof s->plugin, json_string_value(json_object_get(entry, "pluginId")));
    ac_outcome early;
    s->state = ac_hook_target_prepare(env, run->ns, dept ? run->dept : NULL, entry,
                                      AC_CAP_AGENT_QUERY, &s->target, &early);
    if (s->state < 0)
      s->early = keep_outcome(&early);
  }
  /* one slice for the whole request, shared fairly: each call gets what
   * is left divided by the calls still to start, so a plugin that spins
   * cannot take the time of the quick ones behind it */
  int64_t slice_us = ac_calls_slice_us(env->calls);
  int64_t slice_end = ac_clock_mono_us() + slice_us;
  /* the request's CPU slice is armed once for all its calls */
  if (slice_us > 0)
    ac_watchdog_slice_share_begin(slice_us);
  size_t to_start = 0;
  for (size_t i = 0; i < n; i++)
    to_start += run->slots[i].state == 1;
  for (size_t i = 0; i < n; i++) {
    slot *s = &run->slots[i];
    if (s->state != 1)
      continue;
    ac_call_spec spec = {s->target.h, AC_HOOK_QUERY, query,    s->target.ctx,
                         s->target.run_init, deadline, 0, 1};
    s->call = ac_call_new(env->calls, &spec, call_done, s);
    if (!s->call) {
      s->state = -1; /* early stays NULL: out of memory */
      continue;
    }
    pthread_mutex_lock(&run->lock);
    run->pending++;
    pthread_mutex_unlock(&run->lock);
    int64_t left = slice_end - ac_clock_mono_us();
    int64_t share = left > 0 ? left / (int64_t)to_start : 0;
    to_start--;
    ac_call_go(s->call, share);
  }
  ac_watchdog_slice_share_end();
  release_one(run);
}
