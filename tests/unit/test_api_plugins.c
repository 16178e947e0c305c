/* test_api_plugins.c — the real server: each namespace's plugin configs
 * (enable, list, merge-patch, disable) with defaults, secret masking,
 * If-Match/ETag, 404/409/412/422, scope, concurrency and the audit log. */
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

#define MASK "********"
#define HOOK_URL "https://hooks.example.com/in"

static ac_test_server srv;
static char *admin; /* global, canManagePlugins + canManageNamespaces */

static int setup(void **state) {
  (void)state;
  if (ac_test_server_start(&srv, "api_plugins", NULL) != 0)
    return -1;
  admin = ac_test_token("admin", AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES, 1, NULL, 600);
  static const char *const items[][3] = {
      {"/api/v1/departments", "{\"id\":\"p-root\",\"name\":\"root\"}", NULL},
      {"/api/v1/departments", "{\"id\":\"p-child\",\"name\":\"child\",\"parentId\":\"p-root\"}", NULL},
      {"/api/v1/departments", "{\"id\":\"p-other\",\"name\":\"other\"}", NULL},
      {"/api/v1/namespaces", "{\"id\":\"p-ns\",\"name\":\"ns\",\"departmentId\":\"p-root\"}", NULL},
      {"/api/v1/namespaces", "{\"id\":\"p-ns2\",\"name\":\"ns2\",\"departmentId\":\"p-root\"}", NULL},
      {"/api/v1/namespaces", "{\"id\":\"p-child-ns\",\"name\":\"c\",\"departmentId\":\"p-child\"}", NULL},
      {"/api/v1/namespaces", "{\"id\":\"p-mask\",\"name\":\"m\",\"departmentId\":\"p-root\"}", NULL},
      {"/api/v1/namespaces", "{\"id\":\"p-other-ns\",\"name\":\"o\",\"departmentId\":\"p-other\"}", NULL},
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

/* The stored config member (secrets in clear), read from the database. */
static char *stored(const char *ns, const char *plugin, const char *jsonpath) {
  const char *p[] = {ns, plugin, jsonpath};
  char *v = ac_test_server_query(
      &srv, 0,
      "SELECT COALESCE(config #>> string_to_array($3, ','), '<absent>') FROM namespace_plugins "
      "WHERE namespace_id = $1 AND plugin_id = $2",
      3, p);
  assert_non_null(v);
  return v;
}

static void assert_stored(const char *ns, const char *plugin, const char *jsonpath, const char *want) {
  char *v = stored(ns, plugin, jsonpath);
  if (strcmp(v, want) != 0)
    fail_msg("%s/%s config %s: stored %s, expected %s", ns, plugin, jsonpath, v, want);
  free(v);
}

static const char *str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

static void enable_fills_defaults_and_masks_secrets(void **state) {
  (void)state;
  ac_test_response res;
  ac_test_call(&srv, "POST", "/api/v1/namespaces/p-ns/plugins/opendatabot", admin,
               "{\"config\":{\"apiKey\":\"k-123\"}}", &res);
  assert_true(ac_test_expect(&res, 201, "plugin-record.json"));
  char etag[64];
  assert_non_null(ac_test_header(&res, "ETag", etag, sizeof etag));
  assert_string_equal(etag, "\"1\"");
  const json_t *rec = res.json, *cfg = json_object_get(rec, "config");
  assert_string_equal(str(rec, "namespaceId"), "p-ns");
  assert_string_equal(str(rec, "pluginId"), "opendatabot");
  assert_true(json_is_true(json_object_get(rec, "enabled")));
  assert_int_equal(json_integer_value(json_object_get(rec, "version")), 1);
  assert_string_equal(str(rec, "updatedBy"), "admin");
  assert_string_equal(str(cfg, "apiKey"), MASK);
  assert_string_equal(str(cfg, "mode"), "mock"); /* defaults filled */
  assert_non_null(str(cfg, "baseUrl"));
  ac_test_response_free(&res);
  assert_stored("p-ns", "opendatabot", "apiKey", "k-123");
  assert_stored("p-ns", "opendatabot", "mode", "mock");

  /* enabled: false, and a secret with other members */
  json_t *w = ac_test_json(&srv, "POST", "/api/v1/namespaces/p-ns/plugins/webhooks", admin,
                           "{\"enabled\":false,\"config\":{\"url\":\"" HOOK_URL "\",\"secret\":"
                           "\"s3cret\",\"timeoutMs\":1000,\"headers\":{\"x-a\":\"1\",\"x-b\":\"2\"}}}",
                           201, "plugin-record.json");
  assert_non_null(w);
  assert_true(json_is_false(json_object_get(w, "enabled")));
  assert_string_equal(str(json_object_get(w, "config"), "secret"), MASK);
  assert_string_equal(str(json_object_get(w, "config"), "url"), HOOK_URL);
  json_decref(w);
  assert_stored("p-ns", "webhooks", "secret", "s3cret");

  /* a masked secret sent on create is not stored as the secret */
  json_t *m = ac_test_json(&srv, "POST", "/api/v1/namespaces/p-mask/plugins/webhooks", admin,
                           "{\"config\":{\"url\":\"" HOOK_URL "\",\"secret\":\"" MASK "\"}}",
                           201, "plugin-record.json");
  assert_non_null(m);
  assert_null(json_object_get(json_object_get(m, "config"), "secret"));
  json_decref(m);
  assert_stored("p-mask", "webhooks", "secret", "<absent>");

  /* no config at all: {} with defaults */
  json_t *o = ac_test_json(&srv, "POST", "/api/v1/namespaces/p-ns2/plugins/opendatabot", admin, "{}",
                           201, "plugin-record.json");
  assert_non_null(o);
  assert_string_equal(str(json_object_get(o, "config"), "mode"), "mock");
  assert_null(json_object_get(json_object_get(o, "config"), "apiKey"));
  json_decref(o);
}

static void list_masks_secrets(void **state) {
  (void)state;
  json_t *l = ac_test_json(&srv, "GET", "/api/v1/namespaces/p-ns/plugins", admin, NULL, 200,
                           "plugin-record-list.json");
  assert_non_null(l);
  const json_t *plugins = json_object_get(l, "plugins");
  assert_int_equal(json_array_size(plugins), 2);
  assert_string_equal(str(json_array_get(plugins, 0), "pluginId"), "opendatabot");
  assert_string_equal(str(json_object_get(json_array_get(plugins, 0), "config"), "apiKey"), MASK);
  assert_string_equal(str(json_array_get(plugins, 1), "pluginId"), "webhooks");
  assert_string_equal(str(json_object_get(json_array_get(plugins, 1), "config"), "secret"), MASK);
  char *text = json_dumps(l, JSON_COMPACT);
  assert_null(strstr(text, "s3cret"));
  assert_null(strstr(text, "k-123"));
  free(text);
  json_decref(l);
  /* a namespace without plugins lists none */
  l = ac_test_json(&srv, "GET", "/api/v1/namespaces/p-child-ns/plugins", admin, NULL, 200,
                   "plugin-record-list.json");
  assert_non_null(l);
  assert_int_equal(json_array_size(json_object_get(l, "plugins")), 0);
  json_decref(l);
}

static void conflicts_and_not_found(void **state) {
  (void)state;
  static const struct {
    const char *method, *path, *body;
    long status;
  } cases[] = {
      {"POST", "/api/v1/namespaces/p-ns/plugins/opendatabot", "{}", 409},
      {"POST", "/api/v1/namespaces/p-ns/plugins/webhooks", "{\"config\":{\"url\":\"" HOOK_URL "\"}}", 409},
      {"POST", "/api/v1/namespaces/p-ns/plugins/nosuch", "{}", 404},
      {"PATCH", "/api/v1/namespaces/p-ns/plugins/nosuch", "{\"enabled\":true}", 404},
      {"DELETE", "/api/v1/namespaces/p-ns/plugins/nosuch", NULL, 404},
      {"POST", "/api/v1/namespaces/no-ns/plugins/opendatabot", "{}", 404},
      {"GET", "/api/v1/namespaces/no-ns/plugins", NULL, 404},
      {"PATCH", "/api/v1/namespaces/no-ns/plugins/opendatabot", "{\"enabled\":true}", 404},
      {"DELETE", "/api/v1/namespaces/no-ns/plugins/opendatabot", NULL, 404},
      /* known plugin, not enabled in this namespace */
      {"PATCH", "/api/v1/namespaces/p-ns2/plugins/webhooks", "{\"enabled\":true}", 404},
      {"DELETE", "/api/v1/namespaces/p-ns2/plugins/webhooks", NULL, 404},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *p = ac_test_json(&srv, cases[i].method, cases[i].path, admin, cases[i].body,
                             cases[i].status, NULL);
    if (!p)
      fail_msg("case %zu: %s %s", i, cases[i].method, cases[i].path);
    json_decref(p);
  }
  /* the refused enable left the stored row alone */
  assert_stored("p-ns", "opendatabot", "apiKey", "k-123");
}

static void bad_requests_answer_400(void **state) {
  (void)state;
  static const struct {
    const char *method, *path, *body;
  } cases[] = {
      {"POST", "/api/v1/namespaces/p-ns2/plugins/webhooks", "{\"config\":[]}"},
      {"POST", "/api/v1/namespaces/p-ns2/plugins/webhooks", "{\"config\":\"url\"}"},
      {"POST", "/api/v1/namespaces/p-ns2/plugins/webhooks", "{\"enabled\":\"yes\"}"},
      {"POST", "/api/v1/namespaces/p-ns2/plugins/webhooks", "{\"config\":{}"},
      {"POST", "/api/v1/namespaces/p-ns2/plugins/webhooks", "[{}]"},
      {"PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", "{}"},
      {"PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", "{\"enabled\":1}"},
      {"PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", "{\"config\":5}"},
      {"PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", "{\"config\":null}"},
      {"PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", "{\"config\":[1]}"},
      {"PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", "nope"},
      {"GET", "/api/v1/namespaces/bad%20id/plugins", NULL},
      {"POST", "/api/v1/namespaces/p-ns/plugins/Webhooks", "{}"},
      {"POST", "/api/v1/namespaces/p-ns/plugins/9lives", "{}"},
      {"PATCH", "/api/v1/namespaces/p-ns/plugins/a%20b", "{\"enabled\":true}"},
      {"DELETE", "/api/v1/namespaces/.hidden/plugins/webhooks", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *p = ac_test_json(&srv, cases[i].method, cases[i].path, admin, cases[i].body, 400, NULL);
    if (!p)
      fail_msg("case %zu: %s %s %s", i, cases[i].method, cases[i].path,
               cases[i].body ? cases[i].body : "");
    json_decref(p);
  }
  /* a string holding NUL is refused wherever JSON comes in, and the
   * detail says why in the API's terms */
  json_t *p = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", admin,
                           "{\"config\":{\"url\":\"http://a\\u0000b\"}}", 400, NULL);
  assert_non_null(p);
  const char *detail = json_string_value(json_object_get(p, "detail"));
  if (!detail || !strstr(detail, "\\u0000 (NUL)") || strstr(detail, "JSON_ALLOW_NUL"))
    fail_msg("detail: %s", detail ? detail : "(none)");
  json_decref(p);
  /* 415 and 413 on the plugin routes too */
  ac_test_request req = {.method = "PATCH", .path = "/api/v1/namespaces/p-ns/plugins/webhooks",
                         .token = admin, .content_type = "text/plain", .body = "{\"enabled\":true}"};
  ac_test_response res;
  ac_test_http(&srv, &req, &res);
  assert_true(ac_test_expect(&res, 415, NULL));
  ac_test_response_free(&res);
  size_t big = (1u << 20) + 100;
  char *body = malloc(big);
  memset(body, ' ', big);
  body[0] = '{';
  body[big - 1] = '}';
  for (int chunked = 0; chunked < 2; chunked++) {
    ac_test_request r2 = {.method = "POST", .path = "/api/v1/namespaces/p-ns2/plugins/webhooks",
                          .token = admin, .content_type = "application/json", .body = body,
                          .body_len = big, .chunked = chunked};
    ac_test_http(&srv, &r2, &res);
    assert_true(ac_test_expect(&res, 413, NULL));
    ac_test_response_free(&res);
  }
  free(body);
}

/* 422 lists every violation, each path prefixed /config. */
static int has_error(const json_t *errors, const char *path, const char *keyword) {
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e) if (strcmp(str(e, "path"), path) == 0 &&
                                       strcmp(str(e, "keyword"), keyword) == 0) return 1;
  return 0;
}

static void schema_violations_answer_422(void **state) {
  (void)state;
  json_t *p = ac_test_json(&srv, "POST", "/api/v1/namespaces/p-ns2/plugins/webhooks", admin,
                           "{\"config\":{\"url\":\"ftp://x.example\",\"timeoutMs\":5,\"events\":"
                           "[\"nope\",\"nope\"],\"extra\":1,\"headers\":{\"a\":1}}}",
                           422, NULL);
  assert_non_null(p);
  const json_t *errors = json_object_get(p, "errors");
  static const char *const expected[][2] = {
      {"/config/url", "pattern"},          {"/config/timeoutMs", "minimum"},
      {"/config/events/0", "enum"},         {"/config/events/1", "enum"},
      {"/config/events", "uniqueItems"},    {"/config/extra", "additionalProperties"},
      {"/config/headers/a", "type"},
  };
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
    if (!has_error(errors, expected[i][0], expected[i][1]))
      fail_msg("422 lacks %s %s", expected[i][0], expected[i][1]);
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e) assert_true(strncmp(str(e, "path"), "/config", 7) == 0);
  json_decref(p);

  /* a required member: the error points at the config object itself */
  p = ac_test_json(&srv, "POST", "/api/v1/namespaces/p-ns2/plugins/webhooks", admin, "{}", 422, NULL);
  assert_non_null(p);
  assert_true(has_error(json_object_get(p, "errors"), "/config", "required"));
  json_decref(p);
  char *n = ac_test_server_query(
      &srv, 0, "SELECT count(*) FROM namespace_plugins WHERE namespace_id = 'p-ns2' AND plugin_id = 'webhooks'",
      0, NULL);
  assert_string_equal(n, "0");
  free(n);

  /* PATCH that breaks the schema: 422, nothing stored */
  p = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", admin,
                   "{\"config\":{\"url\":null,\"timeoutMs\":\"fast\"}}", 422, NULL);
  assert_non_null(p);
  assert_true(has_error(json_object_get(p, "errors"), "/config", "required"));
  assert_true(has_error(json_object_get(p, "errors"), "/config/timeoutMs", "type"));
  json_decref(p);
  assert_stored("p-ns", "webhooks", "url", HOOK_URL);
  assert_stored("p-ns", "webhooks", "timeoutMs", "1000");
}

