/* test_api_tenancy.c — the real server: departments and namespaces
 * (create, list, get), department-subtree scope, and the request-level
 * errors every JSON route shares (400, 409, 413, 415). */
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

static ac_test_server srv;
static char *admin; /* global, canManageNamespaces */

/* The tree:  t-root ─┬─ t-mid ─┬─ t-leaf1      namespaces: ns-root, ns-mid,
 *                    │         └─ t-leaf2                  ns-leaf1, ns-sib
 *                    └─ t-sib                                                  */
static const struct {
  const char *id, *parent, *ns;
} tree[] = {{"t-root", NULL, "ns-root"},
            {"t-mid", "t-root", "ns-mid"},
            {"t-leaf1", "t-mid", "ns-leaf1"},
            {"t-leaf2", "t-mid", NULL},
            {"t-sib", "t-root", "ns-sib"}};

static int setup(void **state) {
  (void)state;
  if (ac_test_server_start(&srv, "api_tenancy", NULL) != 0)
    return -1;
  admin = ac_test_token("admin", AC_PERM_MANAGE_NAMESPACES, 1, NULL, 600);
  return admin ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  return ac_test_server_stop(&srv) == 0 ? 0 : -1;
}

static void create_tree(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof tree / sizeof tree[0]; i++) {
    json_t *body = json_pack("{s:s, s:s, s:s?}", "id", tree[i].id, "name", tree[i].id, "parentId",
                             tree[i].parent);
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *d = ac_test_json(&srv, "POST", "/api/v1/departments", admin, text, 201, "department.json");
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "id")), tree[i].id);
    if (tree[i].parent)
      assert_string_equal(json_string_value(json_object_get(d, "parentId")), tree[i].parent);
    else
      assert_true(json_is_null(json_object_get(d, "parentId")));
    json_decref(d);
    free(text);
    json_decref(body);
  }
  for (size_t i = 0; i < sizeof tree / sizeof tree[0]; i++) {
    if (!tree[i].ns)
      continue;
    char body[256];
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"name\":\"Namespace %s\",\"departmentId\":\"%s\"}",
             tree[i].ns, tree[i].ns, tree[i].id);
    json_t *n = ac_test_json(&srv, "POST", "/api/v1/namespaces", admin, body, 201, "namespace.json");
    assert_non_null(n);
    assert_string_equal(json_string_value(json_object_get(n, "departmentId")), tree[i].id);
    json_decref(n);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s", tree[i].ns);
    n = ac_test_json(&srv, "GET", path, admin, NULL, 200, "namespace.json");
    assert_non_null(n);
    char name[128];
    snprintf(name, sizeof name, "Namespace %s", tree[i].ns);
    assert_string_equal(json_string_value(json_object_get(n, "name")), name);
    json_decref(n);
  }
}

static void generated_ids_are_uuids(void **state) {
  (void)state;
  json_t *d = ac_test_json(&srv, "POST", "/api/v1/departments", admin,
                           "{\"name\":\"no id\",\"id\":null}", 201, "department.json");
  assert_non_null(d);
  const char *id = json_string_value(json_object_get(d, "id"));
  assert_int_equal(strlen(id), 36);
  assert_true(id[8] == '-' && id[13] == '-' && id[14] == '4');
  char body[200];
  snprintf(body, sizeof body, "{\"name\":\"generated\",\"departmentId\":\"%s\"}", id);
  json_t *n = ac_test_json(&srv, "POST", "/api/v1/namespaces", admin, body, 201, "namespace.json");
  assert_non_null(n);
  assert_int_equal(strlen(json_string_value(json_object_get(n, "id"))), 36);
  assert_string_not_equal(json_string_value(json_object_get(n, "id")), id);
  json_decref(n);
  json_decref(d);
}

/* The ids of list[key] as one sorted, comma-separated string. */
static void ids_of(const json_t *doc, const char *key, char *out, size_t size) {
  const char *ids[64];
  size_t n = 0, i;
  json_t *item;
  json_array_foreach(json_object_get(doc, key), i, item) if (n < 64) ids[n++] =
      json_string_value(json_object_get(item, "id"));
  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n; b++)
      if (strcmp(ids[a], ids[b]) > 0) {
        const char *t = ids[a];
        ids[a] = ids[b];
        ids[b] = t;
      }
  size_t k = 0;
  out[0] = '\0';
  for (size_t a = 0; a < n && k < size; a++)
    k += (size_t)snprintf(out + k, size - k, "%s%s", a ? "," : "", ids[a]);
}

