/* test_hostflow_query.c — POST /api/v1/namespaces/:id/query on the real
 * server: opendatabot's company results next to hostile and broken
 * agent_query plugins (a loop answers as a timeout entry within the hook
 * timeout + 1 s, so does one stuck in C, invalid results become errors, 20 results per plugin at
 * most), the status codes of the route, and the hook metrics after it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hostflow_fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOOK_TIMEOUT_MS 1000
#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)

static const char *const plugins[] = {
    "q_loop.lua",
    "return { id = \"q-loop\", capabilities = { PluginCapability.AgentQuery },\n"
    "  onAgentQuery = function() while true do end end }\n",
    "q_invalid.lua",
    "return { id = \"q-invalid\", capabilities = { PluginCapability.AgentQuery },\n"
    "  onAgentQuery = function() return { { type = \"note\", summary = \"no title\" } } end }\n",
    "q_many.lua",
    "return { id = \"q-many\", capabilities = { PluginCapability.AgentQuery },\n"
    "  onAgentQuery = function(query)\n"
    "    local out = {}\n"
    "    for i = 1, 25 do out[i] = { type = \"note\", title = query.text:sub(1, 5) .. i,\n"
    "                                confidence = 0.5 } end\n"
    "    return out end }\n",
    "q_error.lua",
    "return { id = \"q-error\", capabilities = { PluginCapability.AgentQuery },\n"
    "  onAgentQuery = function() error(\"upstream exploded\", 0) end }\n",
    /* seconds of string comparisons inside table.sort (C, where no count
     * hook fires) on 8000 references to one 2 MiB string: the sort checks
     * the deadline as it goes */
    "q_sort.lua",
    "local big = string.rep(\"a\", 1 << 21)\n"
    "local t = {}\n"
    "for i = 1, 8000 do t[i] = big end\n"
    "return { id = \"q-sort\", capabilities = { PluginCapability.AgentQuery },\n"
    "  onAgentQuery = function() table.sort(t) return {} end }\n",
    /* init takes a while and counts its runs; a hook reports what it saw */
    "q_init.lua",
    "return { id = \"q-init\", capabilities = { PluginCapability.AgentQuery },\n"
    "  init = function(context)\n"
    "    local t = os.clock() while os.clock() - t < 0.3 do end\n"
    "    context.db.set(\"inits\", (context.db.get(\"inits\") or 0) + 1)\n"
    "  end,\n"
    "  onAgentQuery = function(q, context)\n"
    "    return { { type = \"init\", title = tostring(context.db.get(\"inits\")) } } end }\n",
    /* what a hook sees of the query's optional fields */
    "q_fields.lua",
    "return { id = \"q-fields\", capabilities = { PluginCapability.AgentQuery },\n"
    "  onAgentQuery = function(q)\n"
    "    return { { type = \"fields\", title = type(q.userId) .. \"/\" .. type(q.locale) ..\n"
    "               \"/\" .. q.namespaceId .. \"/\" .. q.text } } end }\n",
    NULL,
};

#define QUERY "{\"query\":\"Check 14360570 and 00032129, not 12345670 or 123456789\",\"userId\":\"u-1\",\"locale\":\"uk\"}"

static ac_test_server srv;
static char *admin;
static char plugin_dir[256];

static int teardown_failed;

