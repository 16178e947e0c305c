/* test_api_auth.c — the real server: tokens (401 with WWW-Authenticate),
 * permissions (403), unknown paths (404) and methods (405), the operations
 * routes and the plugin catalog. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/router.h"
#include "core/crypto.h"
#include "schema/schema.h"
#include "server_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)

static ac_test_server srv;
static char *admin; /* global, every permission */

static int setup(void **state) {
  (void)state;
  if (ac_test_server_start(&srv, "api_auth", NULL) != 0)
    return -1;
  admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 600);
  return admin ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  return ac_test_server_stop(&srv) == 0 ? 0 : -1;
}

/* A concrete path for a route pattern (parameters filled with valid ids). */
static void concrete(const char *pattern, char *out, size_t size) {
  size_t k = 0;
  for (const char *p = pattern; *p && k + 40 < size;) {
    if (*p == ':') {
      const char *end = strchr(p, '/');
      size_t n = end ? (size_t)(end - p) : strlen(p);
      const char *v = strncmp(p, ":eventId", n) == 0    ? "6f1c2e4a-3b5d-4c6e-8f70-1a2b3c4d5e6f"
                      : strncmp(p, ":pluginId", n) == 0 ? "webhooks"
                                                        : "some-ns";
      k += (size_t)snprintf(out + k, size - k, "%s", v);
      p += n;
    } else {
      out[k++] = *p++;
    }
  }
  out[k] = '\0';
}

/* A route's request with a JSON body where it takes one. */
static long call_route(const ac_route *r, const char *token, ac_test_response *res) {
  char path[256];
  concrete(r->pattern, path, sizeof path);
  const char *body = strcmp(r->method, "POST") == 0 || strcmp(r->method, "PATCH") == 0 ? "{}" : NULL;
  return ac_test_call(&srv, r->method, path, token, body, res);
}

static char *b64url(const char *s) {
  char *out = malloc(AC_CRYPTO_B64_SIZE(strlen(s)));
  ac_crypto_base64url_encode(s, strlen(s), out, AC_CRYPTO_B64_SIZE(strlen(s)), NULL);
  return out;
}

/* token with its header replaced by header_json (payload and signature kept,
 * or the signature replaced by sig when sig != NULL). */
static char *reheader(const char *token, const char *header_json, const char *sig) {
  const char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
  char *h = b64url(header_json);
  size_t size = strlen(token) + strlen(h) + 8;
  char *out = malloc(size);
  if (sig)
    snprintf(out, size, "%s.%.*s.%s", h, (int)(dot2 - dot1 - 1), dot1 + 1, sig);
  else
    snprintf(out, size, "%s%s", h, dot1);
  free(h);
  return out;
}

static void assert_401(const char *token, const char *const *headers, const char *label) {
  ac_test_request req = {.method = "GET", .path = "/api/v1/plugins", .token = token,
                         .headers = headers};
  ac_test_response res;
  ac_test_http(&srv, &req, &res);
  char www[200];
  const char *v = ac_test_header(&res, "WWW-Authenticate", www, sizeof www);
  if (!ac_test_expect(&res, 401, NULL) || !v || strcmp(v, "Bearer error=\"invalid_token\"") != 0)
    fail_msg("%s: expected 401 with WWW-Authenticate, got %ld (%s)", label, res.status,
             v ? v : "no WWW-Authenticate");
  ac_test_response_free(&res);
}

