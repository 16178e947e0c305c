/* test_api_host.c — the real server's host-flow routes (events, query)
 * checked against the contract in schemas/: status codes, shapes,
 * idempotency, scope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/jwt.h"
#include "server_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)

static ac_test_server srv;
static char *admin;

static int setup(void **state) {
  (void)state;
  if (ac_test_server_start(&srv, "api_host", NULL) != 0)
    return -1;
  admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 600);
  static const char *const items[][2] = {
      {"/api/v1/departments", "{\"id\":\"h-dept\",\"name\":\"host\"}"},
      {"/api/v1/departments", "{\"id\":\"h-other\",\"name\":\"other\"}"},
      {"/api/v1/namespaces", "{\"id\":\"h-ns\",\"name\":\"host\",\"departmentId\":\"h-dept\"}"},
      {"/api/v1/namespaces", "{\"id\":\"h-empty\",\"name\":\"empty\",\"departmentId\":\"h-dept\"}"},
      {"/api/v1/namespaces", "{\"id\":\"h-far\",\"name\":\"far\",\"departmentId\":\"h-other\"}"},
      {"/api/v1/namespaces/h-ns/plugins/opendatabot", "{}"},
  };
  for (size_t i = 0; admin && i < sizeof items / sizeof items[0]; i++) {
    json_t *r = ac_test_json(&srv, "POST", items[i][0], admin, items[i][1], 201, NULL);
    if (!r)
      return -1;
    json_decref(r);
  }
  return admin ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  return ac_test_server_stop(&srv) == 0 ? 0 : -1;
}

static void query_results_match_the_contract(void **state) {
  (void)state;
  /* 00032129 has a valid EDRPOU control digit, 12345678 does not */
  json_t *r = ac_test_json(&srv, "POST", "/api/v1/namespaces/h-ns/query", admin,
                           "{\"query\":\"check 00032129 and 12345678\",\"locale\":\"uk\"}", 200,
                           "query-response.json");
  assert_non_null(r);
  const json_t *results = json_object_get(r, "results");
  assert_int_equal(json_array_size(results), 2);
  size_t i;
  json_t *e;
  json_array_foreach(results, i, e) {
    assert_true(ac_test_schema_valid("plugin-result.json", e));
    assert_string_equal(json_string_value(json_object_get(e, "pluginId")), "opendatabot");
  }
  assert_int_equal(json_array_size(json_object_get(r, "errors")), 0);
  json_decref(r);
  /* a namespace with nothing enabled answers empty lists */
  r = ac_test_json(&srv, "POST", "/api/v1/namespaces/h-empty/query", admin, "{\"query\":\"x\"}", 200,
                   "query-response.json");
  assert_non_null(r);
  assert_int_equal(json_array_size(json_object_get(r, "results")), 0);
  json_decref(r);
}

static void events_are_accepted_and_readable(void **state) {
  (void)state;
  json_t *a = ac_test_json(&srv, "POST", "/api/v1/namespaces/h-ns/events", admin,
                           "{\"type\":\"approval.created\",\"approvalId\":\"ap-1\",\"data\":{\"n\":1},"
                           "\"idempotencyKey\":\"key-1\"}",
                           202, "event-accepted.json");
  assert_non_null(a);
  assert_string_equal(json_string_value(json_object_get(a, "status")), "queued");
  const char *id = json_string_value(json_object_get(a, "eventId"));
  /* the same idempotency key: the first event, 200 */
  json_t *again = ac_test_json(&srv, "POST", "/api/v1/namespaces/h-ns/events", admin,
                               "{\"type\":\"approval.created\",\"approvalId\":\"ap-2\",\"data\":{},"
                               "\"idempotencyKey\":\"key-1\"}",
                               200, "event-accepted.json");
  assert_non_null(again);
  assert_string_equal(json_string_value(json_object_get(again, "eventId")), id);
  json_decref(again);
  char path[160];
  snprintf(path, sizeof path, "/api/v1/namespaces/h-ns/events/%s", id);
  json_t *st = ac_test_json(&srv, "GET", path, admin, NULL, 200, "event-status.json");
  assert_non_null(st);
  assert_string_equal(json_string_value(json_object_get(st, "type")), "approval.created");
  json_decref(st);
  json_t *d = ac_test_json(&srv, "POST", "/api/v1/namespaces/h-ns/events", admin,
                           "{\"type\":\"document.ready\",\"documentId\":\"doc-1\",\"data\":{}}", 202,
                           "event-accepted.json");
  assert_non_null(d);
  json_decref(d);
  /* the event is not visible through another namespace */
  snprintf(path, sizeof path, "/api/v1/namespaces/h-empty/events/%s", id);
  json_t *p = ac_test_json(&srv, "GET", path, admin, NULL, 404, NULL);
  assert_non_null(p);
  json_decref(p);
  json_decref(a);
}