static long long current_version(const char *ns, const char *plugin) {
  const char *p[] = {ns, plugin};
  char *v = ac_test_server_query(&srv, 0,
                                 "SELECT version FROM namespace_plugins WHERE namespace_id = $1 AND "
                                 "plugin_id = $2",
                                 2, p);
  assert_non_null(v);
  long long n = strtoll(v, NULL, 10);
  free(v);
  return n;
}

/* RFC 7396: null deletes, objects merge, the rest replaces; a masked
 * secret sent back keeps the stored one. */
static void patch_merges_and_keeps_secrets(void **state) {
  (void)state;
  long long v0 = current_version("p-ns", "webhooks");
  ac_test_response res;
  ac_test_call(&srv, "PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", admin,
               "{\"config\":{\"headers\":{\"x-a\":null,\"x-c\":\"3\"},\"timeoutMs\":null,"
               "\"secret\":\"" MASK "\"}}",
               &res);
  assert_true(ac_test_expect(&res, 200, "plugin-record.json"));
  const json_t *cfg = json_object_get(res.json, "config");
  json_t *want_headers = json_pack("{s:s, s:s}", "x-b", "2", "x-c", "3");
  assert_true(json_equal(json_object_get(cfg, "headers"), want_headers));
  json_decref(want_headers);
  assert_null(json_object_get(cfg, "timeoutMs"));
  assert_string_equal(str(cfg, "secret"), MASK);
  assert_string_equal(str(cfg, "url"), HOOK_URL);
  assert_true(json_is_false(json_object_get(res.json, "enabled"))); /* untouched */
  assert_int_equal(json_integer_value(json_object_get(res.json, "version")), v0 + 1);
  char etag[64], want[64];
  snprintf(want, sizeof want, "\"%lld\"", v0 + 1);
  assert_non_null(ac_test_header(&res, "ETag", etag, sizeof etag));
  assert_string_equal(etag, want);
  ac_test_response_free(&res);
  assert_stored("p-ns", "webhooks", "secret", "s3cret");
  assert_stored("p-ns", "webhooks", "timeoutMs", "<absent>");
  assert_stored("p-ns", "webhooks", "headers,x-a", "<absent>");

  /* only enabled: the config (and its secret) stays */
  json_t *r = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", admin,
                           "{\"enabled\":true}", 200, "plugin-record.json");
  assert_non_null(r);
  assert_true(json_is_true(json_object_get(r, "enabled")));
  assert_string_equal(str(json_object_get(r, "config"), "secret"), MASK);
  json_decref(r);
  assert_stored("p-ns", "webhooks", "secret", "s3cret");

  /* another member changes, the masked secret is sent back alongside */
  r = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", admin,
                   "{\"config\":{\"url\":\"https://new.example.com/y\",\"secret\":\"" MASK "\"}}",
                   200, "plugin-record.json");
  assert_non_null(r);
  json_decref(r);
  assert_stored("p-ns", "webhooks", "secret", "s3cret");
  assert_stored("p-ns", "webhooks", "url", "https://new.example.com/y");

  /* a new secret replaces the old one and is masked in the answer */
  r = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/p-ns/plugins/webhooks", admin,
                   "{\"config\":{\"secret\":\"n3w-secret\"}}", 200, "plugin-record.json");
  assert_non_null(r);
  assert_string_equal(str(json_object_get(r, "config"), "secret"), MASK);
  json_decref(r);
  assert_stored("p-ns", "webhooks", "secret", "n3w-secret");

  /* deleting the secret with null */
  r = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/p-ns/plugins/opendatabot", admin,
                   "{\"config\":{\"apiKey\":null,\"mode\":\"api\"}}", 200, "plugin-record.json");
  assert_non_null(r);
  assert_null(json_object_get(json_object_get(r, "config"), "apiKey"));
  assert_string_equal(str(json_object_get(r, "config"), "mode"), "api");
  json_decref(r);
  assert_stored("p-ns", "opendatabot", "apiKey", "<absent>");
}