static void bad_tokens_answer_401(void **state) {
  (void)state;
  time_t now = time(NULL);
  json_t *expired = json_pack("{s:s, s:[s], s:b, s:I}", "sub", "u", "permissions",
                              "canManagePlugins", "global", 1, "exp", (json_int_t)(now - 3600));
  json_t *no_exp = json_pack("{s:s, s:[s], s:b}", "sub", "u", "permissions", "canManagePlugins",
                             "global", 1);
  json_t *no_sub = json_pack("{s:[s], s:b, s:I}", "permissions", "canManagePlugins", "global", 1,
                             "exp", (json_int_t)(now + 600));
  json_t *future = json_pack("{s:s, s:[s], s:b, s:I, s:I}", "sub", "u", "permissions",
                             "canManagePlugins", "global", 1, "exp", (json_int_t)(now + 7200),
                             "nbf", (json_int_t)(now + 3600));
  json_t *bad_perm = json_pack("{s:s, s:s, s:b, s:I}", "sub", "u", "permissions",
                               "canManagePlugins", "global", 1, "exp", (json_int_t)(now + 600));
  char long_sub[300];
  memset(long_sub, 'u', 257);
  long_sub[257] = '\0';
  json_t *sub_257 = json_pack("{s:s, s:[s], s:b, s:I}", "sub", long_sub, "permissions",
                              "canManagePlugins", "global", 1, "exp", (json_int_t)(now + 600));
  char *t_long_sub = ac_test_sign(sub_257);
  char *t_expired = ac_test_sign(expired), *t_no_exp = ac_test_sign(no_exp),
       *t_no_sub = ac_test_sign(no_sub), *t_future = ac_test_sign(future),
       *t_bad_perm = ac_test_sign(bad_perm);
  char *bad_sig = strdup(admin);
  char *last = bad_sig + strlen(bad_sig) - 2; /* not the last char: its low bits may be unused */
  *last = *last == 'A' ? 'B' : 'A';
  char *rs256 = reheader(admin, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", NULL);
  char *none = reheader(admin, "{\"alg\":\"none\",\"typ\":\"JWT\"}", "");
  char *hs512 = reheader(admin, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", NULL);
  char *padded = malloc(strlen(admin) + 2);
  snprintf(padded, strlen(admin) + 2, "%s=", admin);
  /* a token signed with another (valid-length) secret */
  json_t *claims = json_pack("{s:s, s:b, s:I}", "sub", "u", "global", 1, "exp", (json_int_t)(now + 600));
  char *other = NULL;
  const char other_secret[] = "some-other-secret-0123456789abcdef-0123456789";
  ac_jwt_sign_hs256(other_secret, strlen(other_secret), claims, &other, NULL);
  char *huge = malloc(9000);
  memset(huge, 'a', 8999);
  huge[8999] = '\0';

  static const char *const basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
  static const char *const empty_bearer[] = {"Authorization: Bearer ", NULL};
  assert_401(NULL, NULL, "no token");
  assert_401(NULL, basic, "basic auth");
  assert_401(NULL, empty_bearer, "empty bearer");
  const struct {
    const char *token, *label;
  } cases[] = {
      {bad_sig, "bad signature"},   {t_expired, "expired"},         {t_no_exp, "no exp"},
      {t_no_sub, "no sub"},         {t_future, "nbf in the future"}, {t_bad_perm, "permissions not an array"},
      {rs256, "alg RS256"},         {none, "alg none"},             {hs512, "alg HS512"},
      {padded, "padding"},          {other, "other secret"},        {"abc.def", "two parts"},
      {"not a token", "garbage"},   {huge, "over 8 KiB"},          {t_long_sub, "sub over 256 characters"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_non_null(cases[i].token);
    assert_401(cases[i].token, NULL, cases[i].label);
  }
  json_decref(expired);
  json_decref(no_exp);
  json_decref(no_sub);
  json_decref(future);
  json_decref(bad_perm);
  json_decref(claims);
  json_decref(sub_257);
  free(t_long_sub);
  free(t_expired);
  free(t_no_exp);
  free(t_no_sub);
  free(t_future);
  free(t_bad_perm);
  free(bad_sig);
  free(rs256);
  free(none);
  free(hs512);
  free(padded);
  free(other);
  free(huge);
}

/* Every token route: 401 without a token; 403 with a token holding every
 * permission but the ones the route accepts; 403 for global-only routes
 * with a non-global token. Driven by the route table itself. */
static void every_token_route_checks_token_and_permission(void **state) {
  (void)state;
  int token_routes = 0, global_routes = 0;
  for (const ac_route *r = ac_routes; r->fn; r++) {
    if (r->auth != AC_ROUTE_TOKEN)
      continue;
    token_routes++;
    ac_test_response res;
    call_route(r, NULL, &res);
    if (!ac_test_expect(&res, 401, NULL))
      fail_msg("%s %s without a token", r->method, r->pattern);
    ac_test_response_free(&res);
    unsigned others = ALL_PERMS & ~r->any_perm;
    if (r->any_perm && others) {
      char *t = ac_test_token("limited", others, 1, NULL, 600);
      call_route(r, t, &res);
      if (!ac_test_expect(&res, 403, NULL))
        fail_msg("%s %s without its permission", r->method, r->pattern);
      ac_test_response_free(&res);
      free(t);
    }
    if (r->needs_global) {
      global_routes++;
      static const char *const depts[] = {"d1", NULL};
      char *t = ac_test_token("local", ALL_PERMS, 0, depts, 600);
      call_route(r, t, &res);
      if (!ac_test_expect(&res, 403, NULL))
        fail_msg("%s %s with a non-global token", r->method, r->pattern);
      ac_test_response_free(&res);
      free(t);
    }
  }
  assert_true(token_routes >= 11);
  assert_int_equal(global_routes, 2); /* reload, department creation */
}

/* Which permission opens which route (the accepting side of the table). */
static void permissions_open_their_routes(void **state) {
  (void)state;
  static const struct {
    unsigned perms;
    const char *method, *path;
    long status;
  } cases[] = {
      {AC_PERM_MANAGE_PLUGINS, "GET", "/api/v1/plugins", 200},
      {AC_PERM_MANAGE_NAMESPACES, "GET", "/api/v1/plugins", 200},
      {AC_PERM_MANAGE_PLUGINS, "POST", "/api/v1/plugins/reload", 200},
      {AC_PERM_MANAGE_NAMESPACES, "POST", "/api/v1/plugins/reload", 200},
      {AC_PERM_MANAGE_NAMESPACES, "GET", "/api/v1/departments", 200},
      {AC_PERM_MANAGE_PLUGINS, "GET", "/api/v1/departments", 403},
      {AC_PERM_MANAGE_NAMESPACES, "GET", "/api/v1/namespaces", 200},
      {AC_PERM_MANAGE_PLUGINS, "GET", "/api/v1/namespaces", 403},
      {AC_PERM_MANAGE_PLUGINS, "GET", "/api/v1/namespaces/nope/plugins", 404},
      {AC_PERM_EMIT_EVENTS, "GET", "/api/v1/namespaces/nope/plugins", 403},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *t = ac_test_token("p", cases[i].perms, 1, NULL, 600);
    ac_test_response res;
    ac_test_call(&srv, cases[i].method, cases[i].path, t, NULL, &res);
    if (!ac_test_expect(&res, cases[i].status, NULL))
      fail_msg("case %zu: %s %s", i, cases[i].method, cases[i].path);
    ac_test_response_free(&res);
    free(t);
  }
}

static void unknown_paths_and_methods(void **state) {
  (void)state;
  static const struct {
    const char *method, *path;
    long status;
    const char *allow; /* the Allow header of a 405 */
  } cases[] = {
      {"GET", "/api/v1/nope", 404, NULL},
      {"GET", "/api/v2/plugins", 404, NULL},
      {"GET", "/", 404, NULL},
      {"GET", "/api/v1/plugins/", 404, NULL},
      {"GET", "/api/v1//plugins", 404, NULL},
      {"GET", "/api/v1/namespaces/a/plugins/b/c", 404, NULL},
      {"GET", "/api/v1/namespaces//plugins", 404, NULL},  /* an empty id */
      {"POST", "/api/v1/namespaces/a/query/", 404, NULL},
      {"POST", "/api/v1/namespaces/a/queryx", 404, NULL},
      {"PUT", "/api/v1/plugins", 405, "GET"},
      {"DELETE", "/api/v1/namespaces", 405, "GET, POST"},
      {"GET", "/api/v1/plugins/reload", 405, "POST"},
      {"PUT", "/api/v1/namespaces/a/plugins/b", 405, "POST, PATCH, DELETE"},
      {"POST", "/healthz", 405, "GET"},
      {"DELETE", "/metrics", 405, "GET"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ac_test_response res;
    ac_test_call(&srv, cases[i].method, cases[i].path, admin, NULL, &res);
    if (!ac_test_expect(&res, cases[i].status, NULL))
      fail_msg("case %zu: %s %s", i, cases[i].method, cases[i].path);
    char allow[128];
    const char *got = ac_test_header(&res, "Allow", allow, sizeof allow);
    if (cases[i].allow ? !got || strcmp(got, cases[i].allow) != 0 : got != NULL)
      fail_msg("case %zu: Allow %s, expected %s", i, got ? got : "(none)",
               cases[i].allow ? cases[i].allow : "(none)");
    ac_test_response_free(&res);
  }
}

static void operations_routes(void **state) {
  (void)state;
  ac_test_response res;
  ac_test_call(&srv, "GET", "/healthz", NULL, NULL, &res);
  assert_true(ac_test_expect(&res, 200, "health.json"));
  assert_string_equal(json_string_value(json_object_get(res.json, "status")), "ok");
  ac_test_response_free(&res);
  ac_test_call(&srv, "GET", "/readyz", NULL, NULL, &res);
  assert_true(ac_test_expect(&res, 200, "health.json"));
  assert_string_equal(json_string_value(json_object_get(res.json, "status")), "ready");
  ac_test_response_free(&res);

  /* a counted request, then the metrics show it by route and status */
  ac_test_call(&srv, "GET", "/api/v1/plugins", NULL, NULL, &res);
  ac_test_response_free(&res);
  ac_test_call(&srv, "GET", "/metrics", NULL, NULL, &res);
  assert_int_equal(res.status, 200);
  char ct[128];
  assert_non_null(ac_test_header(&res, "Content-Type", ct, sizeof ct));
  assert_true(strncmp(ct, "text/plain", 10) == 0);
  assert_non_null(strstr(res.body, "# TYPE agentcore_api_requests_total counter"));
  /* labels are route patterns, never raw paths (the 405s of
   * unknown_paths_and_methods included) */
  const char *line = strstr(res.body, "agentcore_api_requests_total{");
  int found_401 = 0, found_405 = 0;
  for (; line; line = strstr(line + 1, "agentcore_api_requests_total{")) {
    const char *eol = strchr(line, '\n');
    size_t n = eol ? (size_t)(eol - line) : strlen(line);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)n, line);
    if (strstr(buf, "route=\"/api/v1/plugins\"") && strstr(buf, "status=\"401\""))
      found_401 = 1;
    if (strstr(buf, "route=\"/api/v1/namespaces/:id/plugins/:pluginId\"") &&
        strstr(buf, "status=\"405\""))
      found_405 = 1;
    if (strstr(buf, "/a/plugins/b"))
      fail_msg("a raw path as a metrics label: %s", buf);
  }
  assert_true(found_401);
  assert_true(found_405);
  assert_non_null(strstr(res.body, "agentcore_api_request_duration_seconds"));
  ac_test_response_free(&res);
}

static const json_t *catalog_entry(const json_t *catalog, const char *id, const char *source) {
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(catalog, "plugins"), i, e) {
    if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0 &&
        strcmp(json_string_value(json_object_get(e, "source")), source) == 0)
      return e;
  }
  return NULL;
}

