/* hooks.c — call preparation and outcome bookkeeping for the host flow. */
#include "dispatch/hooks.h"
#include "core/utf8.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* init outcomes by "ns \x1f plugin \x1f config version \x1f code serial";
 * a key whose versions changed is simply a new key. */
struct ac_init_tracker {
  pthread_mutex_t lock;
  json_t *states; /* key -> "ok" | "running" | error message */
  /* the same key -> {"config","secrets"} or {"error"}: each (namespace,
   * plugin, config version, code) is prepared once */
  pthread_mutex_t prepared_lock;
  json_t *prepared;
};

#define PREPARED_MAX 50000 /* entries; past it the cache starts over */

ac_init_tracker *ac_init_tracker_new(void) {
  ac_init_tracker *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  pthread_mutex_init(&t->lock, NULL);
  pthread_mutex_init(&t->prepared_lock, NULL);
  t->states = json_object();
  t->prepared = json_object();
  return t;
}

void ac_init_tracker_free(ac_init_tracker *t) {
  if (!t)
    return;
  json_decref(t->states);
  json_decref(t->prepared);
  pthread_mutex_destroy(&t->lock);
  pthread_mutex_destroy(&t->prepared_lock);
  free(t);
}

static void fail(ac_outcome *out, ac_outcome_kind kind, const char *fmt, const char *a) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  out->retry_delay_s = -1;
  snprintf(out->message, sizeof out->message, fmt, a);
  ac_utf8_repair(out->message, strlen(out->message)); /* the cut may split a character */
}

/* Defaults applied, validated against the version's schema, secrets
 * collected: {"config","secrets"}, or {"error"} when the stored config no
 * longer fits a new version's schema. */
static json_t *prepare_config(const ac_plugin_info *info, const json_t *stored) {
  json_t *config = json_deep_copy(stored);
  if (!json_is_object(config)) {
    json_decref(config);
    config = json_object();
  }
  ac_schema_apply_defaults(info->schema, config);
  json_t *errors = NULL;
  if (ac_schema_validate(info->schema, config, &errors) != AC_OK) {
    json_t *e0 = json_array_get(errors, 0);
    char detail[600];
    snprintf(detail, sizeof detail, "/config%s: %s",
             json_string_value(json_object_get(e0, "path")),
             json_string_value(json_object_get(e0, "message")));
    json_decref(errors);
    json_decref(config);
    char msg[800];
    snprintf(msg, sizeof msg,
             "the stored config no longer matches the plugin's configSchema (%s)", detail);
    return json_pack("{s:s}", "error", msg);
  }
  json_decref(errors);
  json_t *secrets = ac_schema_secret_values(info->schema, config);
  /* names this prepared config for good: a state builds its context table
   * once per serial */
  static atomic_ullong next_serial = 1;
  json_int_t serial = (json_int_t)atomic_fetch_add(&next_serial, 1);
  return json_pack("{s:o, s:o, s:I}", "config", config, "secrets", secrets, "serial", serial);
}

/* The prepared config of key, made on first use (holding its key as
 * "key"). A new reference. */
static json_t *prepared_get(ac_init_tracker *t, const char *key, size_t key_len,
                            const ac_plugin_info *info, const json_t *stored) {
  pthread_mutex_lock(&t->prepared_lock);
  json_t *p = json_incref(json_object_getn(t->prepared, key, key_len));
  pthread_mutex_unlock(&t->prepared_lock);
  if (p)
    return p;
  p = prepare_config(info, stored);
  if (!p || json_object_set_new(p, "key", json_stringn(key, key_len)) != 0) {
    json_decref(p);
    return NULL;
  }
  pthread_mutex_lock(&t->prepared_lock);
  if (json_object_size(t->prepared) >= PREPARED_MAX)
    json_object_clear(t->prepared);
  json_object_setn(t->prepared, key, key_len, p);
  pthread_mutex_unlock(&t->prepared_lock);
  return p;
}

/* Appends s and a unit separator to key at *len; 0 when it does not fit. */
static int key_part(char *key, size_t size, size_t *len, const char *s, size_t n) {
  if (*len + n + 1 >= size)
    return 0;
  memcpy(key + *len, s, n);
  *len += n;
  key[(*len)++] = '\x1f';
  return 1;
}

/* Writes v in decimal at p; its length. */
static size_t put_decimal(char *p, unsigned long long v) {
  char digits[24];
  size_t n = 0;
  do
    digits[n++] = (char)('0' + v % 10);
  while ((v /= 10));
  for (size_t i = 0; i < n; i++)
    p[i] = digits[n - 1 - i];
  return n;
}

/* "ns \x1f plugin \x1f config version \x1f code serial": each prepared
 * once, a key whose versions changed is simply a new key. Its length; 0
 * when it does not fit (ids are far shorter). */
static size_t prepared_key(char *key, size_t size, const char *ns, const char *plugin,
                           json_int_t version, uint64_t serial) {
  size_t len = 0;
  if (!key_part(key, size, &len, ns, strlen(ns)) ||
      !key_part(key, size, &len, plugin, strlen(plugin)) || len + 48 >= size)
    return 0;
  len += put_decimal(key + len, version > 0 ? (unsigned long long)version : 0);
  key[len++] = '\x1f';
  len += put_decimal(key + len, serial);
  key[len] = '\0';
  return len;
}

