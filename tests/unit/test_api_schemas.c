/* test_api_schemas.c — schemas/: every JSON Schema compiles with the
 * engine's validator, and openapi.json describes every route of the route
 * table (plus the host-flow routes and the webhook payloads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/router.h"
#include "fixtures.h"
#include "schema/schema.h"
#include "server_fixture.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *rel) {
  char path[1024];
  ac_test_path(path, sizeof path, rel);
  json_error_t jerr;
  json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if (!doc)
    fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
  return doc;
}

/* Names of the schema files (not openapi.json), sorted; returns the count. */
static size_t schema_files(char names[64][128]) {
  char dir[1024];
  ac_test_path(dir, sizeof dir, "schemas");
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 64) {
    size_t len = strlen(e->d_name);
    if (len > 5 && len < 128 && strcmp(e->d_name + len - 5, ".json") == 0 &&
        strcmp(e->d_name, "openapi.json") != 0)
      snprintf(names[n++], 128, "%s", e->d_name);
  }
  closedir(d);
  qsort(names, n, 128, (int (*)(const void *, const void *))strcmp);
  return n;
}

/* "plugin-record.json" -> "PluginRecord" (the component's name). */
static void component_name(const char *file, char *out, size_t size) {
  size_t k = 0;
  int upper = 1;
  for (const char *p = file; *p && *p != '.' && k + 1 < size; p++) {
    if (*p == '-') {
      upper = 1;
      continue;
    }
    out[k++] = upper ? (char)toupper((unsigned char)*p) : *p;
    upper = 0;
  }
  out[k] = '\0';
}

static void every_schema_compiles(void **state) {
  (void)state;
  char names[64][128];
  size_t n = schema_files(names);
  assert_true(n >= 20);
  for (size_t i = 0; i < n; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "schemas/%s", names[i]);
    json_t *doc = load(rel);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "$schema")), AC_SCHEMA_DIALECT);
    ac_schema *s = NULL;
    ac_err err = {0};
    int rc = ac_schema_compile(doc, &s, &err);
    if (rc)
      fprintf(stderr, "%s: %s\n", names[i], err.msg);
    assert_int_equal(rc, AC_OK);
    ac_schema_free(s);
    json_decref(doc);
  }
}

/* Every file the REST tests validate against exists (a rename would make
 * those checks fail for the wrong reason). */
static void expected_files_exist(void **state) {
  (void)state;
  static const char *const expected[] = {
      "problem.json",          "health.json",           "catalog.json",
      "catalog-entry.json",    "plugin-record.json",    "plugin-record-list.json",
      "plugin-enable-request.json", "plugin-patch-request.json", "department.json",
      "department-list.json",  "department-create-request.json", "namespace.json",
      "namespace-list.json",   "namespace-create-request.json", "event-request.json",
      "event-accepted.json",   "event-status.json",     "query-request.json",
      "query-response.json",   "plugin-result.json",    "webhook-approval-created.json",
      "webhook-document-ready.json"};
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "schemas/%s", expected[i]);
    json_t *doc = load(rel);
    if (!doc)
      fail_msg("missing %s", rel);
    json_decref(doc);
  }
}