static void if_match_and_etag(void **state) {
  (void)state;
  long long v = current_version("p-ns", "webhooks");
  char stale[64], cur[64], weak[64], next[64];
  snprintf(stale, sizeof stale, "If-Match: \"%lld\"", v - 1);
  snprintf(cur, sizeof cur, "If-Match: \"%lld\"", v);
  snprintf(weak, sizeof weak, "If-Match: W/\"%lld\"", v + 1);
  snprintf(next, sizeof next, "\"%lld\"", v + 1);
  const struct {
    const char *if_match;
    long status;
  } cases[] = {
      {stale, 412}, {"If-Match: \"999999\"", 412}, {"If-Match: garbage", 412},
      {cur, 200},   {weak, 200},                   {"If-Match: *", 200},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *headers[] = {cases[i].if_match, NULL};
    ac_test_request req = {.method = "PATCH", .path = "/api/v1/namespaces/p-ns/plugins/webhooks",
                           .token = admin, .content_type = "application/json",
                           .body = "{\"config\":{\"events\":[\"approval.created\"]}}",
                           .headers = headers};
    ac_test_response res;
    ac_test_http(&srv, &req, &res);
    if (!ac_test_expect(&res, cases[i].status,
                        cases[i].status == 200 ? "plugin-record.json" : NULL))
      fail_msg("case %zu: %s", i, cases[i].if_match);
    if (i == 3) { /* the ETag of the answer is the new version */
      char etag[64];
      assert_non_null(ac_test_header(&res, "ETag", etag, sizeof etag));
      assert_string_equal(etag, next);
    }
    ac_test_response_free(&res);
  }
  assert_int_equal(current_version("p-ns", "webhooks"), v + 3);
}

