/* app.c — wiring the service together; lending pooled connections to handlers. */
#include "app/app.h"
#include "api/http.h"
#include "core/clock.h"
#include "db/events.h"
#include "db/intake.h"
#include "db/kv_pg.h"
#include "db/migrate.h"
#include "dispatch/call.h"
#include "dispatch/dispatcher.h"
#include "dispatch/listener.h"
#include "plugin/watcher.h"
#include "outbound/counters.h"
#include "outbound/rate_limit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MAX 32
#define TENANCY_LOAD_WAIT_MS 10000 /* serve waits this long for the first full load */

struct ac_app {
  ac_config cfg;
  ac_logger *log;
  ac_jwt_verifier *jwt;
  ac_registry *registry;
  ac_metrics *metrics;

  /* one pool for request handlers and context.db; handlers see the
   * PGconn of a connection lent to them (store.c takes PGconn) */
  ac_db_pool *pool;
  ac_intake *intake; /* accepted events, stored by group commit */
  ac_rate_limiter *event_quota; /* events per namespace */
  pthread_mutex_t lent_lock;
  struct {
    PGconn *conn;
    ac_db *db;
  } lent[POOL_MAX];

  ac_tenancy *tenancy;
  ac_addr_guard *guard;
  ac_rate_limiter *limiter;
  ac_counters *http_counters;
  ac_http_pool *http;
  ac_workers *workers;
  ac_http_loop *loop;
  ac_calls *calls;
  ac_hook_env env;
  ac_schema *result_schema;
  ac_dispatcher *dispatcher;
  ac_listener *listener;
  pthread_mutex_t catalog_lock;
  char *catalog_text;         /* {"plugins":[...]} as last rendered */
  uint64_t catalog_generation; /* registry generation it was rendered at */
  ac_kv *kv;
  ac_watcher *watcher;
};

/* ---- connections ------------------------------------------------------------ */

PGconn *ac_app_db(ac_app *app, ac_response *res) {
  ac_err err = {0};
  ac_db *db = ac_db_pool_get(app->pool, -1, &err);
  PGconn *c = db ? ac_db_conn(db) : NULL;
  if (c) {
    pthread_mutex_lock(&app->lent_lock);
    for (int i = 0; i < POOL_MAX; i++)
      if (!app->lent[i].conn) {
        app->lent[i].conn = c;
        app->lent[i].db = db;
        db = NULL;
        break;
      }
    pthread_mutex_unlock(&app->lent_lock);
    if (db) { /* cannot happen: the pool is no larger than the table */
      ac_db_pool_put(app->pool, db);
      c = NULL;
    }
  }
  if (!c) {
    ac_logf(app->log, AC_LOG_WARN, "database unavailable: %s", err.msg);
    if (res) {
      ac_respond_problem(res, 503, "the database is unavailable; try again", NULL);
      snprintf(res->retry_after, sizeof res->retry_after, "1");
    }
  }
  return c;
}

void ac_app_db_done(ac_app *app, PGconn *conn) {
  if (!conn)
    return;
  ac_db *db = NULL;
  pthread_mutex_lock(&app->lent_lock);
  for (int i = 0; i < POOL_MAX; i++)
    if (app->lent[i].conn == conn) {
      db = app->lent[i].db;
      app->lent[i].conn = NULL;
      app->lent[i].db = NULL;
      break;
    }
  pthread_mutex_unlock(&app->lent_lock);
  ac_db_pool_put(app->pool, db);
}

