/* test_tenancy.c — the tenancy snapshot (engine/dispatch/tenancy) against a
 * real PostgreSQL: scope answers equal the store's SQL scope for every
 * principal and namespace (global, department, descendant, sibling,
 * self-parent and looping departments, unknown), snapshot and item shapes,
 * entries missing from the snapshot read once, unknown ids remembered,
 * single re-reads and removals, a failed reload that keeps the old
 * snapshot, and lookups racing reloads. The database comes from a test
 * server (migrated, fresh); the snapshot under test is this process's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "db/store.h"
#include "dispatch/tenancy.h"
#include "fixtures.h"
#include "server_fixture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ac_test_server srv;
static PGconn *conn;
static ac_db_pool *pool;
static ac_test_log logs;

/* root ─┬─ mid ── leaf        selfie (its own parent)
 *       └─ sib                loopa ⇄ loopb (parent links in a loop)
 * Namespaces n-<department>; n-leaf has one enabled and one disabled
 * plugin. The check constraint and the trigger that forbid self-parents
 * and loops are dropped first: the walk must end even if they slip in. */
static const char *const tree_sql[] = {
    "ALTER TABLE departments DROP CONSTRAINT departments_check",
    "ALTER TABLE departments DISABLE TRIGGER departments_no_cycle",
    "INSERT INTO departments (id, name, parent_id) VALUES ('root', 'r', NULL), "
    "('mid', 'm', 'root'), ('leaf', 'l', 'mid'), ('sib', 's', 'root'), "
    "('selfie', 'x', NULL), ('loopa', 'a', NULL), ('loopb', 'b', 'loopa')",
    "UPDATE departments SET parent_id = 'selfie' WHERE id = 'selfie'",
    "UPDATE departments SET parent_id = 'loopb' WHERE id = 'loopa'",
    "INSERT INTO namespaces (id, name, department_id) VALUES ('n-root', 'nr', 'root'), "
    "('n-mid', 'nm', 'mid'), ('n-leaf', 'nl', 'leaf'), ('n-sib', 'ns', 'sib'), "
    "('n-self', 'nx', 'selfie'), ('n-loop', 'na', 'loopa')",
    "INSERT INTO namespace_plugins (namespace_id, plugin_id, enabled, config, updated_by) VALUES "
    "('n-leaf', 'opendatabot', true, '{\"mode\":\"mock\"}', 't'), "
    "('n-leaf', 'webhooks', false, '{}', 't')",
    NULL};

static void sql(const char *text) {
  PGresult *r = PQexec(conn, text);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    fail_msg("%s: %s", text, PQerrorMessage(conn));
  PQclear(r);
}

static int setup(void **state) {
  (void)state;
  if (ac_test_server_start(&srv, "tenancy", NULL) != 0)
    return -1;
  conn = ac_test_server_db(&srv, 0);
  ac_err err = {0};
  pool = conn ? ac_db_pool_new(srv.conninfo, 4, 5000, &err) : NULL;
  if (!pool)
    return -1;
  for (int i = 0; tree_sql[i]; i++) {
    PGresult *r = PQexec(conn, tree_sql[i]);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
      fprintf(stderr, "%s: %s", tree_sql[i], PQerrorMessage(conn));
    PQclear(r);
    if (!ok)
      return -1;
  }
  ac_test_log_init(&logs);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  ac_db_pool_free(pool);
  PQfinish(conn);
  ac_test_log_free(&logs);
  return ac_test_server_stop(&srv) == 0 ? 0 : -1;
}

static ac_tenancy *loaded(void) {
  ac_tenancy *t = ac_tenancy_new(pool, logs.logger);
  assert_non_null(t);
  ac_err err = {0};
  if (ac_tenancy_reload(t, conn, &err) != AC_OK)
    fail_msg("reload: %s", err.msg);
  assert_true(ac_tenancy_wait_loaded(t, 0));
  return t;
}

static unsigned long long misses(ac_tenancy *t) {
  ac_tenancy_stats st;
  ac_tenancy_get_stats(t, &st);
  return st.misses;
}

/* ---- scope ---------------------------------------------------------------------- */

