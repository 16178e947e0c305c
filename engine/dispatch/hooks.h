/* hooks.h — what every host-flow call of a plugin shares: the services a
 * call context gets, the init-once rule, config checks against
 * the plugin's current schema, and the log line and metrics of an
 * outcome. Used by the query fan-out and the event dispatcher. */
#ifndef AC_DISPATCH_HOOKS_H
#define AC_DISPATCH_HOOKS_H

#include "core/kv.h"
#include "core/log.h"
#include "core/metrics.h"
#include "outbound/http_pool.h"
#include "plugin/registry.h"

typedef struct ac_init_tracker ac_init_tracker;
typedef struct ac_calls ac_calls;

typedef struct ac_hook_env {
  ac_calls *calls;         /* admission and the worker pool (call.h) */
  ac_registry *registry;
  ac_http_pool *http;
  ac_kv *kv;
  ac_metrics *metrics;
  ac_logger *log;
  ac_init_tracker *inits;
  int timeout_ms;
} ac_hook_env;

ac_init_tracker *ac_init_tracker_new(void);
void ac_init_tracker_free(ac_init_tracker *t);

/* One plugin of a namespace, ready to call: the plugin's current version,
 * the call context, and whether init must run first. */
typedef struct ac_hook_target {
  ac_plugin_handle *h; /* referenced; released by ac_hook_target_clear */
  ac_call_context ctx; /* its config and secrets are the prepared entry's */
  json_t *prepared;    /* referenced: the (namespace, plugin, config version,
                          code) entry: config with defaults applied, its
                          secret strings, its key */
  const char *init_key; /* the prepared entry's key, for the init-once rule */
  int run_init;
} ac_hook_target;

/* Prepares plugin entry {"pluginId","config","version"} of namespace ns
 * for a call of a hook needing capability cap. Returns 1 when ready; 0 when
 * the plugin lacks the capability (skip silently); -1 when it must be
 * skipped with an error (kind and message in out: plugin not loaded,
 * stored config no longer valid, init failed earlier; kind busy while
 * another call runs the plugin's init: no hook runs before it succeeded). */
int ac_hook_target_prepare(const ac_hook_env *env, const char *ns, const char *department,
                           const json_t *entry, unsigned cap, ac_hook_target *t,
                           ac_outcome *out);
void ac_hook_target_clear(ac_hook_target *t);

/* Records what a call produced: init's outcome for the init-once rule,
 * the hook-calls and duration metrics, and a JSON log line for failures
 * (plugin, namespace, hook, kind, message, durationMs). */
void ac_hook_record(const ac_hook_env *env, ac_hook_target *t, const char *hook,
                    const ac_outcome *init_out, const ac_outcome *out);

#endif