int ac_app_ready(ac_app *app) {
  if (!ac_registry_ready(app->registry))
    return 0;
  PGconn *db = ac_app_db(app, NULL);
  if (!db)
    return 0;
  PGresult *r = PQexec(db, "SELECT 1");
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  PQclear(r);
  ac_app_db_done(app, db);
  return ok;
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void describe_metrics(ac_metrics *m) {
  ac_metrics_describe(m, "agentcore_api_requests_total", "counter", "API requests by route and status.");
  ac_metrics_describe(m, "agentcore_api_request_duration_seconds", "histogram", "API request latency.");
  ac_metrics_describe(m, "agentcore_hook_calls_total", "counter", "Plugin hook calls by plugin, hook and outcome.");
  ac_metrics_describe(m, "agentcore_hook_duration_seconds", "histogram", "Plugin hook call duration.");
  ac_metrics_describe(m, "agentcore_http_calls_total", "counter", "Outbound HTTP calls by plugin and outcome.");
  ac_metrics_describe(m, "agentcore_http_rate_limit_waits_total", "counter", "Rate-limit waits and refusals by plugin.");
  ac_metrics_describe(m, "agentcore_events_queued", "gauge", "Event runs waiting to be dispatched.");
  ac_metrics_describe(m, "agentcore_events_running", "gauge", "Event runs being dispatched.");
  ac_metrics_describe(m, "agentcore_workers", "gauge", "Plugin worker threads (not counting abandoned ones).");
  ac_metrics_describe(m, "agentcore_workers_busy", "gauge", "Plugin workers running a call.");
  ac_metrics_describe(m, "agentcore_calls_queued", "gauge", "Plugin calls waiting for a worker.");
  ac_metrics_describe(m, "agentcore_calls_abandoned", "gauge", "Calls abandoned stuck in a C function whose threads still run.");
  ac_metrics_describe(m, "agentcore_calls_abandoned_total", "counter", "Calls abandoned stuck in a C function.");
  ac_metrics_describe(m, "agentcore_calls_expired_total", "counter", "Calls whose deadline passed while they waited for a worker.");
  ac_metrics_describe(m, "agentcore_calls_busy_total", "counter", "Calls refused by a bulkhead (kind busy), by plugin.");
  ac_metrics_describe(m, "agentcore_lua_states_idle", "gauge", "Idle Lua states kept for reuse.");
  ac_metrics_describe(m, "agentcore_http_in_flight", "gauge", "Outbound HTTP transfers on the event loop (their calls hold no thread).");
  ac_metrics_describe(m, "agentcore_lua_states_idle_bytes", "gauge", "Memory held by idle Lua states.");
  ac_metrics_describe(m, "agentcore_tenancy_namespaces", "gauge", "Namespaces in the tenancy snapshot.");
  ac_metrics_describe(m, "agentcore_tenancy_reloads_total", "counter", "Full reloads of the tenancy snapshot by result.");
  ac_metrics_describe(m, "agentcore_tenancy_reads_total", "counter", "Single tenancy entries read from the database, by reason.");
}

/* The address guard, rate limiter and HTTP clients behind context.http. */
static int setup_outbound(ac_app *app, ac_err *err) {
  int rc = ac_addr_guard_new(app->cfg.http_allow_cidrs, &app->guard, err);
  if (rc) {
    ac_err_prefix(err, "AGENTCORE_HTTP_ALLOW_CIDRS");
    return rc;
  }
  rc = ac_rate_limiter_new(app->cfg.http_rate, app->cfg.http_burst, 0, &app->limiter, err);
  if (rc)
    return rc;
  app->http_counters = ac_counters_new(AC_HTTP_COUNT_SLOTS);
  ac_http_client_config hc = {app->guard, app->limiter, app->http_counters, NULL};
  return ac_http_pool_new(&hc, 64, &app->http, err);
}

static int load_result_schema(ac_app *app, ac_err *err) {
  const char *dir = getenv("AGENTCORE_SCHEMAS_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/plugin-result.json", dir && *dir ? dir : AC_SOURCE_DIR "/schemas");
  json_error_t jerr;
  json_t *doc = json_load_file(path, 0, &jerr);
  if (!doc)
    return ac_err_set(err, AC_ERR_IO, "cannot read %s: %s", path, jerr.text);
  /* the engine sets pluginId after the check, from an id already checked
   * at load against the same pattern: results are checked without it */
  json_t *required = json_object_get(doc, "required");
  size_t i;
  json_t *v;
  json_array_foreach(required, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), "pluginId") == 0) {
      json_array_remove(required, i);
      break;
    }
  }
  json_t *props = json_object_get(doc, "properties");
  if (json_object_get(props, "pluginId"))
    json_object_set_new(props, "pluginId", json_true());
  int rc = ac_schema_compile(doc, &app->result_schema, err);
  json_decref(doc);
  return rc;
}

/* The worker pool and call admission (dispatch/call.h). */
static int start_calls(ac_app *app, ac_err *err) {
  const ac_config *cfg = &app->cfg;
  ac_workers_config wcfg = {cfg->workers, cfg->max_stuck_calls, AC_CALL_GRACE_MS};
  int rc = ac_workers_start(&wcfg, &app->workers, err);
  if (rc == AC_OK)
    rc = ac_http_loop_start(cfg->http_max_per_host, &app->loop, err);
  if (rc != AC_OK)
    return rc;
  /* one plugin may hold half the workers; one namespace all but one, so
   * its own spinning plugins cannot starve its other plugins, and other
   * tenants always find a worker */
  int plugin_share = cfg->worker_share > 0 ? cfg->worker_share : (cfg->workers + 1) / 2;
  int namespace_share = cfg->workers > 1 ? cfg->workers - 1 : 1;
  ac_calls_config ccfg = {app->workers,
                          app->http,
                          app->loop,
                          app->metrics,
                          cfg->inline_slice_us,
                          cfg->max_calls_per_plugin,
                          cfg->max_calls_per_namespace,
                          plugin_share,
                          namespace_share};
  return ac_calls_new(&ccfg, &app->calls, err);
}