typedef struct {
  char if_match[64];
  const char *body;
  long status;
  pthread_barrier_t *barrier;
} patch_job;

static void *patch_thread(void *arg) {
  patch_job *j = arg;
  const char *headers[] = {j->if_match, NULL};
  ac_test_request req = {.method = "PATCH", .path = "/api/v1/namespaces/p-ns/plugins/webhooks",
                         .token = admin, .content_type = "application/json", .body = j->body,
                         .headers = headers};
  ac_test_response res;
  pthread_barrier_wait(j->barrier);
  j->status = ac_test_http(&srv, &req, &res);
  ac_test_response_free(&res);
  return NULL;
}

/* Two PATCHes with the same If-Match: exactly one wins, the other is 412. */
static void concurrent_patches_with_if_match(void **state) {
  (void)state;
  for (int round = 0; round < 5; round++) {
    long long v = current_version("p-ns", "webhooks");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    patch_job jobs[2] = {{.body = "{\"config\":{\"timeoutMs\":2000}}", .barrier = &barrier},
                         {.body = "{\"config\":{\"timeoutMs\":3000}}", .barrier = &barrier}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
      snprintf(jobs[i].if_match, sizeof jobs[i].if_match, "If-Match: \"%lld\"", v);
      pthread_create(&th[i], NULL, patch_thread, &jobs[i]);
    }
    for (int i = 0; i < 2; i++)
      pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    long a = jobs[0].status, b = jobs[1].status;
    if (!((a == 200 && b == 412) || (a == 412 && b == 200)))
      fail_msg("round %d: statuses %ld and %ld", round, a, b);
    assert_int_equal(current_version("p-ns", "webhooks"), v + 1);
    assert_stored("p-ns", "webhooks", "timeoutMs", a == 200 ? "2000" : "3000");
  }
  /* without If-Match both land, one after the other */
  long long v = current_version("p-ns", "webhooks");
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, 2);
  patch_job jobs[2] = {{.body = "{\"config\":{\"headers\":{\"x-1\":\"1\"}}}", .barrier = &barrier},
                       {.body = "{\"config\":{\"headers\":{\"x-2\":\"2\"}}}", .barrier = &barrier}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    snprintf(jobs[i].if_match, sizeof jobs[i].if_match, "X-Unused: 1");
    pthread_create(&th[i], NULL, patch_thread, &jobs[i]);
  }
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  assert_int_equal(jobs[0].status, 200);
  assert_int_equal(jobs[1].status, 200);
  assert_int_equal(current_version("p-ns", "webhooks"), v + 2);
  assert_stored("p-ns", "webhooks", "headers,x-1", "1");
  assert_stored("p-ns", "webhooks", "headers,x-2", "2");
}