static void non_global_sees_its_subtree(void **state) {
  (void)state;
  static const struct {
    const char *const depts[3];
    const char *departments, *namespaces;
  } cases[] = {
      {{"t-mid", NULL}, "t-leaf1,t-leaf2,t-mid", "ns-leaf1,ns-mid"},
      {{"t-leaf1", NULL}, "t-leaf1", "ns-leaf1"},
      {{"t-sib", "t-leaf2", NULL}, "t-leaf2,t-sib", "ns-sib"},
      {{NULL}, "", ""},
      {{"no-such-dept", NULL}, "", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *t = ac_test_token("local", AC_PERM_MANAGE_NAMESPACES, 0, cases[i].depts, 600);
    char got[512];
    json_t *d = ac_test_json(&srv, "GET", "/api/v1/departments", t, NULL, 200, "department-list.json");
    assert_non_null(d);
    ids_of(d, "departments", got, sizeof got);
    if (strcmp(got, cases[i].departments) != 0)
      fail_msg("case %zu: departments %s, expected %s", i, got, cases[i].departments);
    json_decref(d);
    json_t *n = ac_test_json(&srv, "GET", "/api/v1/namespaces", t, NULL, 200, "namespace-list.json");
    assert_non_null(n);
    ids_of(n, "namespaces", got, sizeof got);
    if (strcmp(got, cases[i].namespaces) != 0)
      fail_msg("case %zu: namespaces %s, expected %s", i, got, cases[i].namespaces);
    json_decref(n);
    free(t);
  }
  /* a global token sees everything */
  json_t *d = ac_test_json(&srv, "GET", "/api/v1/departments", admin, NULL, 200, "department-list.json");
  assert_non_null(d);
  char got[1024];
  ids_of(d, "departments", got, sizeof got);
  assert_non_null(strstr(got, "t-leaf1,t-leaf2,t-mid,t-root,t-sib"));
  json_decref(d);
}

/* Out of scope answers exactly like unknown: same status, same body. */
static void out_of_scope_is_not_found(void **state) {
  (void)state;
  static const char *const depts[] = {"t-mid", NULL};
  char *t = ac_test_token("local", AC_PERM_MANAGE_NAMESPACES | AC_PERM_MANAGE_PLUGINS, 0, depts, 600);
  static const char *const pairs[][2] = {
      {"/api/v1/namespaces/ns-sib", "/api/v1/namespaces/ns-none"},
      {"/api/v1/namespaces/ns-root", "/api/v1/namespaces/ns-none"},
      {"/api/v1/namespaces/ns-sib/plugins", "/api/v1/namespaces/ns-none/plugins"},
  };
  for (size_t i = 0; i < 3; i++) {
    ac_test_response a, b;
    ac_test_call(&srv, "GET", pairs[i][0], t, NULL, &a);
    ac_test_call(&srv, "GET", pairs[i][1], t, NULL, &b);
    assert_true(ac_test_expect(&a, 404, NULL));
    assert_true(ac_test_expect(&b, 404, NULL));
    assert_string_equal(a.body, b.body);
    ac_test_response_free(&a);
    ac_test_response_free(&b);
  }
  /* in scope: the namespace itself and one below */
  json_t *n = ac_test_json(&srv, "GET", "/api/v1/namespaces/ns-leaf1", t, NULL, 200, "namespace.json");
  assert_non_null(n);
  json_decref(n);
  n = ac_test_json(&srv, "GET", "/api/v1/namespaces/ns-mid", t, NULL, 200, "namespace.json");
  assert_non_null(n);
  json_decref(n);
  /* creating a namespace: only under a department in scope; outside it
   * answers like an unknown department */
  n = ac_test_json(&srv, "POST", "/api/v1/namespaces", t,
                   "{\"id\":\"ns-leaf2\",\"name\":\"x\",\"departmentId\":\"t-leaf2\"}", 201,
                   "namespace.json");
  assert_non_null(n);
  json_decref(n);
  ac_test_response a, b;
  ac_test_call(&srv, "POST", "/api/v1/namespaces", t,
               "{\"id\":\"ns-x\",\"name\":\"x\",\"departmentId\":\"t-sib\"}", &a);
  ac_test_call(&srv, "POST", "/api/v1/namespaces", t,
               "{\"id\":\"ns-x\",\"name\":\"x\",\"departmentId\":\"t-none\"}", &b);
  assert_true(ac_test_expect(&a, 404, NULL));
  assert_true(ac_test_expect(&b, 404, NULL));
  assert_int_equal(json_string_length(json_object_get(a.json, "detail")) > 0, 1);
  ac_test_response_free(&a);
  ac_test_response_free(&b);
  free(t);
}

/* Name limits count characters, as the database does: 200 Cyrillic
 * letters (400 bytes) are a name, 201 are not. */
static void names_count_characters(void **state) {
  (void)state;
  char name[1024], body[1200];
  size_t len = 0;
  for (int i = 0; i < 200; i++)
    len += (size_t)snprintf(name + len, sizeof name - len, "%s", "ж");
  snprintf(body, sizeof body, "{\"id\":\"t-cyr\",\"name\":\"%s\"}", name);
  json_t *d = ac_test_json(&srv, "POST", "/api/v1/departments", admin, body, 201, "department.json");
  assert_non_null(d);
  assert_int_equal(json_string_length(json_object_get(d, "name")), 400);
  json_decref(d);
  snprintf(body, sizeof body, "{\"id\":\"t-cyr2\",\"name\":\"%sж\"}", name);
  d = ac_test_json(&srv, "POST", "/api/v1/departments", admin, body, 400, NULL);
  assert_non_null(d);
  json_decref(d);
}

static void bad_requests_answer_400(void **state) {
  (void)state;
  char long_id[140], long_name[260], body_long_id[300], body_long_name[400];
  memset(long_id, 'a', 129);
  long_id[129] = '\0';
  memset(long_name, 'n', 201);
  long_name[201] = '\0';
  snprintf(body_long_id, sizeof body_long_id, "{\"id\":\"%s\",\"name\":\"x\"}", long_id);
  snprintf(body_long_name, sizeof body_long_name, "{\"name\":\"%s\"}", long_name);
  const struct {
    const char *method, *path, *body;
  } cases[] = {
      {"POST", "/api/v1/departments", "{\"name\":"},
      {"POST", "/api/v1/departments", "{\"name\":\"a\",}"},
      {"POST", "/api/v1/departments", "[]"},
      {"POST", "/api/v1/departments", "\"x\""},
      {"POST", "/api/v1/departments", ""},
      {"POST", "/api/v1/departments", "{\"name\":\"a\",\"name\":\"b\"}"},
      {"POST", "/api/v1/departments", "{}"},
      {"POST", "/api/v1/departments", "{\"name\":\"\"}"},
      {"POST", "/api/v1/departments", "{\"name\":5}"},
      {"POST", "/api/v1/departments", body_long_name},
      {"POST", "/api/v1/departments", "{\"id\":\"bad id\",\"name\":\"x\"}"},
      {"POST", "/api/v1/departments", "{\"id\":\"-x\",\"name\":\"x\"}"},
      {"POST", "/api/v1/departments", "{\"id\":\"\",\"name\":\"x\"}"},
      {"POST", "/api/v1/departments", "{\"id\":7,\"name\":\"x\"}"},
      {"POST", "/api/v1/departments", body_long_id},
      {"POST", "/api/v1/departments", "{\"name\":\"x\",\"parentId\":3}"},
      {"POST", "/api/v1/departments", "{\"name\":\"x\",\"parentId\":\"a/b\"}"},
      {"POST", "/api/v1/departments", "{\"id\":\"selfie\",\"name\":\"x\",\"parentId\":\"selfie\"}"},
      {"POST", "/api/v1/namespaces", "{\"name\":\"x\"}"},
      {"POST", "/api/v1/namespaces", "{\"name\":\"x\",\"departmentId\":null}"},
      {"POST", "/api/v1/namespaces", "{\"name\":\"x\",\"departmentId\":[\"t-root\"]}"},
      {"POST", "/api/v1/namespaces", "{\"name\":\"x\",\"departmentId\":\"t root\"}"},
      {"POST", "/api/v1/namespaces", "{\"id\":\"a b\",\"name\":\"x\",\"departmentId\":\"t-root\"}"},
      {"POST", "/api/v1/namespaces", "{\"id\":\"ok\",\"name\":true,\"departmentId\":\"t-root\"}"},
      {"GET", "/api/v1/namespaces/bad%20id", NULL},
      {"GET", "/api/v1/namespaces/-dash", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *p = ac_test_json(&srv, cases[i].method, cases[i].path, admin, cases[i].body, 400, NULL);
    if (!p)
      fail_msg("case %zu: %s %s %s", i, cases[i].method, cases[i].path,
               cases[i].body ? cases[i].body : "");
    assert_true(json_string_length(json_object_get(p, "detail")) > 0);
    json_decref(p);
  }
}

static void duplicates_and_unknown_references(void **state) {
  (void)state;
  static const struct {
    const char *path, *body;
    long status;
  } cases[] = {
      {"/api/v1/departments", "{\"id\":\"t-root\",\"name\":\"again\"}", 409},
      {"/api/v1/departments", "{\"id\":\"T-ROOT\",\"name\":\"case differs\"}", 201},
      {"/api/v1/namespaces", "{\"id\":\"ns-mid\",\"name\":\"again\",\"departmentId\":\"t-leaf1\"}", 409},
      {"/api/v1/departments", "{\"id\":\"orphan\",\"name\":\"x\",\"parentId\":\"no-such\"}", 404},
      {"/api/v1/namespaces", "{\"id\":\"orphan\",\"name\":\"x\",\"departmentId\":\"no-such\"}", 404},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *p = ac_test_json(&srv, "POST", cases[i].path, admin, cases[i].body, cases[i].status,
                             cases[i].status == 201 ? "department.json" : NULL);
    if (!p)
      fail_msg("case %zu: POST %s %s", i, cases[i].path, cases[i].body);
    json_decref(p);
  }
  /* the refused writes left nothing behind */
  char *n = ac_test_server_query(&srv, 0, "SELECT count(*) FROM departments WHERE id = 'orphan'", 0,
                                 NULL);
  assert_non_null(n);
  assert_string_equal(n, "0");
  free(n);
}

static void content_type_must_be_json(void **state) {
  (void)state;
  static const char *const types[] = {NULL, "text/plain", "application/jsonx",
                                      "application/x-www-form-urlencoded", "multipart/form-data"};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    ac_test_request req = {.method = "POST", .path = "/api/v1/departments", .token = admin,
                           .content_type = types[i], .body = "{\"name\":\"ct\"}"};
    ac_test_response res;
    ac_test_http(&srv, &req, &res);
    if (!ac_test_expect(&res, 415, NULL))
      fail_msg("content type %s", types[i] ? types[i] : "(none)");
    ac_test_response_free(&res);
  }
  /* parameters and case are fine */
  static const char *const fine[] = {"application/json; charset=utf-8", "Application/JSON"};
  for (size_t i = 0; i < 2; i++) {
    ac_test_request req = {.method = "POST", .path = "/api/v1/departments", .token = admin,
                           .content_type = fine[i], .body = "{\"name\":\"ct ok\"}"};
    ac_test_response res;
    ac_test_http(&srv, &req, &res);
    if (!ac_test_expect(&res, 201, "department.json"))
      fail_msg("content type %s", fine[i]);
    ac_test_response_free(&res);
  }
}

/* A body over 1 MiB: announced by Content-Length (with and without Expect:
 * 100-continue) or sent chunked. Exactly 1 MiB is still read. */
static void bodies_over_one_mib_answer_413(void **state) {
  (void)state;
  size_t big = (1u << 20) + 1;
  char *body = malloc(big + 1);
  memset(body, ' ', big);
  body[0] = '{';
  memcpy(body + big - 14, "\"name\":\"big\"}", 13);
  body[big - 1] = '}';
  body[big] = '\0';
  static const char *const expect[] = {"Expect: 100-continue", NULL};
  const struct {
    int chunked;
    const char *const *headers;
    const char *label;
  } cases[] = {{0, NULL, "content-length"}, {0, expect, "expect 100-continue"}, {1, NULL, "chunked"}};
  for (size_t i = 0; i < 3; i++) {
    ac_test_request req = {.method = "POST", .path = "/api/v1/departments", .token = admin,
                           .content_type = "application/json", .body = body, .body_len = big,
                           .chunked = cases[i].chunked, .headers = cases[i].headers};
    ac_test_response res;
    ac_test_http(&srv, &req, &res);
    if (!ac_test_expect(&res, 413, NULL))
      fail_msg("%s: %s", cases[i].label, res.err);
    ac_test_response_free(&res);
  }
  /* 1 MiB exactly is accepted (here: parsed, and its long name refused) */
  size_t max = 1u << 20;
  memset(body, ' ', max);
  body[0] = '{';
  memcpy(body + 1, "\"name\":\"", 8);
  memset(body + 9, 'n', max - 11);
  memcpy(body + max - 2, "\"}", 2);
  for (int chunked = 0; chunked < 2; chunked++) {
    ac_test_request req = {.method = "POST", .path = "/api/v1/departments", .token = admin,
                           .content_type = "application/json", .body = body, .body_len = max,
                           .chunked = chunked};
    ac_test_response res;
    ac_test_http(&srv, &req, &res);
    assert_true(ac_test_expect(&res, 400, NULL));
    ac_test_response_free(&res);
  }
  free(body);
  /* the server still answers on a new connection */
  json_t *ok = ac_test_json(&srv, "GET", "/api/v1/departments", admin, NULL, 200, "department-list.json");
  assert_non_null(ok);
  json_decref(ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(create_tree),
      cmocka_unit_test(generated_ids_are_uuids),
      cmocka_unit_test(non_global_sees_its_subtree),
      cmocka_unit_test(out_of_scope_is_not_found),
      cmocka_unit_test(bad_requests_answer_400),
      cmocka_unit_test(names_count_characters),
      cmocka_unit_test(duplicates_and_unknown_references),
      cmocka_unit_test(content_type_must_be_json),
      cmocka_unit_test(bodies_over_one_mib_answer_413),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
