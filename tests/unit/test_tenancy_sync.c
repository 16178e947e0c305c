/* test_tenancy_sync.c — two `agentcore serve` processes on one database
 * keep their tenancy snapshots in step: a config written through one is
 * used by the other's next /query within 1 s, a department and namespace
 * created through one answer on the other at once, and after every
 * database connection was cut the snapshot is read again in full — a
 * change made in SQL that no notification announced is picked up too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hostflow_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)
#define NS "s-ns"
#define WITHIN_MS 1000        /* another instance uses a new config within 1 s */
#define RELOAD_WITHIN_MS 3000 /* reconnect and full reload, slow builds included */

static char dirs_env[128];
static const char *env[] = {dirs_env, NULL};
static ac_test_server a, b; /* a owns the database; b shares it */
static char *admin;
static char dir[64];

static const char cfgecho[] =
    "return { id = 'cfgecho', name = 'Config echo', category = 'test', version = '1.0.0',\n"
    "  configSchema = { type = 'object', additionalProperties = false,\n"
    "    properties = { value = { type = 'string' } } },\n"
    "  capabilities = { 'agent_query' },\n"
    "  onAgentQuery = function(query, context)\n"
    "    return { { type = 'echo', title = 'value=' .. tostring(context.config.value) } }\n"
    "  end }\n";
static const char *const files[] = {"cfgecho.lua", cfgecho, NULL};

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int setup(void **state) {
  (void)state;
  if (ac_hostflow_plugin_dir(dir, sizeof dir, files) != 0)
    return -1;
  snprintf(dirs_env, sizeof dirs_env, "AGENTCORE_PLUGIN_DIRS=%s", dir);
  if (ac_test_server_start(&a, "tenancy_sync", env) != 0)
    return -1;
  if (ac_test_server_start_on(&a, env, &b) != 0)
    return -1;
  admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 3600);
  if (!admin || ac_hostflow_tenant(&a, admin, "s-dept", NS) != 0 ||
      ac_hostflow_enable(&a, admin, NS, "cfgecho", "{\"value\":\"v0\"}") != 0)
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  int rb = ac_test_server_stop(&b);
  int ra = ac_test_server_stop(&a);
  ac_hostflow_plugin_dir_remove(dir, files);
  return ra == 0 && rb == 0 ? 0 : -1;
}

/* cfgecho's title in s's answer for ns with token: a malloc'd copy, ""
 * when cfgecho gave no result, NULL when the query did not answer 200. */
static char *echoed_in(const ac_test_server *s, const char *ns, const char *token) {
  char path[128];
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/query", ns);
  json_t *r = ac_test_json(s, "POST", path, token, "{\"query\":\"which value\"}", 200,
                           "query-response.json");
  if (!r)
    return NULL;
  const char *title = "";
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(r, "results"), i, x) {
    if (strcmp(json_string_value(json_object_get(x, "pluginId")), "cfgecho") == 0)
      title = json_string_value(json_object_get(x, "title"));
  }
  char *out = strdup(title);
  json_decref(r);
  return out;
}

static char *echoed(const ac_test_server *s) { return echoed_in(s, NS, admin); }

/* Polls s every 20 ms until it echoes want for ns; the ms it took, or -1
 * when that is over within_ms. */
static long long seen_in(const ac_test_server *s, const char *ns, const char *token,
                         const char *want, long long within_ms) {
  long long start = ac_hostflow_now_ms();
  for (;;) {
    char *got = echoed_in(s, ns, token);
    long long took = ac_hostflow_now_ms() - start;
    int ok = got && strcmp(got, want) == 0 && took <= within_ms;
    if (ok || took > within_ms) {
      if (!ok)
        fprintf(stderr, "%s still answers \"%s\", not \"%s\", after %lld ms\n", s->base_url,
                got ? got : "(query failed)", want, took);
      free(got);
      return ok ? took : -1;
    }
    free(got);
    sleep_ms(20);
  }
}

static long long seen_after(const ac_test_server *s, const char *want, long long within_ms) {
  return seen_in(s, NS, admin, want, within_ms);
}

static void patch_value(const ac_test_server *s, const char *value) {
  char body[128];
  snprintf(body, sizeof body, "{\"config\":{\"value\":\"%s\"}}", value);
  json_t *r = ac_test_json(s, "PATCH", "/api/v1/namespaces/" NS "/plugins/cfgecho", admin, body,
                           200, "plugin-record.json");
  assert_non_null(r);
  json_decref(r);
}

/* Runs SQL on s's database; fails the test if it does not succeed. */
static void sql(ac_test_server *s, const char *text) {
  char *out = ac_test_server_query(s, 0, text, 0, NULL);
  if (!out)
    fail_msg("%s: %s", text, s->err);
  free(out);
}

/* agentcore_tenancy_reloads_total{result="ok"} of s, or -1. */
static long long reloads(const ac_test_server *s) {
  ac_test_response res;
  ac_test_call(s, "GET", "/metrics", NULL, NULL, &res);
  const char *key = "agentcore_tenancy_reloads_total{result=\"ok\"} ";
  const char *p = res.status == 200 && res.body ? strstr(res.body, key) : NULL;
  long long n = p ? atoll(p + strlen(key)) : -1;
  ac_test_response_free(&res);
  return n;
}

/* ---- tests ------------------------------------------------------------------------ */