static void scope_applies_to_plugin_routes(void **state) {
  (void)state;
  static const char *const depts[] = {"p-root", NULL};
  char *t = ac_test_token("scoped", AC_PERM_MANAGE_PLUGINS, 0, depts, 600);
  /* a namespace of a child department is in scope */
  json_t *r = ac_test_json(&srv, "POST", "/api/v1/namespaces/p-child-ns/plugins/opendatabot", t, "{}",
                           201, "plugin-record.json");
  assert_non_null(r);
  assert_string_equal(str(r, "updatedBy"), "scoped");
  json_decref(r);
  /* p-other-ns is not: every route answers exactly like an unknown namespace */
  static const struct {
    const char *method, *suffix, *body;
  } routes[] = {{"GET", "/plugins", NULL},
                {"POST", "/plugins/opendatabot", "{}"},
                {"PATCH", "/plugins/opendatabot", "{\"enabled\":false}"},
                {"DELETE", "/plugins/opendatabot", NULL}};
  for (size_t i = 0; i < 4; i++) {
    char a_path[128], b_path[128];
    snprintf(a_path, sizeof a_path, "/api/v1/namespaces/p-other-ns%s", routes[i].suffix);
    snprintf(b_path, sizeof b_path, "/api/v1/namespaces/p-none%s", routes[i].suffix);
    ac_test_response a, b;
    ac_test_call(&srv, routes[i].method, a_path, t, routes[i].body, &a);
    ac_test_call(&srv, routes[i].method, b_path, t, routes[i].body, &b);
    if (!ac_test_expect(&a, 404, NULL) || !ac_test_expect(&b, 404, NULL) ||
        strcmp(a.body, b.body) != 0)
      fail_msg("%s %s: out of scope differs from unknown", routes[i].method, routes[i].suffix);
    ac_test_response_free(&a);
    ac_test_response_free(&b);
  }
  char *n = ac_test_server_query(
      &srv, 0, "SELECT count(*) FROM namespace_plugins WHERE namespace_id = 'p-other-ns'", 0, NULL);
  assert_string_equal(n, "0");
  free(n);
  free(t);
}