static int setup(void **state) {
  (void)state;
  if (ac_hostflow_plugin_dir(plugin_dir, sizeof plugin_dir, plugins))
    return -1;
  char dirs[300], timeout[64];
  snprintf(dirs, sizeof dirs, "AGENTCORE_PLUGIN_DIRS=%s", plugin_dir);
  snprintf(timeout, sizeof timeout, "AGENTCORE_HOOK_TIMEOUT_MS=%d", HOOK_TIMEOUT_MS);
  const char *env[] = {timeout, dirs, NULL};
  if (ac_test_server_start(&srv, "hostflow_query", env) != 0)
    return -1;
  admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 3600);
  if (!admin || ac_hostflow_tenant(&srv, admin, "qd", "q-ns") ||
      ac_hostflow_tenant(&srv, admin, "qd", "q-empty") ||
      ac_hostflow_tenant(&srv, admin, "qd", "q-init-ns") ||
      ac_hostflow_tenant(&srv, admin, "qd", "q-fields-ns") ||
      ac_hostflow_enable(&srv, admin, "q-fields-ns", "q-fields", "{}") ||
      ac_hostflow_enable(&srv, admin, "q-init-ns", "q-init", "{}") ||
      ac_hostflow_enable(&srv, admin, "q-ns", "opendatabot", "{}"))
    return -1;
  const char *custom[] = {"q-loop", "q-invalid", "q-many", "q-error", "q-sort"};
  for (size_t i = 0; i < 5; i++)
    if (ac_hostflow_enable(&srv, admin, "q-ns", custom[i], "{}"))
      return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  int rc = ac_test_server_stop(&srv);
  ac_hostflow_plugin_dir_remove(plugin_dir, plugins);
  /* a server that did not exit cleanly (ASan reports included) fails the
   * program: cmocka does not count a failed group teardown */
  teardown_failed = rc != 0;
  if (teardown_failed)
    fprintf(stderr, "agentcore serve exited with status %d\n", rc);
  return teardown_failed ? -1 : 0;
}

static size_t count_plugin(const json_t *list, const char *plugin) {
  size_t i, n = 0;
  json_t *e;
  json_array_foreach(list, i, e) n +=
      strcmp(json_string_value(json_object_get(e, "pluginId")), plugin) == 0;
  return n;
}

static const json_t *error_of(const json_t *errors, const char *plugin) {
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e) if (strcmp(json_string_value(json_object_get(e, "pluginId")),
                                              plugin) == 0) return e;
  return NULL;
}

static const json_t *company(const json_t *results, const char *code) {
  size_t i;
  json_t *r;
  json_array_foreach(results, i, r) {
    const json_t *data = json_object_get(r, "data");
    if (strcmp(json_string_value(json_object_get(r, "pluginId")), "opendatabot") == 0 &&
        json_is_string(json_object_get(data, "edrpou")) &&
        strcmp(json_string_value(json_object_get(data, "edrpou")), code) == 0)
      return r;
  }
  return NULL;
}

static void enrichment_with_hostile_plugins(void **state) {
  (void)state;
  for (int round = 0; round < 2; round++) { /* the looping state is rebuilt in between */
    ac_test_response res;
    long long t0 = ac_hostflow_now_ms();
    ac_test_call(&srv, "POST", "/api/v1/namespaces/q-ns/query", admin, QUERY, &res);
    long long took = ac_hostflow_now_ms() - t0;
    assert_true(ac_test_expect(&res, 200, "query-response.json"));
    if (took > HOOK_TIMEOUT_MS + 1000)
      fail_msg("the answer took %lld ms", took);
    const json_t *results = json_object_get(res.json, "results");
    const json_t *errors = json_object_get(res.json, "errors");
    assert_true(json_is_integer(json_object_get(res.json, "tookMs")));

    /* opendatabot: one company per standalone 8-digit code */
    assert_int_equal(count_plugin(results, "opendatabot"), 3);
    const char *valid[] = {"14360570", "00032129"};
    for (size_t i = 0; i < 2; i++) {
      const json_t *r = company(results, valid[i]);
      assert_non_null(r);
      assert_string_equal(json_string_value(json_object_get(r, "type")), "company");
      assert_true(json_is_true(json_object_get(json_object_get(r, "data"), "checksumValid")));
      assert_true(json_is_string(json_object_get(json_object_get(r, "source"), "url")));
    }
    const json_t *bad = company(results, "12345670");
    assert_non_null(bad);
    assert_true(json_is_false(json_object_get(json_object_get(bad, "data"), "checksumValid")));
    assert_null(company(results, "23456789"));
    assert_null(company(results, "12345678"));

    /* the loop is cut at the timeout, the others are reported, not fatal */
    const json_t *loop = error_of(errors, "q-loop");
    assert_non_null(loop);
    assert_string_equal(json_string_value(json_object_get(loop, "kind")), "timeout");
    assert_int_equal(count_plugin(results, "q-loop"), 0);
    const json_t *inv = error_of(errors, "q-invalid");
    assert_non_null(inv);
    assert_non_null(strstr(json_string_value(json_object_get(inv, "message")), "title"));
    assert_int_equal(count_plugin(results, "q-invalid"), 0);
    const json_t *err = error_of(errors, "q-error");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "kind")), "error");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "upstream exploded"));
    assert_int_equal(count_plugin(results, "q-many"), 20);
    assert_null(error_of(errors, "opendatabot"));
    assert_null(error_of(errors, "q-many"));
    /* long in C: stopped at its deadline (timeout) or, while the call of
     * the round before still holds the namespace's worker share, refused
     * when its deadline passes in the queue (busy) */
    const json_t *stuck = error_of(errors, "q-sort");
    assert_non_null(stuck);
    const char *stuck_kind = json_string_value(json_object_get(stuck, "kind"));
    if (strcmp(stuck_kind, "timeout") != 0 && strcmp(stuck_kind, "busy") != 0)
      fail_msg("q-sort ended as %s", stuck_kind);
    assert_int_equal(json_array_size(errors), 4);
    assert_int_equal(json_array_size(results), 23);
    ac_test_response_free(&res);
  }
}