static void config_write_reaches_other_instance(void **state) {
  (void)state;
  assert_true(seen_after(&a, "value=v0", WITHIN_MS) >= 0);
  assert_true(seen_after(&b, "value=v0", WITHIN_MS) >= 0);
  static const char *const values[] = {"v1", "v2", "v3", "v4"};
  for (int i = 0; i < 4; i++) {
    ac_test_server *writer = i % 2 ? &b : &a, *reader = i % 2 ? &a : &b;
    char want[32];
    snprintf(want, sizeof want, "value=%s", values[i]);
    patch_value(writer, values[i]);
    /* the writer's very next call, then the other instance within 1 s */
    char *own = echoed(writer);
    assert_non_null(own);
    assert_string_equal(own, want);
    free(own);
    long long took = seen_after(reader, want, WITHIN_MS);
    assert_true(took >= 0);
    fprintf(stderr, "write through %s seen by the other after %lld ms\n", writer->base_url, took);
  }
}

static void namespace_created_elsewhere_answers_at_once(void **state) {
  (void)state;
  json_t *r = ac_test_json(&a, "POST", "/api/v1/departments", admin,
                           "{\"id\":\"s-new-dept\",\"name\":\"new\",\"parentId\":\"s-dept\"}", 201,
                           "department.json");
  assert_non_null(r);
  json_decref(r);
  r = ac_test_json(&a, "POST", "/api/v1/namespaces", admin,
                   "{\"id\":\"s-new\",\"name\":\"new\",\"departmentId\":\"s-new-dept\"}", 201,
                   "namespace.json");
  assert_non_null(r);
  json_decref(r);
  /* no waiting, for a caller scoped to the parent department: if b has
   * not applied the notifications yet, the lookup costs it one read */
  const char *const parent[] = {"s-dept", NULL};
  char *scoped =
      ac_test_token("scoped", AC_PERM_QUERY_PLUGINS | AC_PERM_EMIT_EVENTS, 0, parent, 600);
  char *got = echoed_in(&b, "s-new", scoped);
  assert_non_null(got);
  assert_string_equal(got, ""); /* nothing enabled yet */
  free(got);
  /* its first config reaches b like any other */
  assert_int_equal(ac_hostflow_enable(&a, admin, "s-new", "cfgecho", "{\"value\":\"fresh\"}"), 0);
  assert_true(seen_in(&b, "s-new", scoped, "value=fresh", WITHIN_MS) >= 0);
  /* out of scope and unknown answer alike */
  const char *const other[] = {"s-other", NULL};
  char *outsider = ac_test_token("outsider", AC_PERM_QUERY_PLUGINS, 0, other, 600);
  r = ac_test_json(&b, "POST", "/api/v1/namespaces/s-new/query", outsider, "{\"query\":\"x\"}",
                   404, NULL);
  assert_non_null(r);
  json_decref(r);
  r = ac_test_json(&b, "POST", "/api/v1/namespaces/s-none/query", admin, "{\"query\":\"x\"}", 404,
                   NULL);
  assert_non_null(r);
  json_decref(r);
  /* events take the same path */
  long st = 0;
  char *id = ac_hostflow_emit(&b, scoped, "s-new",
                              "{\"type\":\"document.ready\",\"documentId\":\"d-1\"}", &st);
  assert_non_null(id);
  assert_int_equal(st, 202);
  free(id);
  free(outsider);
  free(scoped);
}

/* Every connection is cut, and while they are away a config changes in
 * SQL with no notification (the notifying trigger is off): only the full
 * reload after the reconnect can bring it, and it does. Then, connections
 * cut again, a change made in SQL and announced with pg_notify. */
static void reconnect_reloads_everything(void **state) {
  (void)state;
  long long before[2] = {reloads(&a), reloads(&b)};
  assert_true(before[0] >= 1 && before[1] >= 1); /* the load at startup */
  assert_true(seen_after(&b, "value=v4", WITHIN_MS) >= 0);
  sql(&a, "ALTER TABLE namespace_plugins DISABLE TRIGGER namespace_plugins_notify");
  sql(&a, "UPDATE namespace_plugins SET config = '{\"value\":\"silent\"}' "
          "WHERE namespace_id = '" NS "' AND plugin_id = 'cfgecho'");
  /* nothing announced it: the snapshot is what both serve */
  sleep_ms(300);
  char *got = echoed(&b);
  assert_non_null(got);
  assert_string_equal(got, "value=v4");
  free(got);
  assert_true(ac_test_server_kill_backends(&a) >= 2); /* both LISTEN connections at least */
  long long took_b = seen_after(&b, "value=silent", RELOAD_WITHIN_MS);
  long long took_a = seen_after(&a, "value=silent", RELOAD_WITHIN_MS);
  fprintf(stderr, "after the cut, reloaded configs seen after %lld / %lld ms\n", took_a, took_b);
  assert_true(took_a >= 0 && took_b >= 0);
  assert_true(reloads(&a) > before[0]);
  assert_true(reloads(&b) > before[1]);
  sql(&a, "ALTER TABLE namespace_plugins ENABLE TRIGGER namespace_plugins_notify");

  assert_true(ac_test_server_kill_backends(&a) >= 2);
  sql(&a, "WITH u AS (UPDATE namespace_plugins SET config = '{\"value\":\"announced\"}' "
          "WHERE namespace_id = '" NS "' AND plugin_id = 'cfgecho' RETURNING 1) "
          "SELECT pg_notify('agentcore_config', '{\"namespaceId\":\"" NS "\"}') FROM u");
  assert_true(seen_after(&b, "value=announced", RELOAD_WITHIN_MS) >= 0);
  assert_true(seen_after(&a, "value=announced", RELOAD_WITHIN_MS) >= 0);
  /* and notifications work again afterwards */
  sleep_ms(300);
  patch_value(&a, "after");
  assert_true(seen_after(&b, "value=after", WITHIN_MS) >= 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(config_write_reaches_other_instance),
      cmocka_unit_test(namespace_created_elsewhere_answers_at_once),
      cmocka_unit_test(reconnect_reloads_everything),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
