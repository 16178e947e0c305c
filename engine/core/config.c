/* config.c — environment parsing with one clear error per bad variable. */
#include "core/config.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void ac_config_defaults(ac_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->hook_timeout_ms = 5000;
  cfg->lua_memory_mb = 64;
  cfg->http_rate = 10.0;
  cfg->http_burst = 20;
  snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1:8080");
  snprintf(cfg->builtin_plugin_dir, sizeof cfg->builtin_plugin_dir, "%s/plugins",
           AC_SOURCE_DIR);
  cfg->workers = 4;
  cfg->log_level = AC_LOG_INFO;
  cfg->lease_s = 30;
  snprintf(cfg->jwt_alg, sizeof cfg->jwt_alg, "HS256");
  cfg->jwt_leeway_s = 60;
  cfg->max_stuck_calls = 8;
  cfg->request_threads = 4;
  cfg->max_conns_per_client = 0;
  cfg->max_connections = 0;
  cfg->idle_timeout_s = 10;
  cfg->inline_slice_us = 1000;
  cfg->event_batch_max = 256;
  cfg->event_rate = 1000;
  cfg->event_burst = 2000;
  cfg->event_batch_wait_us = 1000;
  cfg->max_calls_per_plugin = 1024;
  cfg->max_calls_per_namespace = 512;
  cfg->http_max_per_host = 512;
  cfg->worker_share = 0;
  cfg->state_pool_mb = 512;
}

static int env_int(const char *name, int min, int max, int *out, ac_err *err) {
  const char *v = getenv(name);
  if (!v || !*v)
    return AC_OK;
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || *end || n < min || n > max)
    return ac_err_set(err, AC_ERR_INVALID, "%s must be an integer from %d to %d, got \"%s\"",
                      name, min, max, v);
  *out = (int)n;
  return AC_OK;
}

static int env_str(const char *name, char *out, size_t size, ac_err *err) {
  const char *v = getenv(name);
  if (!v)
    return AC_OK;
  if (strlen(v) >= size)
    return ac_err_set(err, AC_ERR_INVALID, "%s is longer than %zu bytes", name, size - 1);
  memcpy(out, v, strlen(v) + 1);
  return AC_OK;
}