/* init runs once, and no hook runs before it succeeded: concurrent first
 * queries either see its work done or are told, as busy, that it runs. */
#define INIT_CLIENTS 6

typedef struct init_client {
  pthread_t thread;
  ac_test_response res;
} init_client;

static void *init_client_main(void *arg) {
  init_client *c = arg;
  ac_test_call(&srv, "POST", "/api/v1/namespaces/q-init-ns/query", admin, "{\"query\":\"x\"}",
               &c->res);
  return NULL;
}

static void init_runs_once_before_any_hook(void **state) {
  (void)state;
  init_client cs[INIT_CLIENTS];
  for (int i = 0; i < INIT_CLIENTS; i++)
    assert_int_equal(pthread_create(&cs[i].thread, NULL, init_client_main, &cs[i]), 0);
  int answered = 0, busy = 0;
  for (int i = 0; i < INIT_CLIENTS; i++) {
    pthread_join(cs[i].thread, NULL);
    assert_int_equal(cs[i].res.status, 200);
    const json_t *results = json_object_get(cs[i].res.json, "results");
    const json_t *err = error_of(json_object_get(cs[i].res.json, "errors"), "q-init");
    if (err) {
      assert_string_equal(json_string_value(json_object_get(err, "kind")), "busy");
      assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "init"));
      busy++;
    } else {
      /* a hook that ran saw init's work */
      assert_string_equal(
          json_string_value(json_object_get(json_array_get(results, 0), "title")), "1");
      answered++;
    }
    ac_test_response_free(&cs[i].res);
  }
  assert_true(answered >= 1);
  ac_test_response res;
  ac_test_call(&srv, "POST", "/api/v1/namespaces/q-init-ns/query", admin, "{\"query\":\"x\"}",
               &res);
  assert_int_equal(res.status, 200);
  assert_null(error_of(json_object_get(res.json, "errors"), "q-init"));
  assert_string_equal(json_string_value(json_object_get(
                          json_array_get(json_object_get(res.json, "results"), 0), "title")),
                      "1"); /* once, whatever the concurrency */
  fprintf(stderr, "  %d of %d concurrent first queries answered, %d told init was running\n",
          answered, INIT_CLIENTS, busy);
  ac_test_response_free(&res);
}

static void namespace_without_plugins(void **state) {
  (void)state;
  ac_test_response res;
  ac_test_call(&srv, "POST", "/api/v1/namespaces/q-empty/query", admin, "{\"query\":\"14360570\"}",
               &res);
  assert_true(ac_test_expect(&res, 200, "query-response.json"));
  assert_int_equal(json_array_size(json_object_get(res.json, "results")), 0);
  assert_int_equal(json_array_size(json_object_get(res.json, "errors")), 0);
  ac_test_response_free(&res);
}

/* Optional query fields a request leaves out (or sends as null) are nil
 * in the hook, as in `plugin run`; given ones are strings. */