int ac_app_new(const ac_config *cfg, ac_logger *log, ac_app **out, ac_err *err) {
  *out = NULL;
  if (!cfg->database_url[0])
    return ac_err_set(err, AC_ERR_INVALID, "AGENTCORE_DATABASE_URL is not set");
  ac_app *app = calloc(1, sizeof *app);
  if (!app)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  app->cfg = *cfg;
  app->log = log;
  pthread_mutex_init(&app->lent_lock, NULL);
  pthread_mutex_init(&app->catalog_lock, NULL);
  app->metrics = ac_metrics_new();
  describe_metrics(app->metrics);

  /* settings first (no I/O), so a bad token setting is named before any
   * connection is tried */
  int rc = ac_jwt_verifier_from_config(cfg, &app->jwt, err);
  if (rc == AC_OK) {
    app->pool = ac_db_pool_new(cfg->database_url,
                               cfg->workers * 2 + 8 < POOL_MAX ? cfg->workers * 2 + 8 : POOL_MAX,
                               5000, err);
    if (!app->pool) {
      rc = err ? err->code : AC_ERR_DB;
      ac_err_prefix(err, "AGENTCORE_DATABASE_URL");
    }
  }
  if (rc == AC_OK) {
    PGconn *db = ac_app_db(app, NULL);
    if (!db) {
      rc = ac_err_set(err, AC_ERR_DB, "cannot connect to the database (AGENTCORE_DATABASE_URL)");
    } else {
      const char *dir = getenv("AGENTCORE_MIGRATIONS_DIR");
      rc = ac_db_migrate(db, dir && *dir ? dir : AC_SOURCE_DIR "/migrations", log, NULL, err);
      ac_app_db_done(app, db);
    }
  }
  if (rc == AC_OK)
    rc = ac_rate_limiter_new(cfg->event_rate, cfg->event_burst, 0, &app->event_quota, err);
  if (rc == AC_OK) {
    /* two writers: one gathers the next batch while the other commits */
    ac_intake_config icfg = {app->pool, 2, cfg->event_batch_max, cfg->event_batch_wait_us};
    rc = ac_intake_start(&icfg, &app->intake, err);
  }
  if (rc == AC_OK)
    rc = setup_outbound(app, err);
  if (rc == AC_OK)
    rc = load_result_schema(app, err);
  if (rc == AC_OK) {
    ac_registry_config rcfg = {cfg->builtin_plugin_dir, cfg->plugin_dirs,
                               {cfg->hook_timeout_ms, (size_t)cfg->lua_memory_mb << 20, log},
                               4096, (size_t)cfg->state_pool_mb << 20};
    rc = ac_registry_new(&rcfg, &app->registry, err);
  }
  if (rc) {
    ac_app_free(app);
    return rc;
  }
  ac_registry_reload(app->registry);
  app->tenancy = ac_tenancy_new(app->pool, log);
  if (!app->tenancy) {
    ac_app_free(app);
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  }
  app->kv = ac_kv_pg_new(app->pool);
  if (start_calls(app, err) != AC_OK) {
    ac_app_free(app);
    return err ? err->code : AC_ERR_NOMEM;
  }
  app->env = (ac_hook_env){app->calls,  app->registry, app->http,           app->kv,
                           app->metrics, log,          ac_init_tracker_new(), cfg->hook_timeout_ms};
  ac_dispatcher_config dcfg = {cfg->database_url, cfg->workers, cfg->lease_s, &app->env,
                               app->tenancy, "agentcore", 7};
  if (ac_dispatcher_start(&dcfg, &app->dispatcher, err) != AC_OK ||
      ac_listener_start(cfg->database_url, app->tenancy, app->dispatcher, log, &app->listener,
                        err) != AC_OK ||
      ac_watcher_start(app->registry, cfg->builtin_plugin_dir, cfg->plugin_dirs, log, &app->watcher,
                       err) != AC_OK) {
    ac_app_free(app);
    return err ? err->code : AC_ERR_NOMEM;
  }
  /* the listener loads the snapshot once it listens (so nothing announced
   * after the read is missed); until then lookups read the database */
  if (!ac_tenancy_wait_loaded(app->tenancy, TENANCY_LOAD_WAIT_MS))
    ac_logf(log, AC_LOG_WARN, "the tenancy snapshot is not loaded yet; serving from the database");
  *out = app;
  return AC_OK;
}