#define MAXD 3
static const struct {
  const char *name;
  int global;
  const char *depts[MAXD]; /* NULL-terminated */
  const char *visible;     /* the namespaces it sees, in namespace order */
} principals[] = {
    {"global", 1, {NULL}, "n-root n-mid n-leaf n-sib n-self n-loop"},
    {"root", 0, {"root"}, "n-root n-mid n-leaf n-sib"},
    {"mid (descendant)", 0, {"mid"}, "n-mid n-leaf"},
    {"leaf", 0, {"leaf"}, "n-leaf"},
    {"sib (sibling)", 0, {"sib"}, "n-sib"},
    {"mid and sib", 0, {"mid", "sib"}, "n-mid n-leaf n-sib"},
    {"self-parent", 0, {"selfie"}, "n-self"},
    {"loop a", 0, {"loopa"}, "n-loop"},
    {"loop b", 0, {"loopb"}, "n-loop"},
    {"unknown department", 0, {"nowhere"}, ""},
    {"no departments", 0, {NULL}, ""},
    {"case differs", 0, {"ROOT"}, ""},
};
static const char *const namespaces[] = {"n-root", "n-mid",     "n-leaf", "n-sib",
                                         "n-self", "n-loop",    "n-none", NULL};

static ac_principal principal_of(size_t i, char **ids) {
  ac_principal p = {.sub = "t", .global = principals[i].global, .department_ids = ids};
  for (size_t k = 0; k < MAXD && principals[i].depts[k]; k++)
    ids[p.department_count++] = (char *)principals[i].depts[k];
  return p;
}

/* Every principal against every namespace: the snapshot answers what the
 * SQL scope answers, and both what the table says. */
static void scope_matches_sql(void **state) {
  (void)state;
  ac_tenancy *t = loaded();
  for (size_t i = 0; i < sizeof principals / sizeof principals[0]; i++) {
    char *ids[MAXD];
    ac_principal who = principal_of(i, ids);
    char seen[256] = "";
    for (int n = 0; namespaces[n]; n++) {
      json_t *snap = NULL, *item = NULL;
      ac_err err = {0};
      int got = ac_tenancy_namespace(t, &who, namespaces[n], &snap, &err);
      int want = ac_store_namespace_get(conn, &who, namespaces[n], &item, &err);
      if (got != want)
        fail_msg("%s / %s: snapshot %d, SQL %d", principals[i].name, namespaces[n], got, want);
      assert_true(got == AC_OK || got == AC_ERR_NOTFOUND);
      if (got == AC_OK)
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%s", *seen ? " " : "",
                 namespaces[n]);
      json_decref(snap);
      json_decref(item);
    }
    if (strcmp(seen, principals[i].visible) != 0)
      fail_msg("%s sees \"%s\", not \"%s\"", principals[i].name, seen, principals[i].visible);
  }
  /* no scope check at all */
  json_t *snap = NULL;
  assert_int_equal(ac_tenancy_namespace(t, NULL, "n-self", &snap, NULL), AC_OK);
  json_decref(snap);
  assert_int_equal(ac_tenancy_namespace(t, NULL, "", &snap, NULL), AC_ERR_NOTFOUND);
  assert_null(snap);
  ac_tenancy_free(t);
}

/* ---- shapes ----------------------------------------------------------------------- */

static void snapshot_and_item_shapes(void **state) {
  (void)state;
  ac_tenancy *t = loaded();
  json_t *snap = NULL, *item = NULL, *row = NULL;
  assert_int_equal(ac_tenancy_namespace(t, NULL, "n-leaf", &snap, NULL), AC_OK);
  char *gen = ac_test_server_query(&srv, 0,
                                   "SELECT cache_generation FROM namespaces WHERE id = 'n-leaf'", 0,
                                   NULL);
  assert_non_null(gen);
  json_t *want = json_pack("{s:s, s:I, s:[{s:s, s:{s:s}, s:i}]}", "departmentId", "leaf",
                           "generation", (json_int_t)atoll(gen), "plugins", "pluginId",
                           "opendatabot", "config", "mode", "mock", "version", 1);
  free(gen);
  if (!json_equal(snap, want)) {
    char *text = json_dumps(snap, JSON_COMPACT);
    fail_msg("snapshot %s", text);
  }
  json_decref(want);
  json_decref(snap);
  /* the item is what GET /namespaces/:id shows */
  assert_int_equal(ac_tenancy_namespace_item(t, NULL, "n-leaf", &item, NULL), AC_OK);
  assert_int_equal(ac_store_namespace_get(conn, NULL, "n-leaf", &row, NULL), AC_OK);
  assert_true(json_equal(item, row));
  json_decref(item);
  json_decref(row);
  /* nothing enabled: an empty list */
  assert_int_equal(ac_tenancy_namespace(t, NULL, "n-root", &snap, NULL), AC_OK);
  assert_int_equal(json_array_size(json_object_get(snap, "plugins")), 0);
  json_decref(snap);
  ac_tenancy_stats st;
  ac_tenancy_get_stats(t, &st);
  assert_int_equal(st.namespaces, 6);
  assert_int_equal(st.departments, 7);
  assert_int_equal(st.misses, 0);
  ac_tenancy_free(t);
}