/* Samples that must (or must not) match, so the schemas are not vacuous. */
static void schemas_accept_and_refuse(void **state) {
  (void)state;
  static const struct {
    const char *file;
    const char *json;
    int valid;
  } cases[] = {
      {"plugin-result.json",
       "{\"pluginId\":\"opendatabot\",\"type\":\"company\",\"title\":\"T\",\"confidence\":0.5,"
       "\"source\":{\"name\":\"x\",\"url\":\"https://x.example/a\"}}",
       1},
      {"plugin-result.json", "{\"pluginId\":\"opendatabot\",\"type\":\"company\",\"title\":\"T\","
                             "\"confidence\":1.5}",
       0},
      {"plugin-result.json", "{\"type\":\"company\",\"title\":\"T\"}", 0},
      {"event-request.json",
       "{\"type\":\"approval.created\",\"approvalId\":\"a1\",\"data\":{},\"idempotencyKey\":\"k\"}", 1},
      {"event-request.json", "{\"type\":\"document.ready\",\"documentId\":\"d1\",\"data\":{}}", 1},
      {"event-request.json", "{\"type\":\"document.ready\",\"approvalId\":\"a1\",\"data\":{}}", 0},
      {"event-request.json", "{\"type\":\"other\",\"approvalId\":\"a1\",\"data\":{}}", 0},
      {"event-accepted.json",
       "{\"eventId\":\"6f1c2e4a-3b5d-4c6e-8f70-1a2b3c4d5e6f\",\"status\":\"queued\"}", 1},
      {"event-status.json",
       "{\"eventId\":\"6f1c2e4a-3b5d-4c6e-8f70-1a2b3c4d5e6f\",\"type\":\"approval.created\","
       "\"status\":\"done\",\"createdAt\":\"2024-01-02T03:04:05.000Z\",\"runs\":[{\"pluginId\":"
       "\"webhooks\",\"status\":\"ok\",\"attempts\":1,\"durationMs\":12,\"error\":null,"
       "\"nextAttemptAt\":null}]}",
       1},
      {"event-status.json",
       "{\"eventId\":\"x\",\"type\":\"approval.created\",\"status\":\"done\","
       "\"createdAt\":\"2024-01-02T03:04:05Z\",\"runs\":[]}",
       0},
      {"query-request.json", "{\"query\":\"find 12345678\",\"locale\":\"uk\"}", 1},
      {"query-request.json", "{\"userId\":\"u\"}", 0},
      {"query-response.json",
       "{\"results\":[{\"pluginId\":\"p\",\"type\":\"t\",\"title\":\"x\"}],\"errors\":[{\"pluginId\":"
       "\"q\",\"kind\":\"timeout\",\"message\":\"m\"}],\"tookMs\":3}",
       1},
      {"plugin-patch-request.json", "{}", 0},
      {"plugin-patch-request.json", "{\"enabled\":false}", 1},
      {"namespace-create-request.json", "{\"name\":\"n\",\"departmentId\":\"bad id\"}", 0},
      {"webhook-approval-created.json",
       "{\"event\":\"approval.created\",\"approvalId\":\"a\",\"namespaceId\":\"n\","
       "\"occurredAt\":\"2024-01-02T03:04:05Z\",\"data\":{}}",
       1},
      {"webhook-document-ready.json",
       "{\"event\":\"approval.created\",\"documentId\":\"a\",\"namespaceId\":\"n\","
       "\"occurredAt\":\"2024-01-02T03:04:05Z\",\"data\":{}}",
       0},
      {"problem.json", "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"x\"}",
       1},
      {"problem.json", "{\"type\":\"about:blank\",\"title\":\"OK\",\"status\":200,\"detail\":\"x\"}", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *doc = json_loads(cases[i].json, 0, NULL);
    assert_non_null(doc);
    if (!cases[i].valid)
      fprintf(stderr, "(case %zu: the next mismatch report is expected)\n", i);
    if (ac_test_schema_valid(cases[i].file, doc) != cases[i].valid)
      fail_msg("case %zu: %s should be %s against %s", i, cases[i].json,
               cases[i].valid ? "valid" : "invalid", cases[i].file);
    json_decref(doc);
  }
}

/* "/api/v1/namespaces/:id/plugins" -> "/api/v1/namespaces/{id}/plugins" */
static void openapi_path(const char *pattern, char *out, size_t size) {
  size_t k = 0;
  int in_param = 0;
  for (const char *p = pattern; *p && k + 2 < size; p++) {
    if (*p == ':') {
      out[k++] = '{';
      in_param = 1;
    } else if (*p == '/' && in_param) {
      out[k++] = '}';
      out[k++] = '/';
      in_param = 0;
    } else {
      out[k++] = *p;
    }
  }
  if (in_param)
    out[k++] = '}';
  out[k] = '\0';
}

static const json_t *operation(const json_t *api, const char *path, const char *method) {
  char lower[16];
  size_t i = 0;
  for (; method[i] && i + 1 < sizeof lower; i++)
    lower[i] = (char)tolower((unsigned char)method[i]);
  lower[i] = '\0';
  return json_object_get(json_object_get(json_object_get(api, "paths"), path), lower);
}

static void openapi_lists_every_route(void **state) {
  (void)state;
  json_t *api = load("schemas/openapi.json");
  assert_non_null(api);
  assert_string_equal(json_string_value(json_object_get(api, "openapi")), "3.1.0");
  const json_t *bearer =
      json_object_get(json_object_get(json_object_get(api, "components"), "securitySchemes"),
                      "bearerAuth");
  assert_string_equal(json_string_value(json_object_get(bearer, "scheme")), "bearer");
  assert_string_equal(json_string_value(json_object_get(bearer, "bearerFormat")), "JWT");
  size_t routes = 0;
  for (const ac_route *r = ac_routes; r->fn; r++, routes++) {
    char path[256];
    openapi_path(r->pattern, path, sizeof path);
    const json_t *op = operation(api, path, r->method);
    if (!op)
      fail_msg("openapi.json lacks %s %s", r->method, path);
    const json_t *responses = json_object_get(op, "responses");
    int has_success = 0;
    const char *code;
    json_t *v;
    json_object_foreach((json_t *)responses, code, v) has_success |= code[0] == '2';
    assert_true(has_success);
    if (r->auth == AC_ROUTE_TOKEN) {
      /* token routes document 401, and 403 where a permission is needed */
      if (!json_object_get(responses, "401") ||
          ((r->any_perm || r->needs_global) && !json_object_get(responses, "403")))
        fail_msg("%s %s does not document 401/403", r->method, path);
      assert_null(json_object_get(op, "security")); /* the global bearer requirement */
    } else {
      const json_t *sec = json_object_get(op, "security");
      if (!json_is_array(sec) || json_array_size(sec) != 0)
        fail_msg("%s %s is public but not marked security: []", r->method, path);
    }
  }
  assert_true(routes >= 14);
  /* the host-flow routes, described before they are in the table */
  static const char *const host_flow[][2] = {{"/api/v1/namespaces/{id}/events", "POST"},
                                             {"/api/v1/namespaces/{id}/events/{eventId}", "GET"},
                                             {"/api/v1/namespaces/{id}/query", "POST"}};
  for (size_t i = 0; i < 3; i++)
    if (!operation(api, host_flow[i][0], host_flow[i][1]))
      fail_msg("openapi.json lacks %s %s", host_flow[i][1], host_flow[i][0]);
  json_t *webhooks = json_object_get(api, "webhooks");
  assert_non_null(json_object_get(json_object_get(webhooks, "approval.created"), "post"));
  assert_non_null(json_object_get(json_object_get(webhooks, "document.ready"), "post"));
  json_decref(api);
}

/* components.schemas repeats each file verbatim, so the two cannot drift;
 * every $ref inside openapi.json resolves. */
static int refs_resolve(const json_t *api, const json_t *v) {
  if (json_is_object(v)) {
    const json_t *ref = json_object_get(v, "$ref");
    if (ref) {
      const char *s = json_string_value(ref);
      char kind[64], name[128];
      if (!s || sscanf(s, "#/components/%63[^/]/%127s", kind, name) != 2 ||
          !json_object_get(json_object_get(json_object_get(api, "components"), kind), name)) {
        fprintf(stderr, "unresolved $ref %s\n", s ? s : "?");
        return 0;
      }
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) if (!refs_resolve(api, x)) return 0;
  } else if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!refs_resolve(api, x)) return 0;
  }
  return 1;
}

static void openapi_components_match_files(void **state) {
  (void)state;
  json_t *api = load("schemas/openapi.json");
  assert_non_null(api);
  const json_t *components = json_object_get(json_object_get(api, "components"), "schemas");
  char names[64][128];
  size_t n = schema_files(names);
  for (size_t i = 0; i < n; i++) {
    char rel[256], comp[128];
    snprintf(rel, sizeof rel, "schemas/%s", names[i]);
    component_name(names[i], comp, sizeof comp);
    json_t *doc = load(rel);
    if (!json_equal(doc, json_object_get(components, comp)))
      fail_msg("components.schemas.%s differs from %s", comp, rel);
    json_decref(doc);
  }
  assert_int_equal(json_object_size(components), n);
  assert_true(refs_resolve(api, api));
  json_decref(api);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_schema_compiles),
      cmocka_unit_test(expected_files_exist),
      cmocka_unit_test(schemas_accept_and_refuse),
      cmocka_unit_test(openapi_lists_every_route),
      cmocka_unit_test(openapi_components_match_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