/* A service that calls stuck in C still use, kept reachable until exit. */
static ac_app *volatile left_to_exit;

int ac_app_free(ac_app *app) {
  if (!app)
    return 0;
  /* events still being stored are answered first: their answers wake the
   * dispatcher */
  ac_intake_stop(app->intake);
  ac_watcher_stop(app->watcher);
  ac_listener_stop(app->listener);
  ac_dispatcher_stop(app->dispatcher);
  /* calls still running end here (workers are joined); threads stuck in C
   * keep their plugin version, its registry and an HTTP client: those are
   * then left to the exiting process */
  /* transfers in flight end as cancelled; their calls finish on the
   * workers, which stop next */
  ac_http_loop_stop(app->loop);
  ac_workers_stats ws = {0};
  if (app->workers)
    ac_workers_get_stats(app->workers, &ws);
  ac_workers_stop(app->workers);
  if (ws.abandoned > 0) {
    /* a thread stuck in C may still end its call: its cleanup reaches the
     * registry, the HTTP clients and their limiter, guard and counters,
     * the key-value store, the init tracker and the metrics. All of it is
     * left to the exiting process, reachable from here */
    left_to_exit = app;
    return 1;
  }
  ac_calls_free(app->calls);
  ac_tenancy_free(app->tenancy);
  ac_kv_free(app->kv);
  ac_init_tracker_free(app->env.inits);
  ac_http_pool_free(app->http);
  ac_rate_limiter_free(app->limiter);
  ac_rate_limiter_free(app->event_quota);
  ac_counters_free(app->http_counters);
  ac_addr_guard_free(app->guard);
  ac_schema_free(app->result_schema);
  ac_registry_free(app->registry);
  ac_jwt_verifier_free(app->jwt);
  ac_metrics_free(app->metrics);
  ac_db_pool_free(app->pool);
  pthread_mutex_destroy(&app->lent_lock);
  pthread_mutex_destroy(&app->catalog_lock);
  free(app->catalog_text);
  free(app);
  return 0;
}

const ac_config *ac_app_config(const ac_app *app) { return &app->cfg; }
ac_logger *ac_app_log(ac_app *app) { return app->log; }
const ac_jwt_verifier *ac_app_jwt(ac_app *app) { return app->jwt; }
ac_registry *ac_app_registry(ac_app *app) { return app->registry; }
ac_metrics *ac_app_metrics(ac_app *app) { return app->metrics; }

/* A method label from the known set: anything a client makes up counts as
 * "other", so clients cannot mint series. */
static const char *method_label(const char *method) {
  static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(method, known[i]) == 0)
      return known[i];
  return "other";
}

void ac_app_count_request(ac_app *app, const char *method, const char *route, int status) {
  char labels[512] = "", code[4] = "000"; /* 100..599, without a format */
  for (int i = 2, v = status % 1000; i >= 0; i--, v /= 10)
    code[i] = (char)('0' + v % 10);
  ac_metrics_label(labels, sizeof labels, "method", method_label(method));
  ac_metrics_label(labels, sizeof labels, "route", route);
  ac_metrics_label(labels, sizeof labels, "status", code);
  ac_metrics_add(app->metrics, "agentcore_api_requests_total", labels, 1);
}

void ac_app_observe_request(ac_app *app, double seconds) {
  ac_metrics_observe(app->metrics, "agentcore_api_request_duration_seconds", "", seconds);
}

void ac_app_config_changed(ac_app *app, const char *ns) {
  ac_err err = {0};
  int rc = ac_tenancy_refresh_namespace(app->tenancy, NULL, ns, &err);
  if (rc != AC_OK && rc != AC_ERR_NOTFOUND)
    ac_logf(app->log, AC_LOG_WARN, "re-reading namespace %s after a write failed (%s)", ns, err.msg);
}

ac_tenancy *ac_app_tenancy(ac_app *app) { return app->tenancy; }
const ac_hook_env *ac_app_hook_env(ac_app *app) { return &app->env; }
const ac_schema *ac_app_result_schema(ac_app *app) { return app->result_schema; }

static const char *const http_outcomes[AC_HTTP_COUNT_SLOTS] = {"ok", "rate_limited", "denied",
                                                              "timeout", "transport"};