/* ---- entries missing from the snapshot ---------------------------------------------- */

/* Created after the load (elsewhere, notification not applied): one read
 * installs namespace and department; then no read at all. An unknown id
 * costs one read, and none while it is remembered. */
static void missing_entries_read_once(void **state) {
  (void)state;
  ac_tenancy *t = loaded();
  sql("INSERT INTO departments (id, name, parent_id) VALUES ('late', 'l', 'mid')");
  sql("INSERT INTO namespaces (id, name, department_id) VALUES ('n-late', 'l', 'late')");
  char *ids[] = {"mid"};
  ac_principal who = {.sub = "t", .department_ids = ids, .department_count = 1};
  json_t *snap = NULL;
  assert_int_equal(ac_tenancy_namespace(t, &who, "n-late", &snap, NULL), AC_OK);
  json_decref(snap);
  assert_int_equal(misses(t), 2); /* the namespace, then its department */
  for (int i = 0; i < 100; i++) {
    assert_int_equal(ac_tenancy_namespace(t, &who, "n-late", &snap, NULL), AC_OK);
    json_decref(snap);
  }
  assert_int_equal(misses(t), 2);

  for (int i = 0; i < 100; i++)
    assert_int_equal(ac_tenancy_namespace(t, NULL, "n-never", &snap, NULL), AC_ERR_NOTFOUND);
  assert_int_equal(misses(t), 3);
  /* created now: its refresh installs it and the remembered miss is gone */
  sql("INSERT INTO namespaces (id, name, department_id) VALUES ('n-never', 'n', 'sib')");
  assert_int_equal(ac_tenancy_refresh_namespace(t, conn, "n-never", NULL), AC_OK);
  assert_int_equal(ac_tenancy_namespace(t, NULL, "n-never", &snap, NULL), AC_OK);
  json_decref(snap);
  assert_int_equal(misses(t), 3);

  /* a lookup that needs the database while it is unreachable */
  ac_db_pool *dead = ac_db_pool_new("postgresql:///nope?host=/nonexistent", 1, 100, NULL);
  ac_tenancy *t2 = ac_tenancy_new(dead, NULL);
  ac_err err = {0};
  assert_int_equal(ac_tenancy_namespace(t2, NULL, "n-root", &snap, &err), AC_ERR_DB);
  assert_null(snap);
  ac_tenancy_free(t2);
  ac_db_pool_free(dead);

  sql("DELETE FROM namespaces WHERE id IN ('n-late', 'n-never')");
  sql("DELETE FROM departments WHERE id = 'late'");
  ac_tenancy_free(t);
}

/* ---- single re-reads ------------------------------------------------------------------ */

static void refresh_and_removal(void **state) {
  (void)state;
  ac_tenancy *t = loaded();
  sql("UPDATE namespace_plugins SET config = '{\"mode\":\"api\"}' "
      "WHERE namespace_id = 'n-leaf' AND plugin_id = 'opendatabot'");
  json_t *snap = NULL;
  assert_int_equal(ac_tenancy_namespace(t, NULL, "n-leaf", &snap, NULL), AC_OK);
  json_t *old = snap; /* a reader's reference outlives the entry */
  assert_int_equal(ac_tenancy_refresh_namespace(t, NULL, "n-leaf", NULL), AC_OK);
  assert_int_equal(ac_tenancy_namespace(t, NULL, "n-leaf", &snap, NULL), AC_OK);
  json_t *p0 = json_array_get(json_object_get(snap, "plugins"), 0);
  assert_string_equal(json_string_value(json_object_get(json_object_get(p0, "config"), "mode")),
                      "api");
  assert_int_equal(json_integer_value(json_object_get(p0, "version")), 2);
  assert_true(json_integer_value(json_object_get(snap, "generation")) >
              json_integer_value(json_object_get(old, "generation")));
  p0 = json_array_get(json_object_get(old, "plugins"), 0);
  assert_string_equal(json_string_value(json_object_get(json_object_get(p0, "config"), "mode")),
                      "mock");
  json_decref(old);
  json_decref(snap);

  /* gone from the database: gone from the snapshot */
  sql("INSERT INTO namespaces (id, name, department_id) VALUES ('n-gone', 'g', 'sib')");
  assert_int_equal(ac_tenancy_refresh_namespace(t, conn, "n-gone", NULL), AC_OK);
  sql("DELETE FROM namespaces WHERE id = 'n-gone'");
  assert_int_equal(ac_tenancy_refresh_namespace(t, conn, "n-gone", NULL), AC_ERR_NOTFOUND);
  unsigned long long before = misses(t);
  assert_int_equal(ac_tenancy_namespace(t, NULL, "n-gone", &snap, NULL), AC_ERR_NOTFOUND);
  assert_int_equal(misses(t), before + 1);

  /* a department's parent read again */
  sql("UPDATE departments SET parent_id = 'root' WHERE id = 'selfie'");
  char *ids[] = {"root"};
  ac_principal who = {.sub = "t", .department_ids = ids, .department_count = 1};
  assert_int_equal(ac_tenancy_namespace(t, &who, "n-self", &snap, NULL), AC_ERR_NOTFOUND);
  assert_int_equal(ac_tenancy_refresh_department(t, conn, "selfie", NULL), AC_OK);
  assert_int_equal(ac_tenancy_namespace(t, &who, "n-self", &snap, NULL), AC_OK);
  json_decref(snap);
  sql("UPDATE departments SET parent_id = 'selfie' WHERE id = 'selfie'");
  sql("UPDATE namespace_plugins SET config = '{\"mode\":\"mock\"}' "
      "WHERE namespace_id = 'n-leaf' AND plugin_id = 'opendatabot'");
  ac_tenancy_free(t);
}

