/* test_api_reload.c — the real server with a custom plugin directory:
 * POST /api/v1/plugins/reload picks up new, changed, broken and deleted
 * files; a custom plugin cannot take a built-in id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/jwt.h"
#include "server_fixture.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ac_test_server srv;
static char *admin;
static char dir[] = "/tmp/ac-api-reload-XXXXXX";

static const char greeter[] =
    "return {\n"
    "  id = 'greeter', name = 'Greeter', category = 'test', version = '%s',\n"
    "  configSchema = { type = 'object', additionalProperties = false,\n"
    "    properties = { greeting = { type = 'string', default = 'hi' },\n"
    "                   token = { type = 'string', writeOnly = true } } },\n"
    "  capabilities = { PluginCapability.AgentQuery },\n"
    "  onAgentQuery = function(query, context) return {} end,\n"
    "}\n";

/* Writes dir/name through a rename, as editors do. */
static void write_plugin(const char *name, const char *text) {
  char tmp[256], path[256];
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
}

static void write_greeter(const char *version) {
  char text[1024];
  snprintf(text, sizeof text, greeter, version);
  write_plugin("greeter.lua", text);
}

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(dir))
    return -1;
  /* The directory starts with one plugin. (Empty, the ASan build's serve
   * stops at startup: the registry's directory listing passes NULL to
   * qsort for an empty directory; reported to engine/plugin.) */
  write_plugin("seed.lua", "return { id = 'seed', name = 'Seed', category = 'test',\n"
                           "  capabilities = { 'agent_query' },\n"
                           "  onAgentQuery = function() return {} end }\n");
  char env[128];
  snprintf(env, sizeof env, "AGENTCORE_PLUGIN_DIRS=%s", dir);
  const char *const extra[] = {env, NULL};
  if (ac_test_server_start(&srv, "api_reload", extra) != 0)
    return -1;
  admin = ac_test_token("admin", AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES, 1, NULL, 600);
  static const char *const items[][2] = {
      {"/api/v1/departments", "{\"id\":\"r-dept\",\"name\":\"reload\"}"},
      {"/api/v1/namespaces", "{\"id\":\"r-ns\",\"name\":\"reload\",\"departmentId\":\"r-dept\"}"},
      {"/api/v1/namespaces", "{\"id\":\"r-ns2\",\"name\":\"reload 2\",\"departmentId\":\"r-dept\"}"},
  };
  for (size_t i = 0; admin && i < 3; i++) {
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
  int rc = ac_test_server_stop(&srv);
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (e->d_name[0] != '.' || strlen(e->d_name) > 2)
      unlink(path);
  }
  if (d)
    closedir(d);
  rmdir(dir);
  return rc == 0 ? 0 : -1;
}

/* Reloads and returns the catalog entry (id, source), or NULL; *catalog
 * keeps the whole answer (caller decrefs). */
static const json_t *reload_find(json_t **catalog, const char *id, const char *source) {
  *catalog = ac_test_json(&srv, "POST", "/api/v1/plugins/reload", admin, NULL, 200, "catalog.json");
  assert_non_null(*catalog);
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(*catalog, "plugins"), i, e) {
    if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0 &&
        strcmp(json_string_value(json_object_get(e, "source")), source) == 0)
      return e;
  }
  return NULL;
}

static const char *str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

static void reload_returns_the_catalog(void **state) {
  (void)state;
  json_t *c;
  const json_t *e = reload_find(&c, "opendatabot", "builtin");
  assert_non_null(e);
  assert_string_equal(str(e, "status"), "ready");
  json_decref(c);
  assert_null(reload_find(&c, "greeter", "custom")); /* not written yet */
  json_decref(c);
  e = reload_find(&c, "seed", "custom");
  assert_non_null(e);
  assert_string_equal(str(e, "status"), "ready");
  json_decref(c);
}

static void new_custom_plugin_appears(void **state) {
  (void)state;
  write_greeter("1.0.0");
  json_t *c;
  const json_t *e = reload_find(&c, "greeter", "custom");
  assert_non_null(e);
  assert_true(ac_test_schema_valid("catalog-entry.json", e));
  assert_string_equal(str(e, "status"), "ready");
  assert_string_equal(str(e, "version"), "1.0.0");
  assert_string_equal(str(e, "category"), "test");
  json_decref(c);
  /* and can be enabled: defaults from its schema, its secret masked */
  json_t *r = ac_test_json(&srv, "POST", "/api/v1/namespaces/r-ns/plugins/greeter", admin,
                           "{\"config\":{\"token\":\"t0p\"}}", 201, "plugin-record.json");
  assert_non_null(r);
  assert_string_equal(str(json_object_get(r, "config"), "greeting"), "hi");
  assert_string_equal(str(json_object_get(r, "config"), "token"), "********");
  json_decref(r);
  /* the new schema is enforced */
  r = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/r-ns/plugins/greeter", admin,
                   "{\"config\":{\"other\":1}}", 422, NULL);
  assert_non_null(r);
  json_decref(r);
}