int ac_config_from_env(ac_config *cfg, ac_err *err) {
  ac_config_defaults(cfg);
  int rc;
  if ((rc = env_int("AGENTCORE_HOOK_TIMEOUT_MS", 10, 600000, &cfg->hook_timeout_ms, err)) ||
      (rc = env_int("AGENTCORE_LUA_MEMORY_MB", 1, 4096, &cfg->lua_memory_mb, err)) ||
      (rc = env_int("AGENTCORE_HTTP_BURST", 1, 1000000, &cfg->http_burst, err)) ||
      (rc = env_int("AGENTCORE_WORKERS", 1, 256, &cfg->workers, err)) ||
      (rc = env_int("AGENTCORE_LEASE_S", 1, 86400, &cfg->lease_s, err)) ||
      (rc = env_int("AGENTCORE_JWT_LEEWAY_S", 0, 86400, &cfg->jwt_leeway_s, err)) ||
      (rc = env_int("AGENTCORE_MAX_STUCK_CALLS", 1, 1024, &cfg->max_stuck_calls, err)) ||
      (rc = env_int("AGENTCORE_REQUEST_THREADS", 1, 256, &cfg->request_threads, err)) ||
      (rc = env_int("AGENTCORE_MAX_CONNS_PER_CLIENT", 0, 1000000, &cfg->max_conns_per_client, err)) ||
      (rc = env_int("AGENTCORE_MAX_CONNECTIONS", 0, 1000000, &cfg->max_connections, err)) ||
      (rc = env_int("AGENTCORE_IDLE_TIMEOUT_S", 1, 3600, &cfg->idle_timeout_s, err)) ||
      (rc = env_int("AGENTCORE_INLINE_SLICE_US", 0, 100000, &cfg->inline_slice_us, err)) ||
      (rc = env_int("AGENTCORE_EVENT_BATCH_MAX", 1, 10000, &cfg->event_batch_max, err)) ||
      (rc = env_int("AGENTCORE_EVENT_RATE", 1, 1000000, &cfg->event_rate, err)) ||
      (rc = env_int("AGENTCORE_EVENT_BURST", 1, 1000000, &cfg->event_burst, err)) ||
      (rc = env_int("AGENTCORE_EVENT_BATCH_WAIT_US", 0, 100000, &cfg->event_batch_wait_us, err)) ||
      (rc = env_int("AGENTCORE_MAX_CALLS_PER_PLUGIN", 1, 1000000, &cfg->max_calls_per_plugin, err)) ||
      (rc = env_int("AGENTCORE_MAX_CALLS_PER_NAMESPACE", 1, 1000000, &cfg->max_calls_per_namespace, err)) ||
      (rc = env_int("AGENTCORE_HTTP_MAX_PER_HOST", 1, 1000000, &cfg->http_max_per_host, err)) ||
      (rc = env_int("AGENTCORE_WORKER_SHARE", 0, 256, &cfg->worker_share, err)) ||
      (rc = env_int("AGENTCORE_STATE_POOL_MB", 0, 1048576, &cfg->state_pool_mb, err)) ||
      (rc = env_str("AGENTCORE_HTTP_ALLOW_CIDRS", cfg->http_allow_cidrs, sizeof cfg->http_allow_cidrs, err)) ||
      (rc = env_str("AGENTCORE_DATABASE_URL", cfg->database_url, sizeof cfg->database_url, err)) ||
      (rc = env_str("AGENTCORE_LISTEN", cfg->listen, sizeof cfg->listen, err)) ||
      (rc = env_str("AGENTCORE_PLUGIN_DIRS", cfg->plugin_dirs, sizeof cfg->plugin_dirs, err)) ||
      (rc = env_str("AGENTCORE_BUILTIN_PLUGIN_DIR", cfg->builtin_plugin_dir, sizeof cfg->builtin_plugin_dir, err)) ||
      (rc = env_str("AGENTCORE_JWT_SECRET", cfg->jwt_secret, sizeof cfg->jwt_secret, err)) ||
      (rc = env_str("AGENTCORE_JWT_PUBLIC_KEY_FILE", cfg->jwt_public_key_file, sizeof cfg->jwt_public_key_file, err)) ||
      (rc = env_str("AGENTCORE_JWT_ISSUER", cfg->jwt_issuer, sizeof cfg->jwt_issuer, err)) ||
      (rc = env_str("AGENTCORE_JWT_AUDIENCE", cfg->jwt_audience, sizeof cfg->jwt_audience, err)) ||
      (rc = env_str("AGENTCORE_JWT_ALG", cfg->jwt_alg, sizeof cfg->jwt_alg, err)))
    return rc;

  const char *rate = getenv("AGENTCORE_HTTP_RATE");
  if (rate && *rate) {
    char *end;
    errno = 0;
    double r = strtod(rate, &end);
    if (errno || *end || !(r > 0 && r <= 1e6))
      return ac_err_set(err, AC_ERR_INVALID,
                        "AGENTCORE_HTTP_RATE must be a number above 0 and at most 1000000, got \"%s\"", rate);
    cfg->http_rate = r;
  }
  const char *level = getenv("AGENTCORE_LOG_LEVEL");
  if (level && *level) {
    int l = ac_log_level_parse(level);
    if (l < 0)
      return ac_err_set(err, AC_ERR_INVALID,
                        "AGENTCORE_LOG_LEVEL must be debug, info, warn or error, got \"%s\"", level);
    cfg->log_level = l;
  }
  if (strcmp(cfg->jwt_alg, "HS256") && strcmp(cfg->jwt_alg, "RS256") && strcmp(cfg->jwt_alg, "ES256"))
    return ac_err_set(err, AC_ERR_INVALID, "AGENTCORE_JWT_ALG must be HS256, RS256 or ES256, got \"%s\"",
                      cfg->jwt_alg);
  return AC_OK;
}
