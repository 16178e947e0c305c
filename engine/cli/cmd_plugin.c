/* cmd_plugin.c — `agentcore plugin check` and `agentcore plugin run`. */
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/crypto.h"
#include "lua/guard.h"
#include "lua/kv_memory.h"
#include "outbound/http_client.h"
#include "plugin/plugin.h"

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

/* The outbound HTTP stack of one run: the guard and limiter as the server
 * builds them from the environment, and the client the job thread uses. */
typedef struct run_http {
  ac_addr_guard *guard;
  ac_rate_limiter *limiter;
  ac_http_client *client;
} run_http;

static void run_http_free(run_http *h) {
  ac_http_client_free(h->client);
  ac_rate_limiter_free(h->limiter);
  ac_addr_guard_free(h->guard);
}

/* Bad settings name their variable, as at server startup. */
static int run_http_new(const ac_config *cfg, run_http *h, ac_err *err) {
  memset(h, 0, sizeof *h);
  int rc = ac_addr_guard_new(cfg->http_allow_cidrs, &h->guard, err);
  if (rc != AC_OK) {
    ac_err_prefix(err, "AGENTCORE_HTTP_ALLOW_CIDRS");
    return rc;
  }
  rc = ac_rate_limiter_new(cfg->http_rate, cfg->http_burst, 0, &h->limiter, err);
  if (rc != AC_OK) {
    ac_err_prefix(err, "AGENTCORE_HTTP_RATE/AGENTCORE_HTTP_BURST");
    run_http_free(h);
    return rc;
  }
  /* created here, used only by the job thread: the client is not shared */
  ac_http_client_config hc = {.guard = h->guard, .limiter = h->limiter};
  rc = ac_http_client_new(&hc, &h->client, err);
  if (rc != AC_OK)
    run_http_free(h);
  return rc;
}

typedef struct run_job {
  ac_vm *vm;
  const char *hook;
  json_t *event;
  ac_call_context ctx;
  int run_init;
  json_t *result;
  ac_outcome out;
} run_job;

static void job_run(void *arg) {
  run_job *j = arg;
  if (j->run_init) {
    ac_plugin_call(j->vm, AC_HOOK_INIT, NULL, &j->ctx, NULL, &j->out);
    if (j->out.kind != AC_OUTCOME_OK)
      return;
  }
  ac_plugin_call(j->vm, j->hook, j->event, &j->ctx, &j->result, &j->out);
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
  const char *file = NULL, *hook = NULL, *event_arg = NULL, *config_arg = NULL, *ns = "cli";
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

  run_http http;
  if (run_http_new(cfg, &http, &err) != AC_OK) {
    fprintf(stderr, "agentcore: %s\n", err.msg);
    json_decref(event);
    json_decref(config);
    return 2;
  }

  ac_logger *log = ac_logger_new(cfg->log_level, NULL, NULL);
  ac_plugin_limits limits = limits_from(cfg, log);
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load(file, &limits, &p, &out);
  if (!p) {
    print_failure(&out, NULL);
    json_decref(event);
    json_decref(config);
    ac_logger_free(log);
    run_http_free(&http);
    return 1;
  }
  const ac_plugin_info *info = ac_plugin_get_info(p);

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
    ac_plugin_free(p);
    ac_logger_free(log);
    run_http_free(&http);
    return 1;
  }
  json_decref(errors);

  ac_kv *kv = ac_kv_memory_new();
  run_job job = {0};
  job.vm = ac_plugin_take_state(p);
  job.hook = hook;
  job.event = strcmp(hook, AC_HOOK_INIT) == 0 ? NULL : build_event(hook, event, ns);
  job.ctx.namespace_id = ns;
  job.ctx.plugin_id = info->id;
  job.ctx.config = config;
  /* the plugin's log lines are redacted as in the server */
  json_t *secrets = ac_schema_secret_values(info->schema, config);
  job.ctx.secrets = secrets;
  job.ctx.kv = kv;
  job.ctx.http = http.client;
  job.ctx.allow_retry = strcmp(hook, AC_HOOK_APPROVAL) == 0 || strcmp(hook, AC_HOOK_DOCUMENT) == 0;
  job.run_init = info->has_init && strcmp(hook, AC_HOOK_INIT) != 0;

  /* the caller is released at the timeout plus half a second even if the
   * plugin is stuck inside a C function */
  int64_t budget = (int64_t)cfg->hook_timeout_ms * (job.run_init ? 2 : 1) + 500;
  ac_guard_job gj = {job_run, NULL, &job};
  int64_t start = ac_clock_mono_ms();
  int rc = ac_guard_run(&gj, start + budget);
  if (rc == AC_ERR_TIMEOUT) {
    memset(&out, 0, sizeof out);
    out.kind = AC_OUTCOME_TIMEOUT;
    out.duration_ms = ac_clock_mono_ms() - start;
    snprintf(out.message, sizeof out.message,
             "timeout: call exceeded %d ms (stuck in a C function; abandoned)", cfg->hook_timeout_ms);
    print_failure(&out, NULL);
    fflush(stdout);
    _exit(1); /* the stuck thread still uses the state: do not free it */
  }
  int status;
  if (job.out.kind == AC_OUTCOME_OK) {
    json_t *doc = json_pack("{s:b, s:O?, s:I}", "ok", 1, "result", job.result, "durationMs",
                            (json_int_t)job.out.duration_ms);
    if (!job.result)
      json_object_set_new(doc, "result", json_null());
    ac_cli_print_json(doc);
    json_decref(doc);
    status = 0;
  } else {
    print_failure(&job.out, NULL);
    status = 1;
  }
  json_decref(job.result);
  json_decref(job.event);
  ac_vm_free(job.vm);
  ac_kv_free(kv);
  run_http_free(&http);
  json_decref(event);
  json_decref(secrets);
  json_decref(config);
  ac_plugin_free(p);
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