static void catalog_shape(void **state) {
  (void)state;
  ac_test_response res;
  ac_test_call(&srv, "GET", "/api/v1/plugins", admin, NULL, &res);
  assert_true(ac_test_expect(&res, 200, "catalog.json"));
  static const struct {
    const char *id, *category, *cap;
    const char *secret;
  } builtins[] = {{"opendatabot", NULL, "agent_query", "apiKey"},
                  {"webhooks", NULL, "approval_hook", "secret"}};
  for (size_t i = 0; i < 2; i++) {
    const json_t *e = catalog_entry(res.json, builtins[i].id, "builtin");
    if (!e)
      fail_msg("catalog lacks built-in %s", builtins[i].id);
    assert_true(ac_test_schema_valid("catalog-entry.json", e));
    assert_string_equal(json_string_value(json_object_get(e, "status")), "ready");
    assert_true(json_is_null(json_object_get(e, "error")));
    const json_t *schema = json_object_get(e, "configSchema");
    assert_string_equal(json_string_value(json_object_get(schema, "$schema")), AC_SCHEMA_DIALECT);
    assert_string_equal(json_string_value(json_object_get(schema, "type")), "object");
    /* the secret is marked writeOnly in the exported schema */
    const json_t *secret =
        json_object_get(json_object_get(schema, "properties"), builtins[i].secret);
    assert_true(json_is_true(json_object_get(secret, "writeOnly")));
    int has_cap = 0;
    size_t k;
    json_t *c;
    json_array_foreach(json_object_get(e, "capabilities"), k, c) has_cap |=
        strcmp(json_string_value(c), builtins[i].cap) == 0;
    assert_true(has_cap);
    assert_non_null(json_string_value(json_object_get(e, "loadedAt")));
  }
  ac_test_response_free(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bad_tokens_answer_401),
      cmocka_unit_test(every_token_route_checks_token_and_permission),
      cmocka_unit_test(permissions_open_their_routes),
      cmocka_unit_test(unknown_paths_and_methods),
      cmocka_unit_test(operations_routes),
      cmocka_unit_test(catalog_shape),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
