/* test_api_outage.c — the real server while its database goes away and
 * comes back: connections killed under it are replaced without a failed
 * request, an unreachable database answers 503 problem+json, and the server
 * recovers without a restart, while the host flow's /query keeps answering
 * from the tenancy snapshot. The shared cluster keeps running: only this
 * server's database is cut off (connections refused, backends terminated,
 * database renamed away) and then restored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/jwt.h"
#include "server_fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ac_test_server srv;
static char *admin;

static int setup(void **state) {
  (void)state;
  if (ac_test_server_start(&srv, "api_outage", NULL) != 0)
    return -1;
  admin = ac_test_token("admin",
                        AC_PERM_MANAGE_NAMESPACES | AC_PERM_MANAGE_PLUGINS | AC_PERM_EMIT_EVENTS |
                            AC_PERM_QUERY_PLUGINS,
                        1, NULL, 600);
  return admin ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  return ac_test_server_stop(&srv) == 0 ? 0 : -1;
}

static void *parallel_get(void *arg) {
  (void)arg;
  for (int i = 0; i < 5; i++) {
    ac_test_response res;
    ac_test_call(&srv, "GET", "/api/v1/namespaces", admin, NULL, &res);
    ac_test_response_free(&res);
  }
  return NULL;
}

static void setup_namespace(void **state) {
  (void)state;
  json_t *d = ac_test_json(&srv, "POST", "/api/v1/departments", admin,
                           "{\"id\":\"o-dept\",\"name\":\"outage\"}", 201, "department.json");
  assert_non_null(d);
  json_decref(d);
  json_t *n = ac_test_json(&srv, "POST", "/api/v1/namespaces", admin,
                           "{\"id\":\"o-ns\",\"name\":\"outage\",\"departmentId\":\"o-dept\"}", 201,
                           "namespace.json");
  assert_non_null(n);
  json_decref(n);
  n = ac_test_json(&srv, "POST", "/api/v1/namespaces", admin,
                   "{\"id\":\"o-bot\",\"name\":\"outage\",\"departmentId\":\"o-dept\"}", 201,
                   "namespace.json");
  assert_non_null(n);
  json_decref(n);
  json_t *p = ac_test_json(&srv, "POST", "/api/v1/namespaces/o-bot/plugins/opendatabot", admin,
                           "{}", 201, "plugin-record.json");
  assert_non_null(p);
  json_decref(p);
}

/* Backends killed under idle pooled connections (what a database restart
 * does): the next requests still succeed, on fresh connections. */
static void killed_connections_are_replaced(void **state) {
  (void)state;
  /* fill the pool with several idle connections first */
  pthread_t th[6];
  for (int i = 0; i < 6; i++)
    pthread_create(&th[i], NULL, parallel_get, NULL);
  for (int i = 0; i < 6; i++)
    pthread_join(th[i], NULL);
  assert_true(ac_test_server_kill_backends(&srv) >= 1);
  for (int i = 0; i < 12; i++) {
    json_t *n = ac_test_json(&srv, "GET", "/api/v1/namespaces/o-ns", admin, NULL, 200, "namespace.json");
    if (!n)
      fail_msg("request %d after the backends were terminated", i);
    json_decref(n);
  }
  json_t *r = ac_test_json(&srv, "GET", "/readyz", NULL, NULL, 200, "health.json");
  assert_non_null(r);
  json_decref(r);
}

static void assert_unavailable(const char *method, const char *path, const char *body) {
  ac_test_response res;
  ac_test_call(&srv, method, path, admin, body, &res);
  char ra[32];
  if (!ac_test_expect(&res, 503, NULL) || !ac_test_header(&res, "Retry-After", ra, sizeof ra))
    fail_msg("%s %s during the outage: %ld", method, path, res.status);
  ac_test_response_free(&res);
}

/* With the database gone, /query on a namespace the snapshot holds still
 * runs its plugins with their configs: the path makes no round trip.
 * Scope is decided from memory too; only an id the snapshot lacks needs
 * the database (503). */
