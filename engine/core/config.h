/* config.h — engine settings read from AGENTCORE_* environment variables. */
#ifndef AC_CORE_CONFIG_H
#define AC_CORE_CONFIG_H

#include "core/err.h"

#include <stdint.h>

typedef struct ac_config {
  int hook_timeout_ms;        /* AGENTCORE_HOOK_TIMEOUT_MS (5000) */
  int lua_memory_mb;          /* AGENTCORE_LUA_MEMORY_MB (64) */
  double http_rate;           /* AGENTCORE_HTTP_RATE tokens/s (10) */
  int http_burst;             /* AGENTCORE_HTTP_BURST (20) */
  char http_allow_cidrs[1024];/* AGENTCORE_HTTP_ALLOW_CIDRS ("") */
  char database_url[1024];    /* AGENTCORE_DATABASE_URL ("") */
  char listen[256];           /* AGENTCORE_LISTEN (127.0.0.1:8080) */
  char plugin_dirs[4096];     /* AGENTCORE_PLUGIN_DIRS, colon-separated ("") */
  char builtin_plugin_dir[1024]; /* AGENTCORE_BUILTIN_PLUGIN_DIR (source plugins/) */
  int workers;                /* AGENTCORE_WORKERS (4) */
  int log_level;              /* AGENTCORE_LOG_LEVEL (info) */
  int lease_s;                /* AGENTCORE_LEASE_S (30) */
  char jwt_alg[16];           /* AGENTCORE_JWT_ALG (HS256) */
  char jwt_secret[1024];      /* AGENTCORE_JWT_SECRET */
  char jwt_public_key_file[1024]; /* AGENTCORE_JWT_PUBLIC_KEY_FILE */
  int jwt_leeway_s;           /* AGENTCORE_JWT_LEEWAY_S (60) */
  char jwt_issuer[512];       /* AGENTCORE_JWT_ISSUER ("") */
  char jwt_audience[512];     /* AGENTCORE_JWT_AUDIENCE ("") */
  int max_stuck_calls;        /* AGENTCORE_MAX_STUCK_CALLS (8) */
  int request_threads;        /* AGENTCORE_REQUEST_THREADS (4) */
  int max_conns_per_client;   /* AGENTCORE_MAX_CONNS_PER_CLIENT (0: 1024, at most a quarter
                                 of all) per IP address */
  int max_connections;        /* AGENTCORE_MAX_CONNECTIONS (0: from the file limit) */
  int idle_timeout_s;         /* AGENTCORE_IDLE_TIMEOUT_S (10) without a byte */
  int inline_slice_us;        /* AGENTCORE_INLINE_SLICE_US (1000; 0: every call on a worker) */
  int event_batch_max;        /* AGENTCORE_EVENT_BATCH_MAX (256): events per intake transaction */
  int event_batch_wait_us;    /* AGENTCORE_EVENT_BATCH_WAIT_US (1000): a batch's window */
  int event_rate;             /* AGENTCORE_EVENT_RATE (1000): events/s one namespace may post */
  int event_burst;            /* AGENTCORE_EVENT_BURST (2000): and at once */
  int max_calls_per_plugin;   /* AGENTCORE_MAX_CALLS_PER_PLUGIN (1024) in flight */
  int max_calls_per_namespace;/* AGENTCORE_MAX_CALLS_PER_NAMESPACE (512) in flight */
  int http_max_per_host;      /* AGENTCORE_HTTP_MAX_PER_HOST (512) transfers in flight */
  int worker_share;           /* AGENTCORE_WORKER_SHARE (0: half the workers, at least 1) */
  int state_pool_mb;          /* AGENTCORE_STATE_POOL_MB (512) for idle Lua states */
} ac_config;

/* Fills cfg with defaults, then overrides from the environment. A bad value
 * fails with AC_ERR_INVALID and a one-line message naming the variable.
 * Checks that need context (the JWT secret's length, which only `serve`
 * needs) are left to the commands that use them. */
int ac_config_from_env(ac_config *cfg, ac_err *err);

/* Defaults only, no environment. */
void ac_config_defaults(ac_config *cfg);

#endif