static void host_flow_errors(void **state) {
  (void)state;
  static const char *const near[] = {"h-dept", NULL};
  char *scoped = ac_test_token("scoped", ALL_PERMS, 0, near, 600);
  const struct {
    const char *method, *path, *body;
    const char *token;
    long status;
  } cases[] = {
      {"POST", "/api/v1/namespaces/h-ns/events", "{\"type\":\"nope\",\"approvalId\":\"a\"}", admin, 400},
      {"POST", "/api/v1/namespaces/h-ns/events", "{\"type\":\"approval.created\"}", admin, 400},
      {"POST", "/api/v1/namespaces/h-ns/events", "{\"type\":\"approval.created\",\"approvalId\":\"a\",\"data\":[]}", admin, 400},
      {"POST", "/api/v1/namespaces/h-ns/events", "{\"type\":", admin, 400},
      {"POST", "/api/v1/namespaces/h-ns/query", "{\"query\":5}", admin, 400},
      {"POST", "/api/v1/namespaces/h-ns/query", "{}", admin, 400},
      {"POST", "/api/v1/namespaces/no-ns/query", "{\"query\":\"x\"}", admin, 404},
      {"POST", "/api/v1/namespaces/no-ns/events", "{\"type\":\"document.ready\",\"documentId\":\"d\",\"data\":{}}", admin, 404},
      {"GET", "/api/v1/namespaces/h-ns/events/6f1c2e4a-3b5d-4c6e-8f70-1a2b3c4d5e6f", NULL, admin, 404},
      {"POST", "/api/v1/namespaces/bad%20ns/query", "{\"query\":\"x\"}", admin, 400},
      /* out of scope: like unknown */
      {"POST", "/api/v1/namespaces/h-far/query", "{\"query\":\"x\"}", scoped, 404},
      {"POST", "/api/v1/namespaces/h-far/events", "{\"type\":\"document.ready\",\"documentId\":\"d\",\"data\":{}}", scoped, 404},
      {"POST", "/api/v1/namespaces/h-ns/query", "{\"query\":\"x\"}", scoped, 200},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *p = ac_test_json(&srv, cases[i].method, cases[i].path, cases[i].token, cases[i].body,
                             cases[i].status, cases[i].status == 200 ? "query-response.json" : NULL);
    if (!p)
      fail_msg("case %zu: %s %s", i, cases[i].method, cases[i].path);
    json_decref(p);
  }
  /* 415 */
  ac_test_request req = {.method = "POST", .path = "/api/v1/namespaces/h-ns/query", .token = admin,
                         .content_type = "text/plain", .body = "{\"query\":\"x\"}"};
  ac_test_response res;
  ac_test_http(&srv, &req, &res);
  assert_true(ac_test_expect(&res, 415, NULL));
  ac_test_response_free(&res);
  free(scoped);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(query_results_match_the_contract),
      cmocka_unit_test(events_are_accepted_and_readable),
      cmocka_unit_test(host_flow_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