static void export_http(void *ud, const char *plugin, const uint64_t *values, int slots) {
  ac_metrics *m = ud;
  for (int i = 0; i < slots && i < AC_HTTP_COUNT_SLOTS; i++) {
    char labels[256] = "";
    ac_metrics_label(labels, sizeof labels, "plugin", plugin);
    ac_metrics_label(labels, sizeof labels, "outcome", http_outcomes[i]);
    ac_metrics_set(m, "agentcore_http_calls_total", labels, (double)values[i]);
  }
}

static void export_waits(void *ud, const char *plugin, const uint64_t *values, int slots) {
  ac_metrics *m = ud;
  static const char *const kinds[AC_RATE_COUNT_SLOTS] = {"waited", "refused"};
  for (int i = 0; i < slots && i < AC_RATE_COUNT_SLOTS; i++) {
    char labels[256] = "";
    ac_metrics_label(labels, sizeof labels, "plugin", plugin);
    ac_metrics_label(labels, sizeof labels, "result", kinds[i]);
    ac_metrics_set(m, "agentcore_http_rate_limit_waits_total", labels, (double)values[i]);
  }
}

char *ac_app_catalog_text(ac_app *app) {
  uint64_t gen = ac_registry_generation(app->registry);
  pthread_mutex_lock(&app->catalog_lock);
  if (!app->catalog_text || app->catalog_generation != gen) {
    json_t *doc = json_pack("{s:o}", "plugins", ac_registry_catalog(app->registry));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text) {
      free(app->catalog_text);
      app->catalog_text = text;
      app->catalog_generation = gen;
    }
  }
  char *copy = app->catalog_text ? strdup(app->catalog_text) : NULL;
  pthread_mutex_unlock(&app->catalog_lock);
  return copy;
}

void ac_app_events_stored(ac_app *app) { ac_dispatcher_wake(app->dispatcher); }

ac_intake *ac_app_intake(ac_app *app) { return app->intake; }

int ac_app_event_admitted(ac_app *app, const char *ns) {
  int64_t now = ac_clock_mono_ms(), wait = 0;
  return ac_rate_reserve(app->event_quota, "events", ns, now, now, &wait) == AC_OK;
}

void ac_app_refresh_metrics(ac_app *app) {
  PGconn *db = ac_app_db(app, NULL);
  long long queued = 0, running = 0;
  if (db && ac_events_counts(db, &queued, &running, NULL) == AC_OK) {
    ac_metrics_set(app->metrics, "agentcore_events_queued", "", (double)queued);
    ac_metrics_set(app->metrics, "agentcore_events_running", "", (double)running);
  }
  ac_app_db_done(app, db);
  ac_workers_stats ws;
  ac_workers_get_stats(app->workers, &ws);
  ac_metrics_set(app->metrics, "agentcore_workers", "", ws.threads);
  ac_metrics_set(app->metrics, "agentcore_workers_busy", "", ws.busy);
  ac_metrics_set(app->metrics, "agentcore_calls_queued", "", ws.queued);
  ac_metrics_set(app->metrics, "agentcore_calls_abandoned", "", ws.abandoned);
  ac_metrics_set(app->metrics, "agentcore_calls_abandoned_total", "", (double)ws.abandoned_total);
  ac_metrics_set(app->metrics, "agentcore_calls_expired_total", "", (double)ws.expired_total);
  int idle = 0;
  size_t idle_bytes = 0;
  ac_registry_idle_stats(app->registry, &idle, &idle_bytes);
  ac_metrics_set(app->metrics, "agentcore_lua_states_idle", "", idle);
  ac_metrics_set(app->metrics, "agentcore_http_in_flight", "", ac_http_loop_in_flight(app->loop));
  ac_metrics_set(app->metrics, "agentcore_lua_states_idle_bytes", "", (double)idle_bytes);
  ac_tenancy_stats ts;
  ac_tenancy_get_stats(app->tenancy, &ts);
  ac_metrics_set(app->metrics, "agentcore_tenancy_namespaces", "", (double)ts.namespaces);
  ac_metrics_set(app->metrics, "agentcore_tenancy_reloads_total", "result=\"ok\"", (double)ts.reloads);
  ac_metrics_set(app->metrics, "agentcore_tenancy_reloads_total", "result=\"error\"",
                 (double)ts.reload_failures);
  ac_metrics_set(app->metrics, "agentcore_tenancy_reads_total", "reason=\"change\"",
                 (double)ts.refreshes);
  ac_metrics_set(app->metrics, "agentcore_tenancy_reads_total", "reason=\"miss\"", (double)ts.misses);
  ac_counters_foreach(app->http_counters, export_http, app->metrics);
  ac_counters_foreach(ac_rate_limiter_counters(app->limiter), export_waits, app->metrics);
}
