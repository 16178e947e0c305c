/* cmd_plugin.c — `agentcore plugin check` and `agentcore plugin run`. */
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/crypto.h"
#include "dispatch/call.h"
#include "lua/guard.h"
#include "lua/kv_memory.h"
#include "outbound/addr_guard.h"
#include "outbound/rate_limit.h"
#include "plugin/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char check_usage[] =
    "usage: agentcore plugin check FILE...\n"
    "Loads each plugin file in the sandbox and checks its contract and config\n"
    "schema. Prints one line per file; exit 0 if all pass, 1 otherwise.\n";

static const char run_usage[] =
    "usage: agentcore plugin run FILE --hook NAME [--event JSON|@file]\n"
    "                            [--config JSON|@file] [--namespace ID]\n"
    "                            [--department ID]\n"
    "Runs one hook (init, onApprovalCreated, onDocumentReady, onAgentQuery)\n"
    "through the server's sandbox and limits, with an in-memory context.db.\n"
    "Prints {\"ok\":true,\"result\":...,\"durationMs\":N} or\n"
    "{\"ok\":false,\"error\":{\"kind\":\"error|timeout|memory|contract|retry\",\"message\":...}}.\n"
    "context.http is real: AGENTCORE_HTTP_ALLOW_CIDRS, AGENTCORE_HTTP_RATE and\n"
    "AGENTCORE_HTTP_BURST apply as in the server.\n"
    "Exit 0 if ok, 1 if the hook failed, 2 on usage errors.\n";

static ac_plugin_limits limits_from(const ac_config *cfg, ac_logger *log) {
  ac_plugin_limits l = {cfg->hook_timeout_ms, (size_t)cfg->lua_memory_mb << 20, log};
  return l;
}

static int cmd_check(int argc, char **argv, const ac_config *cfg) {
  if (argc < 2) {
    fputs(check_usage, stderr);
    return 2;
  }
  ac_plugin_limits limits = limits_from(cfg, NULL);
  int failed = 0;
  json_t *seen = json_object(); /* id -> file, to report duplicates */
  for (int i = 1; i < argc; i++) {
    ac_plugin *p = NULL;
    ac_outcome out;
    ac_plugin_load(argv[i], &limits, &p, &out);
    if (!p) {
      printf("%s: error (%s): %s\n", argv[i], ac_outcome_kind_name(out.kind), out.message);
      failed = 1;
      continue;
    }
    const ac_plugin_info *info = ac_plugin_get_info(p);
    const char *other = json_string_value(json_object_get(seen, info->id));
    if (other) {
      printf("%s: error (contract): id \"%s\" is already used by %s\n", argv[i], info->id, other);
      failed = 1;
    } else {
      json_object_set_new(seen, info->id, json_string(argv[i]));
      char *caps = json_dumps(info->capabilities, JSON_COMPACT);
      printf("%s: ok: %s %s %s\n", argv[i], info->id, info->version ? info->version : "-",
             caps ? caps : "");
      free(caps);
    }
    ac_plugin_free(p);
  }
  json_decref(seen);
  return failed;
}

/* ---- plugin run --------------------------------------------------------- */

/* The server's call path for one run: a registry holding the plugin
 * (outside any catalog), one worker, the HTTP event loop and a client
 * pool with the guard and limiter as the server builds them. A hook runs
 * exactly as the server runs it: on a worker, with context.http parked on
 * the loop while it waits, under the same deadline and limits. */
typedef struct run_engine {
  ac_addr_guard *guard;
  ac_rate_limiter *limiter;
  ac_http_pool *http;
  ac_http_loop *loop;
  ac_workers *workers;
  ac_calls *calls;
  ac_registry *registry;
} run_engine;

/* As the server stops: transfers in flight end cancelled, then the calls
 * on the workers. */
static void run_engine_free(run_engine *e) {
  if (e->loop)
    ac_http_loop_stop(e->loop);
  if (e->workers)
    ac_workers_stop(e->workers);
  ac_calls_free(e->calls);
  ac_http_pool_free(e->http);
  ac_rate_limiter_free(e->limiter);
  ac_addr_guard_free(e->guard);
  ac_registry_free(e->registry);
}