static void delete_then_gone(void **state) {
  (void)state;
  char *gen_before = ac_test_server_query(
      &srv, 0, "SELECT cache_generation FROM namespaces WHERE id = 'p-ns2'", 0, NULL);
  ac_test_response res;
  ac_test_call(&srv, "DELETE", "/api/v1/namespaces/p-ns2/plugins/opendatabot", admin, NULL, &res);
  assert_int_equal(res.status, 204);
  assert_int_equal(res.body_len, 0);
  ac_test_response_free(&res);
  json_t *p = ac_test_json(&srv, "DELETE", "/api/v1/namespaces/p-ns2/plugins/opendatabot", admin,
                           NULL, 404, NULL);
  assert_non_null(p);
  json_decref(p);
  json_t *l = ac_test_json(&srv, "GET", "/api/v1/namespaces/p-ns2/plugins", admin, NULL, 200,
                           "plugin-record-list.json");
  assert_int_equal(json_array_size(json_object_get(l, "plugins")), 0);
  json_decref(l);
  /* the write bumped the namespace's cache generation */
  char *gen_after = ac_test_server_query(
      &srv, 0, "SELECT cache_generation FROM namespaces WHERE id = 'p-ns2'", 0, NULL);
  assert_true(strtoll(gen_after, NULL, 10) > strtoll(gen_before, NULL, 10));
  free(gen_before);
  free(gen_after);
  /* enabling again after a delete works and starts over */
  json_t *r = ac_test_json(&srv, "POST", "/api/v1/namespaces/p-ns2/plugins/opendatabot", admin,
                           "{\"enabled\":false}", 201, "plugin-record.json");
  assert_non_null(r);
  assert_int_equal(json_integer_value(json_object_get(r, "version")), 1);
  json_decref(r);
}