static void query_from_snapshot(void) {
  json_t *r = ac_test_json(&srv, "POST", "/api/v1/namespaces/o-bot/query", admin,
                           "{\"query\":\"check 00032129 and 12345678\"}", 200,
                           "query-response.json");
  assert_non_null(r);
  assert_int_equal(json_array_size(json_object_get(r, "results")), 2);
  assert_int_equal(json_array_size(json_object_get(r, "errors")), 0);
  json_decref(r);
  r = ac_test_json(&srv, "POST", "/api/v1/namespaces/o-ns/query", admin, "{\"query\":\"x\"}", 200,
                   "query-response.json");
  assert_non_null(r);
  assert_int_equal(json_array_size(json_object_get(r, "results")), 0);
  json_decref(r);
  const char *const elsewhere[] = {"o-elsewhere", NULL};
  char *outsider = ac_test_token("outsider", AC_PERM_QUERY_PLUGINS, 0, elsewhere, 600);
  r = ac_test_json(&srv, "POST", "/api/v1/namespaces/o-bot/query", outsider,
                   "{\"query\":\"x\"}", 404, NULL);
  assert_non_null(r);
  json_decref(r);
  free(outsider);
  assert_unavailable("POST", "/api/v1/namespaces/o-unknown/query", "{\"query\":\"x\"}");
}

static void outage_answers_503_then_recovers(void **state) {
  (void)state;
  /* no new connections, the live ones terminated, then the database gone */
  assert_true(ac_test_server_db_outage(&srv, 1) >= 0);

  static const struct {
    const char *method, *path, *body;
  } routes[] = {
      {"GET", "/api/v1/namespaces", NULL},
      {"GET", "/api/v1/departments", NULL},
      {"GET", "/api/v1/namespaces/o-ns", NULL},
      {"GET", "/api/v1/namespaces/o-ns/plugins", NULL},
      {"POST", "/api/v1/namespaces", "{\"name\":\"x\",\"departmentId\":\"o-dept\"}"},
      {"POST", "/api/v1/namespaces/o-ns/plugins/opendatabot", "{}"},
      {"PATCH", "/api/v1/namespaces/o-ns/plugins/opendatabot", "{\"enabled\":false}"},
      {"DELETE", "/api/v1/namespaces/o-ns/plugins/opendatabot", NULL},
      {"POST", "/api/v1/namespaces/o-ns/events", "{\"type\":\"document.ready\",\"documentId\":\"d\"}"},
      {"GET", "/api/v1/namespaces/o-ns/events/6f1c2e4a-3b5d-4c6e-8f70-1a2b3c4d5e6f", NULL},
  };
  for (int round = 0; round < 2; round++) /* the second round finds no stale pool either */
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
      assert_unavailable(routes[i].method, routes[i].path, routes[i].body);
  ac_test_response res;
  ac_test_call(&srv, "GET", "/readyz", NULL, NULL, &res);
  assert_true(ac_test_expect(&res, 503, NULL));
  ac_test_response_free(&res);
  /* what needs no database keeps working */
  json_t *h = ac_test_json(&srv, "GET", "/healthz", NULL, NULL, 200, "health.json");
  assert_non_null(h);
  json_decref(h);
  json_t *c = ac_test_json(&srv, "GET", "/api/v1/plugins", admin, NULL, 200, "catalog.json");
  assert_non_null(c);
  json_decref(c);
  query_from_snapshot();

  /* back: the very next requests succeed, no restart */
  assert_int_equal(ac_test_server_db_outage(&srv, 0), 0);
  json_t *n = ac_test_json(&srv, "GET", "/api/v1/namespaces/o-ns", admin, NULL, 200, "namespace.json");
  assert_non_null(n);
  json_decref(n);
  json_t *r = ac_test_json(&srv, "GET", "/readyz", NULL, NULL, 200, "health.json");
  assert_non_null(r);
  json_decref(r);
  json_t *p = ac_test_json(&srv, "POST", "/api/v1/namespaces/o-ns/plugins/opendatabot", admin, "{}",
                           201, "plugin-record.json");
  assert_non_null(p);
  json_decref(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(setup_namespace),
      cmocka_unit_test(killed_connections_are_replaced),
      cmocka_unit_test(outage_answers_503_then_recovers),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