static int run_engine_new(const ac_config *cfg, const ac_plugin_limits *limits, run_engine *e,
                          ac_err *err) {
  memset(e, 0, sizeof *e);
  ac_registry_config rcfg = {NULL, NULL, *limits, 1, 0};
  ac_workers_config wcfg = {1, cfg->max_stuck_calls, AC_CALL_GRACE_MS};
  int rc = ac_addr_guard_new(cfg->http_allow_cidrs, &e->guard, err);
  if (rc == AC_OK)
    rc = ac_rate_limiter_new(cfg->http_rate, cfg->http_burst, 0, &e->limiter, err);
  if (rc == AC_OK) {
    ac_http_client_config hc = {.guard = e->guard, .limiter = e->limiter};
    rc = ac_http_pool_new(&hc, 1, &e->http, err);
  }
  if (rc == AC_OK)
    rc = ac_http_loop_start(cfg->http_max_per_host, &e->loop, err);
  if (rc == AC_OK)
    rc = ac_workers_start(&wcfg, &e->workers, err);
  if (rc == AC_OK) {
    ac_calls_config ccfg = {e->workers, e->http, e->loop, NULL, 0, 1, 1, 1, 1};
    rc = ac_calls_new(&ccfg, &e->calls, err);
  }
  if (rc == AC_OK)
    rc = ac_registry_new(&rcfg, &e->registry, err);
  if (rc != AC_OK)
    run_engine_free(e);
  return rc;
}

static void print_failure(const ac_outcome *out, json_t *extra_errors) {
  json_t *err = json_pack("{s:s, s:s}", "kind", ac_outcome_kind_name(out->kind), "message",
                          out->message);
  if (out->kind == AC_OUTCOME_RETRY && out->retry_delay_s >= 0)
    json_object_set_new(err, "delaySeconds", json_integer(out->retry_delay_s));
  if (extra_errors)
    json_object_set(err, "errors", extra_errors);
  json_t *doc = json_pack("{s:b, s:o, s:I}", "ok", 0, "error", err, "durationMs",
                          (json_int_t)out->duration_ms);
  ac_cli_print_json(doc);
  json_decref(doc);
}

/* Shapes the hook's argument as the server builds it (docs/api.md). */
static json_t *build_event(const char *hook, json_t *given, const char *ns) {
  json_t *ev = json_is_object(given) ? json_deep_copy(given) : json_object();
  if (strcmp(hook, AC_HOOK_QUERY) == 0) {
    json_t *q = json_object_get(ev, "query");
    if (!json_object_get(ev, "text") && json_is_string(q))
      json_object_set(ev, "text", q);
    json_object_del(ev, "query");
    if (!json_object_get(ev, "text"))
      json_object_set_new(ev, "text", json_string(""));
    json_object_set_new(ev, "namespaceId", json_string(ns));
    return ev;
  }
  char ts[40], id[40];
  ac_clock_rfc3339(ac_clock_wall_ms(), ts, sizeof ts);
  ac_crypto_uuid_v4(id);
  if (!json_object_get(ev, "id"))
    json_object_set_new(ev, "id", json_string(id));
  json_object_set_new(ev, "type", json_string(strcmp(hook, AC_HOOK_APPROVAL) == 0
                                                  ? "approval.created"
                                                  : "document.ready"));
  json_object_set_new(ev, "namespaceId", json_string(ns));
  if (!json_object_get(ev, "occurredAt"))
    json_object_set_new(ev, "occurredAt", json_string(ts));
  if (!json_object_get(ev, "data"))
    json_object_set_new(ev, "data", json_object());
  return ev;
}

