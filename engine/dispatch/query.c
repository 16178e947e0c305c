/* query.c — concurrent onAgentQuery fan-out with a bounded wait. */
#include "dispatch/query.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_error(json_t *errors, const char *plugin, const char *kind, const char *message) {
  json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "pluginId", plugin, "kind", kind,
                                          "message", message));
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
    json_t *copy = json_is_object(r) ? json_deep_copy(r) : json_incref(r);
    if (json_is_object(copy))
      json_object_set_new(copy, "pluginId", json_string(plugin));
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
      json_array_append_new(results, copy);
      kept++;
    }
    json_decref(errs);
  }
}

void ac_query_run(const ac_hook_env *env, const ac_schema *result_schema, const char *ns,
                  const json_t *snapshot, const json_t *query, json_t *results, json_t *errors) {
  const json_t *plugins = json_object_get(snapshot, "plugins");
  const char *dept = json_string_value(json_object_get(snapshot, "departmentId"));
  size_t n = json_array_size(plugins);
  if (n == 0)
    return;
  ac_hook_target *targets = calloc(n, sizeof *targets);
  ac_pending_call **calls = calloc(n, sizeof *calls);
  int *state = calloc(n, sizeof *state);
  if (!targets || !calls || !state) {
    free(targets);
    free(calls);
    free(state);
    add_error(errors, "engine", "error", "out of memory");
    return;
  }
  int64_t start = ac_clock_mono_ms();
  for (size_t i = 0; i < n; i++) {
    const json_t *entry = json_array_get(plugins, i);
    ac_outcome out;
    state[i] = ac_hook_target_prepare(env, ns, dept, entry, AC_CAP_AGENT_QUERY, &targets[i], &out);
    if (state[i] < 0)
      add_error(errors, json_string_value(json_object_get(entry, "pluginId")),
                ac_outcome_kind_name(out.kind), out.message);
    if (state[i] == 1)
      calls[i] = ac_plugin_call_start(targets[i].h, AC_HOOK_QUERY, query, &targets[i].ctx,
                                      targets[i].run_init, env->http);
  }
  /* one deadline for all: the answer never waits longer than this */
  int64_t wait_until = start + env->timeout_ms + AC_QUERY_MARGIN_MS;
  for (size_t i = 0; i < n; i++) {
    if (state[i] == 1) {
      json_t *value = NULL;
      ac_outcome out, init_out;
      ac_plugin_call_finish(calls[i], wait_until, &value, &out, &init_out);
      ac_hook_record(env, &targets[i], AC_HOOK_QUERY, &init_out, &out);
      if (out.kind == AC_OUTCOME_OK)
        take_results(result_schema, targets[i].ctx.plugin_id, value, results, errors);
      else
        add_error(errors, targets[i].ctx.plugin_id, ac_outcome_kind_name(out.kind), out.message);
      json_decref(value);
    }
    ac_hook_target_clear(&targets[i]);
  }
  free(targets);
  free(calls);
  free(state);
}