static void absent_fields_are_nil(void **state) {
  (void)state;
  static const struct {
    const char *body, *title;
  } cases[] = {
      {"{\"query\":\"a\"}", "nil/nil/q-fields-ns/a"},
      {"{\"query\":\"b\",\"userId\":null,\"locale\":null}", "nil/nil/q-fields-ns/b"},
      {"{\"query\":\"c\",\"userId\":\"u-1\",\"locale\":\"uk\"}", "string/string/q-fields-ns/c"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ac_test_response res;
    ac_test_call(&srv, "POST", "/api/v1/namespaces/q-fields-ns/query", admin, cases[i].body, &res);
    assert_true(ac_test_expect(&res, 200, "query-response.json"));
    const json_t *r = json_array_get(json_object_get(res.json, "results"), 0);
    const char *title = json_string_value(json_object_get(r, "title"));
    if (!title || strcmp(title, cases[i].title) != 0)
      fail_msg("case %zu: %s, expected %s", i, title ? title : "(none)", cases[i].title);
    ac_test_response_free(&res);
  }
}

static void query_status_codes(void **state) {
  (void)state;
  char *no_query = ac_test_token("no-query", ALL_PERMS & ~AC_PERM_QUERY_PLUGINS, 1, NULL, 600);
  const char *other[] = {"elsewhere", NULL}, *own[] = {"qd", NULL};
  char *stranger = ac_test_token("stranger", AC_PERM_QUERY_PLUGINS, 0, other, 600);
  char *member = ac_test_token("member", AC_PERM_QUERY_PLUGINS, 0, own, 600);
  const struct {
    const char *ns, *body, *token;
    long status;
  } cases[] = {
      {"q-ns", "{\"query\":\"14360570\"}", member, 200},
      {"no-such-ns", "{\"query\":\"14360570\"}", admin, 404},
      {"q-ns", "{\"query\":\"14360570\"}", stranger, 404},
      {"q-ns", "{\"query\":\"14360570\"}", no_query, 403},
      {"q-ns", "{\"query\":\"14360570\"}", NULL, 401},
      {"q-ns", "{\"userId\":\"u\"}", admin, 400},
      {"q-ns", "{\"query\":42}", admin, 400},
      {"q-ns", "{\"query\":\"x\",\"locale\":7}", admin, 400},
      {"q-ns", "[\"query\"]", admin, 400},
      {"q-ns", "{\"query\":", admin, 400},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[128];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/query", cases[i].ns);
    ac_test_response res;
    ac_test_call(&srv, "POST", path, cases[i].token, cases[i].body, &res);
    if (!ac_test_expect(&res, cases[i].status, cases[i].status == 200 ? "query-response.json" : NULL))
      fail_msg("case %zu (%s %s): expected %ld", i, cases[i].ns, cases[i].body, cases[i].status);
    ac_test_response_free(&res);
  }
  free(no_query);
  free(stranger);
  free(member);
}

static void hook_metrics(void **state) {
  (void)state;
  ac_test_response res;
  assert_int_equal(ac_test_call(&srv, "GET", "/metrics", NULL, NULL, &res), 200);
  const char *want[] = {
      "agentcore_hook_calls_total{plugin=\"opendatabot\",hook=\"onAgentQuery\",outcome=\"ok\"} ",
      "agentcore_hook_calls_total{plugin=\"q-loop\",hook=\"onAgentQuery\",outcome=\"timeout\"} ",
      "agentcore_hook_calls_total{plugin=\"q-error\",hook=\"onAgentQuery\",outcome=\"error\"} ",
      "agentcore_hook_calls_total{plugin=\"q-many\",hook=\"onAgentQuery\",outcome=\"ok\"} ",
      "agentcore_hook_duration_seconds_bucket{plugin=\"opendatabot\",hook=\"onAgentQuery\",le=",
      "\nagentcore_events_queued 0",
      "# TYPE agentcore_hook_calls_total counter",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!res.body || !strstr(res.body, want[i]))
      fail_msg("/metrics lacks %s:\n%.4000s", want[i], res.body ? res.body : "");
  /* two rounds plus the member's query: opendatabot answered 3 times */
  assert_non_null(strstr(
      res.body,
      "agentcore_hook_calls_total{plugin=\"opendatabot\",hook=\"onAgentQuery\",outcome=\"ok\"} 3\n"));
  ac_test_response_free(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(enrichment_with_hostile_plugins),
      cmocka_unit_test(namespace_without_plugins),
      cmocka_unit_test(absent_fields_are_nil),
      cmocka_unit_test(init_runs_once_before_any_hook),
      cmocka_unit_test(query_status_codes),
      cmocka_unit_test(hook_metrics),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  return failed || teardown_failed;
}