static int cmd_run(int argc, char **argv, const ac_config *cfg) {
  const char *file = NULL, *hook = NULL, *event_arg = NULL, *config_arg = NULL, *ns = "cli",
             *department = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(run_usage, stdout);
      return 0;
    }
    const char **slot = strcmp(a, "--hook") == 0        ? &hook
                        : strcmp(a, "--event") == 0     ? &event_arg
                        : strcmp(a, "--config") == 0    ? &config_arg
                        : strcmp(a, "--namespace") == 0 ? &ns
                        : strcmp(a, "--department") == 0 ? &department
                                                        : NULL;
    if (slot) {
      if (i + 1 >= argc)
        return ac_cli_usage_error(run_usage, "%s needs a value", a);
      *slot = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      return ac_cli_usage_error(run_usage, "unknown option %s", a);
    } else if (!file) {
      file = a;
    } else {
      return ac_cli_usage_error(run_usage, "only one FILE may be given");
    }
  }
  if (!file || !hook)
    return ac_cli_usage_error(run_usage, "FILE and --hook are required");
  if (!ac_plugin_hook_known(hook))
    return ac_cli_usage_error(run_usage, "unknown hook \"%s\"", hook);

  ac_err err = {0};
  json_t *event = NULL, *config = NULL;
  if (event_arg && ac_cli_read_json(event_arg, &event, &err) != AC_OK)
    return ac_cli_usage_error(run_usage, "--event: %s", err.msg);
  if (config_arg && ac_cli_read_json(config_arg, &config, &err) != AC_OK) {
    json_decref(event);
    return ac_cli_usage_error(run_usage, "--config: %s", err.msg);
  }
  if (event && !json_is_object(event)) {
    json_decref(event);
    json_decref(config);
    return ac_cli_usage_error(run_usage, "--event must be a JSON object");
  }

  ac_logger *log = ac_logger_new(cfg->log_level, NULL, NULL);
  ac_plugin_limits limits = limits_from(cfg, log);
  run_engine engine;
  if (run_engine_new(cfg, &limits, &engine, &err) != AC_OK) {
    fprintf(stderr, "agentcore: %s\n", err.msg);
    json_decref(event);
    json_decref(config);
    ac_logger_free(log);
    return 2;
  }
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load(file, &limits, &p, &out);
  ac_plugin_handle *h = p ? ac_registry_adopt(engine.registry, p) : NULL;
  if (!h) {
    if (p) {
      ac_plugin_free(p);
      memset(&out, 0, sizeof out);
      out.kind = AC_OUTCOME_ERROR;
      snprintf(out.message, sizeof out.message, "out of memory");
    }
    print_failure(&out, NULL);
    json_decref(event);
    json_decref(config);
    run_engine_free(&engine);
    ac_logger_free(log);
    return 1;
  }
  const ac_plugin_info *info = ac_plugin_handle_info(h);

  if (!config)
    config = json_object();
  ac_schema_apply_defaults(info->schema, config);
  json_t *errors = NULL;
  if (ac_schema_validate(info->schema, config, &errors) != AC_OK) {
    memset(&out, 0, sizeof out);
    out.kind = AC_OUTCOME_CONTRACT;
    snprintf(out.message, sizeof out.message, "config does not match the plugin's configSchema");
    print_failure(&out, errors);
    json_decref(errors);
    json_decref(event);
    json_decref(config);
    ac_plugin_handle_release(h);
    run_engine_free(&engine);
    ac_logger_free(log);
    return 1;
  }
  json_decref(errors);

  ac_kv *kv = ac_kv_memory_new();
  int is_init = strcmp(hook, AC_HOOK_INIT) == 0;
  json_t *arg = is_init ? NULL : build_event(hook, event, ns);
  /* the plugin's log lines are redacted as in the server */
  json_t *secrets = ac_schema_secret_values(info->schema, config);
  int run_init = info->has_init && !is_init;
  /* init, when it runs first, has a timeout of its own, as in the server */
  int64_t run_for = (int64_t)cfg->hook_timeout_ms * (run_init ? 2 : 1);
  ac_call_spec spec = {h,
                       is_init ? AC_HOOK_INIT : hook,
                       arg,
                       {.namespace_id = ns,
                        .department_id = department,
                        .plugin_id = info->id,
                        .config = config,
                        .secrets = secrets,
                        .kv = kv,
                        .allow_retry = strcmp(hook, AC_HOOK_APPROVAL) == 0 ||
                                       strcmp(hook, AC_HOOK_DOCUMENT) == 0},
                       run_init,
                       ac_clock_mono_ms() + run_for,
                       run_for,
                       0};
  json_t *result = NULL;
  ac_call_run_wait(engine.calls, &spec, &result, &out, NULL, NULL);
  if (ac_plugin_handle_stuck(h) > 0) {
    /* the call was abandoned in a C function: its thread still uses the
     * state, so nothing is freed */
    print_failure(&out, NULL);
    fflush(stdout);
    _exit(1);
  }
  int status;
  if (out.kind == AC_OUTCOME_OK) {
    json_t *doc = json_pack("{s:b, s:O?, s:I}", "ok", 1, "result", result, "durationMs",
                            (json_int_t)out.duration_ms);
    if (!result)
      json_object_set_new(doc, "result", json_null());
    ac_cli_print_json(doc);
    json_decref(doc);
    status = 0;
  } else {
    print_failure(&out, NULL);
    status = 1;
  }
  json_decref(result);
  json_decref(arg);
  ac_plugin_handle_release(h);
  run_engine_free(&engine);
  ac_kv_free(kv);
  json_decref(event);
  json_decref(secrets);
  json_decref(config);
  ac_logger_free(log);
  return status;
}

int ac_cmd_plugin(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(check_usage, argc < 2 ? stderr : stdout);
    fputs(run_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  ac_config cfg;
  ac_err err = {0};
  if (ac_config_from_env(&cfg, &err) != AC_OK) {
    fprintf(stderr, "agentcore: %s\n", err.msg);
    return 2;
  }
  ac_guard_set_max_stuck(cfg.max_stuck_calls);
  if (strcmp(argv[1], "check") == 0) {
    if (argc > 2 && strcmp(argv[2], "--help") == 0) {
      fputs(check_usage, stdout);
      return 0;
    }
    return cmd_check(argc - 1, argv + 1, &cfg);
  }
  if (strcmp(argv[1], "run") == 0)
    return cmd_run(argc - 1, argv + 1, &cfg);
  fprintf(stderr, "agentcore plugin: unknown subcommand \"%s\"\n", argv[1]);
  return 2;
}