/* Every write left an audit row with actor and masked images; no secret
 * ever reached the audit log. */
static void audit_log_records_writes(void **state) {
  (void)state;
  static const struct {
    const char *ns, *plugin, *action, *min;
  } cases[] = {
      {"p-ns", "opendatabot", "plugin.enable", "1"},
      {"p-ns", "webhooks", "plugin.enable", "1"},
      {"p-ns", "webhooks", "plugin.update", "10"},
      {"p-ns2", "opendatabot", "plugin.disable", "1"},
      {"p-child-ns", "opendatabot", "plugin.enable", "1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *p[] = {cases[i].ns, cases[i].plugin, cases[i].action, cases[i].min};
    char *ok = ac_test_server_query(
        &srv, 0,
        "SELECT count(*) >= $4::int FROM audit_log WHERE namespace_id = $1 AND plugin_id = $2 "
        "AND action = $3 AND actor <> ''",
        4, p);
    if (!ok || strcmp(ok, "t") != 0)
      fail_msg("audit %s %s %s", cases[i].ns, cases[i].plugin, cases[i].action);
    free(ok);
  }
  char *n = ac_test_server_query(
      &srv, 0,
      "SELECT count(*) FROM audit_log WHERE coalesce(before::text, '') || coalesce(after::text, '') "
      "~ '(s3cret|n3w-secret|k-123)'",
      0, NULL);
  assert_string_equal(n, "0");
  free(n);
  /* the first enable's after image: masked secret, defaults filled */
  n = ac_test_server_query(&srv, 0,
                           "SELECT after->>'apiKey' || ' ' || (after->>'mode') || ' ' || actor "
                           "FROM audit_log WHERE namespace_id = 'p-ns' AND plugin_id = 'opendatabot' "
                           "AND action = 'plugin.enable'",
                           0, NULL);
  assert_string_equal(n, MASK " mock admin");
  free(n);
  /* an update has both images */
  n = ac_test_server_query(&srv, 0,
                           "SELECT count(*) FROM audit_log WHERE action = 'plugin.update' AND "
                           "(before IS NULL OR after IS NULL)",
                           0, NULL);
  assert_string_equal(n, "0");
  free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(enable_fills_defaults_and_masks_secrets),
      cmocka_unit_test(list_masks_secrets),
      cmocka_unit_test(conflicts_and_not_found),
      cmocka_unit_test(bad_requests_answer_400),
      cmocka_unit_test(schema_violations_answer_422),
      cmocka_unit_test(patch_merges_and_keeps_secrets),
      cmocka_unit_test(if_match_and_etag),
      cmocka_unit_test(concurrent_patches_with_if_match),
      cmocka_unit_test(scope_applies_to_plugin_routes),
      cmocka_unit_test(delete_then_gone),
      cmocka_unit_test(audit_log_records_writes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