/* ---- full reloads ----------------------------------------------------------------------- */

static void failed_reload_keeps_snapshot(void **state) {
  (void)state;
  ac_tenancy *t = loaded();
  ac_test_log_reset(&logs);
  PGconn *broken = PQconnectdb("postgresql:///nope?host=/nonexistent");
  ac_err err = {0};
  assert_int_not_equal(ac_tenancy_reload(t, broken, &err), AC_OK);
  PQfinish(broken);
  assert_int_equal(ac_test_log_count(&logs, "tenancy snapshot reload failed"), 1);
  assert_int_equal(ac_test_log_count(&logs, "\"level\":\"error\""), 1);
  json_t *snap = NULL;
  assert_int_equal(ac_tenancy_namespace(t, NULL, "n-leaf", &snap, NULL), AC_OK);
  json_decref(snap);
  ac_tenancy_stats st;
  ac_tenancy_get_stats(t, &st);
  assert_int_equal(st.namespaces, 6);
  assert_int_equal(st.reload_failures, 1);
  assert_int_equal(st.misses, 0);
  /* nothing loaded yet: a lookup reads the database instead */
  ac_tenancy *fresh = ac_tenancy_new(pool, NULL);
  assert_false(ac_tenancy_wait_loaded(fresh, 10));
  assert_int_equal(ac_tenancy_namespace(fresh, NULL, "n-leaf", &snap, NULL), AC_OK);
  json_decref(snap);
  ac_tenancy_free(fresh);
  ac_tenancy_free(t);
}

#define READERS 6
static atomic_int stop;
static ac_tenancy *shared;

static void *read_loop(void *arg) {
  long bad = 0;
  char *ids[] = {"mid"};
  ac_principal who = {.sub = "t", .department_ids = ids, .department_count = 1};
  while (!atomic_load(&stop)) {
    json_t *snap = NULL;
    if (ac_tenancy_namespace(shared, &who, "n-leaf", &snap, NULL) != AC_OK ||
        json_array_size(json_object_get(snap, "plugins")) != 1)
      bad++;
    json_decref(snap);
    if (ac_tenancy_namespace(shared, &who, "n-sib", &snap, NULL) != AC_ERR_NOTFOUND)
      bad++;
  }
  *(long *)arg = bad;
  return NULL;
}

/* Readers never see a gap while reloads and re-reads swap entries. */
static void lookups_during_reloads(void **state) {
  (void)state;
  shared = loaded();
  atomic_store(&stop, 0);
  pthread_t th[READERS];
  long bad[READERS];
  for (int i = 0; i < READERS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, read_loop, &bad[i]), 0);
  for (int i = 0; i < 30; i++) {
    assert_int_equal(ac_tenancy_reload(shared, conn, NULL), AC_OK);
    assert_int_equal(ac_tenancy_refresh_namespace(shared, NULL, "n-leaf", NULL), AC_OK);
    assert_int_equal(ac_tenancy_refresh_department(shared, NULL, "leaf", NULL), AC_OK);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < READERS; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(bad[i], 0);
  }
  assert_int_equal(misses(shared), 0);
  ac_tenancy_free(shared);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scope_matches_sql),
      cmocka_unit_test(snapshot_and_item_shapes),
      cmocka_unit_test(missing_entries_read_once),
      cmocka_unit_test(refresh_and_removal),
      cmocka_unit_test(failed_reload_keeps_snapshot),
      cmocka_unit_test(lookups_during_reloads),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