static void changed_plugin_is_replaced(void **state) {
  (void)state;
  write_greeter("1.1.0");
  json_t *c;
  const json_t *e = reload_find(&c, "greeter", "custom");
  assert_non_null(e);
  assert_string_equal(str(e, "version"), "1.1.0");
  assert_string_equal(str(e, "status"), "ready");
  json_decref(c);
}

static void broken_file_keeps_last_good_version(void **state) {
  (void)state;
  write_plugin("greeter.lua", "return { id = 'greeter', name = \n");
  json_t *c;
  const json_t *e = reload_find(&c, "greeter", "custom");
  assert_non_null(e);
  assert_string_equal(str(e, "status"), "error");
  assert_true(strlen(str(e, "error")) > 0);
  assert_true(ac_test_schema_valid("catalog-entry.json", e));
  json_decref(c);
  /* the last good version still serves: it can be enabled elsewhere */
  json_t *r = ac_test_json(&srv, "POST", "/api/v1/namespaces/r-ns2/plugins/greeter", admin, "{}",
                           201, "plugin-record.json");
  assert_non_null(r);
  json_decref(r);
  /* fixed again */
  write_greeter("1.2.0");
  e = reload_find(&c, "greeter", "custom");
  assert_non_null(e);
  assert_string_equal(str(e, "status"), "ready");
  assert_string_equal(str(e, "version"), "1.2.0");
  json_decref(c);
}

static void custom_plugin_cannot_take_a_builtin_id(void **state) {
  (void)state;
  write_plugin("impostor.lua", "return { id = 'webhooks', name = 'Impostor', category = 'x',\n"
                               "  capabilities = { 'agent_query' },\n"
                               "  onAgentQuery = function() return {} end }\n");
  json_t *c;
  const json_t *e = reload_find(&c, "webhooks", "custom");
  assert_non_null(e);
  assert_string_equal(str(e, "status"), "error");
  assert_non_null(strstr(str(e, "error"), "webhooks"));
  assert_true(ac_test_schema_valid("catalog-entry.json", e));
  json_decref(c);
  const json_t *b = reload_find(&c, "webhooks", "builtin");
  assert_non_null(b);
  assert_string_equal(str(b, "status"), "ready");
  assert_string_equal(str(b, "name"), "Webhooks");
  json_decref(c);
  /* the id still means the built-in: its schema (url required) applies */
  json_t *p = ac_test_json(&srv, "POST", "/api/v1/namespaces/r-ns/plugins/webhooks", admin, "{}",
                           422, NULL);
  assert_non_null(p);
  json_decref(p);
}

static void deleted_plugin_disappears(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "%s/greeter.lua", dir);
  assert_int_equal(unlink(path), 0);
  snprintf(path, sizeof path, "%s/impostor.lua", dir);
  assert_int_equal(unlink(path), 0);
  json_t *c;
  assert_null(reload_find(&c, "greeter", "custom"));
  json_decref(c);
  assert_null(reload_find(&c, "webhooks", "custom"));
  json_decref(c);
  /* a plugin that is gone is unknown, even where a config row is left */
  json_t *p = ac_test_json(&srv, "POST", "/api/v1/namespaces/r-ns/plugins/greeter", admin, "{}",
                           404, NULL);
  assert_non_null(p);
  json_decref(p);
  p = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/r-ns/plugins/greeter", admin,
                   "{\"enabled\":false}", 404, NULL);
  assert_non_null(p);
  json_decref(p);
  /* its stored config is still listed, with every string masked (no schema
   * left to tell the secrets) */
  json_t *l = ac_test_json(&srv, "GET", "/api/v1/namespaces/r-ns/plugins", admin, NULL, 200,
                           "plugin-record-list.json");
  assert_non_null(l);
  const json_t *rec = json_array_get(json_object_get(l, "plugins"), 0);
  assert_string_equal(str(rec, "pluginId"), "greeter");
  assert_string_equal(str(json_object_get(rec, "config"), "token"), "********");
  assert_string_equal(str(json_object_get(rec, "config"), "greeting"), "********");
  json_decref(l);
  /* and can still be removed; the audit image is masked the same way */
  ac_test_response res;
  ac_test_call(&srv, "DELETE", "/api/v1/namespaces/r-ns/plugins/greeter", admin, NULL, &res);
  assert_int_equal(res.status, 204);
  ac_test_response_free(&res);
  char *t = ac_test_server_query(&srv, 0,
                                 "SELECT before->>'token' FROM audit_log WHERE namespace_id = 'r-ns' "
                                 "AND plugin_id = 'greeter' AND action = 'plugin.disable'",
                                 0, NULL);
  assert_non_null(t);
  assert_string_equal(t, "********");
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reload_returns_the_catalog),
      cmocka_unit_test(new_custom_plugin_appears),
      cmocka_unit_test(changed_plugin_is_replaced),
      cmocka_unit_test(broken_file_keeps_last_good_version),
      cmocka_unit_test(custom_plugin_cannot_take_a_builtin_id),
      cmocka_unit_test(deleted_plugin_disappears),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