int ac_hook_target_prepare(const ac_hook_env *env, const char *ns, const char *department,
                           const json_t *entry, unsigned cap, ac_hook_target *t,
                           ac_outcome *out) {
  memset(t, 0, sizeof *t);
  const char *plugin = json_string_value(json_object_get(entry, "pluginId"));
  t->h = ac_registry_acquire(env->registry, plugin);
  if (!t->h) {
    fail(out, AC_OUTCOME_ERROR, "plugin \"%s\" is not loaded", plugin);
    return -1;
  }
  const ac_plugin_info *info = ac_plugin_handle_info(t->h);
  if (!(info->caps & cap))
    return 0;
  char key[512];
  size_t key_len =
      prepared_key(key, sizeof key, ns, plugin, json_integer_value(json_object_get(entry, "version")),
                   ac_plugin_handle_serial(t->h));
  /* a new plugin version may have changed its schema under a stored config */
  json_t *prepared = key_len ? prepared_get(env->inits, key, key_len, info,
                                            json_object_get(entry, "config"))
                             : NULL;
  const char *error = json_string_value(json_object_get(prepared, "error"));
  if (!prepared || error) {
    fail(out, AC_OUTCOME_CONTRACT, "%s", error ? error : "out of memory preparing the config");
    json_decref(prepared);
    return -1;
  }
  t->prepared = prepared;
  t->init_key = json_string_value(json_object_get(prepared, "key"));
  t->ctx.config = json_object_get(prepared, "config");
  t->ctx.secrets = json_object_get(prepared, "secrets");
  t->ctx.config_serial = (uint64_t)json_integer_value(json_object_get(prepared, "serial"));

  if (info->has_init) {
    pthread_mutex_lock(&env->inits->lock);
    json_t *state = json_object_get(env->inits->states, t->init_key);
    const char *s = json_string_value(state);
    if (!state) {
      json_object_set_new(env->inits->states, t->init_key, json_string("running"));
      t->run_init = 1;
    }
    char msg[AC_OUTCOME_MSG_MAX];
    int running = !t->run_init && s && strcmp(s, "running") == 0;
    int failed = s && strcmp(s, "ok") != 0 && strcmp(s, "running") != 0;
    if (failed)
      snprintf(msg, sizeof msg, "%s", s);
    pthread_mutex_unlock(&env->inits->lock);
    if (failed) {
      fail(out, AC_OUTCOME_ERROR, "skipped: init failed for this config: %s", msg);
      return -1;
    }
    /* no hook runs before init has succeeded: a call that arrives while
     * another call runs it is refused for now (events try again later) */
    if (running) {
      fail(out, AC_OUTCOME_BUSY, "busy: %s", "init is still running for this config");
      return -1;
    }
  }
  t->ctx.namespace_id = ns;
  t->ctx.department_id = department;
  t->ctx.plugin_id = info->id;
  t->ctx.kv = env->kv;
  return 1;
}

void ac_hook_target_clear(ac_hook_target *t) {
  ac_plugin_handle_release(t->h);
  json_decref(t->prepared);
  memset(t, 0, sizeof *t);
}

static void count(const ac_hook_env *env, const char *plugin, const char *hook,
                  const ac_outcome *out) {
  char labels[256] = "";
  ac_metrics_label(labels, sizeof labels, "plugin", plugin);
  ac_metrics_label(labels, sizeof labels, "hook", hook);
  ac_metrics_observe(env->metrics, "agentcore_hook_duration_seconds", labels,
                     (double)out->duration_ms / 1000.0);
  ac_metrics_label(labels, sizeof labels, "outcome", ac_outcome_kind_name(out->kind));
  ac_metrics_add(env->metrics, "agentcore_hook_calls_total", labels, 1);
}

static void log_failure(const ac_hook_env *env, const ac_hook_target *t, const char *hook,
                        const ac_outcome *out) {
  json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "plugin", t->ctx.plugin_id, "namespace",
                        t->ctx.namespace_id, "hook", hook, "kind", ac_outcome_kind_name(out->kind),
                        "message", out->message, "durationMs", (json_int_t)out->duration_ms);
  ac_log(env->log, out->kind == AC_OUTCOME_RETRY ? AC_LOG_INFO : AC_LOG_WARN, "plugin call failed", f);
}

void ac_hook_record(const ac_hook_env *env, ac_hook_target *t, const char *hook,
                    const ac_outcome *init_out, const ac_outcome *out) {
  if (t->run_init) {
    /* an init that failed skips the plugin until its config or code
     * changes; one that never ran (the call was refused or abandoned) is
     * tried again by the next call */
    int failed = init_out && init_out->kind != AC_OUTCOME_OK;
    pthread_mutex_lock(&env->inits->lock);
    if (!init_out)
      json_object_del(env->inits->states, t->init_key);
    else
      json_object_set_new(env->inits->states, t->init_key,
                          json_string(failed ? init_out->message : "ok"));
    pthread_mutex_unlock(&env->inits->lock);
    if (failed) {
      count(env, t->ctx.plugin_id, "init", init_out);
      log_failure(env, t, "init", init_out);
    }
  }
  count(env, t->ctx.plugin_id, hook, out);
  if (out->kind != AC_OUTCOME_OK)
    log_failure(env, t, hook, out);
}
