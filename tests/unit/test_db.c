/* test_db.c — engine/db against a real PostgreSQL: migrations, schema
 * constraints and triggers, kv_pg, reconnect, LISTEN, pool. Needs
 * AGENTCORE_TEST_DATABASE_URL (scripts/pg start; export
 * AGENTCORE_TEST_DATABASE_URL=$(scripts/pg url)); fails without it. Each
 * run works in its own databases test_db_<pid>[_x], dropped at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/kv.h"
#include "cli/commands.h"
#include "db/db.h"
#include "db/events.h"
#include "db/intake.h"
#include "db/kv_pg.h"
#include "db/migrate.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ fixtures */

static char admin_url[2048];
static char main_db[64];
static char main_conninfo[2048];

static void conninfo_add(ac_buf *b, const char *key, const char *value) {
  ac_buf_printf(b, "%s%s='", b->len ? " " : "", key);
  for (const char *p = value; *p; p++) {
    if (*p == '\\' || *p == '\'')
      ac_buf_append(b, "\\", 1);
    ac_buf_append(b, p, 1);
  }
  ac_buf_append(b, "'", 1);
}

/* The admin url's settings with dbname replaced, as key=value text. */
static void conninfo_for(const char *dbname, char *out, size_t size) {
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(admin_url, &perr);
  if (!opts)
    fail_msg("AGENTCORE_TEST_DATABASE_URL does not parse: %s", perr ? perr : "?");
  ac_buf b = AC_BUF_INIT(size - 1);
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (o->val && *o->val && strcmp(o->keyword, "dbname") != 0)
      conninfo_add(&b, o->keyword, o->val);
  conninfo_add(&b, "dbname", dbname);
  PQconninfoFree(opts);
  assert_non_null(b.data);
  memcpy(out, b.data, b.len + 1);
  ac_buf_free(&b);
}

/* CREATE/DROP DATABASE take no parameters: the name is quoted by libpq. */
static int admin_ddl(const char *verb, const char *dbname, const char *suffix) {
  PGconn *c = PQconnectdb(admin_url);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "cannot connect to AGENTCORE_TEST_DATABASE_URL: %s", PQerrorMessage(c));
    PQfinish(c);
    return -1;
  }
  char *q = PQescapeIdentifier(c, dbname, strlen(dbname));
  ac_buf sql = AC_BUF_INIT(512);
  ac_buf_printf(&sql, "%s %s%s", verb, q, suffix);
  PQfreemem(q);
  PGresult *r = PQexec(c, sql.data);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    fprintf(stderr, "%s: %s", sql.data, PQerrorMessage(c));
  PQclear(r);
  ac_buf_free(&sql);
  PQfinish(c);
  return ok ? 0 : -1;
}

static int create_db(const char *name, char *conninfo, size_t size) {
  admin_ddl("DROP DATABASE IF EXISTS", name, " WITH (FORCE)");
  if (admin_ddl("CREATE DATABASE", name, ""))
    return -1;
  conninfo_for(name, conninfo, size);
  return 0;
}

static void drop_db(const char *name) { admin_ddl("DROP DATABASE IF EXISTS", name, " WITH (FORCE)"); }

static const char *migrations_dir(void) {
  const char *src = getenv("AC_SOURCE_DIR");
  static char dir[1024];
  snprintf(dir, sizeof dir, "%s/migrations", src && *src ? src : AC_SOURCE_DIR);
  return dir;
}

static int count_sql_files(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (e->d_name[0] != '.' && len > 4 && !strcmp(e->d_name + len - 4, ".sql"))
      n++;
  }
  closedir(d);
  return n;
}

static ac_db *connect_main(void) {
  ac_err err = {0};
  ac_db *db = ac_db_connect(main_conninfo, &err);
  if (!db)
    fail_msg("connect: %s", err.msg);
  return db;
}

/* Runs sql and returns the first value (caller frees), failing the test
 * on error. */
static char *scalar(ac_db *db, const char *sql, int n, const char *const *params) {
  ac_err err = {0};
  PGresult *r = NULL;
  int rc = ac_db_exec(db, sql, n, params, &r, &err);
  if (rc)
    fail_msg("%s: %s", sql, err.msg);
  char *v = strdup(PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
  PQclear(r);
  return v;
}

static void exec_ok(ac_db *db, const char *sql) {
  ac_err err = {0};
  if (ac_db_exec(db, sql, 0, NULL, NULL, &err))
    fail_msg("%s: %s", sql, err.msg);
}

static int group_setup(void **state) {
  (void)state;
  const char *url = getenv("AGENTCORE_TEST_DATABASE_URL");
  if (!url || !*url) {
    fprintf(stderr, "AGENTCORE_TEST_DATABASE_URL is not set: start the test cluster with "
                    "`scripts/pg start` and export AGENTCORE_TEST_DATABASE_URL=$(scripts/pg url)\n");
    return -1;
  }
  snprintf(admin_url, sizeof admin_url, "%s", url);
  snprintf(main_db, sizeof main_db, "test_db_%d", (int)getpid());
  if (create_db(main_db, main_conninfo, sizeof main_conninfo))
    return -1;
  /* Everything but the migration tests works on a migrated database. */
  ac_err err = {0};
  ac_db *db = ac_db_connect(main_conninfo, &err);
  if (!db || ac_db_migrate(ac_db_conn(db), migrations_dir(), NULL, NULL, &err)) {
    fprintf(stderr, "migrating %s: %s\n", main_db, err.msg);
    ac_db_free(db);
    return -1;
  }
  exec_ok(db, "INSERT INTO departments (id, name) VALUES ('d1', 'Dept 1'), ('d2', 'Dept 2')");
  exec_ok(db, "INSERT INTO namespaces (id, name, department_id) VALUES ('ns1', 'One', 'd1'),"
              " ('ns2', 'Two', 'd2')");
  ac_db_free(db);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  if (main_db[0])
    drop_db(main_db);
  return 0;
}

/* ------------------------------------------------------------ migrations */

static void collect_name(void *ud, const char *name) {
  ac_buf *b = ud;
  ac_buf_printf(b, "%s;", name);
}

static void test_migrate_once_and_idempotent(void **state) {
  (void)state;
  char name[64], ci[2048];
  snprintf(name, sizeof name, "test_db_%d_m", (int)getpid());
  assert_int_equal(create_db(name, ci, sizeof ci), 0);
  ac_err err = {0};
  ac_db *db = ac_db_connect(ci, &err);
  assert_non_null(db);
  int files = count_sql_files(migrations_dir());
  assert_true(files >= 1);

  ac_buf names = AC_BUF_INIT(4096);
  int applied = -1;
  assert_int_equal(ac_db_migrate_ex(ac_db_conn(db), migrations_dir(), NULL, &applied,
                                    collect_name, &names, &err), 0);
  assert_int_equal(applied, files);
  assert_non_null(strstr(names.data, "001_init.sql;"));

  applied = -1;
  assert_int_equal(ac_db_migrate(ac_db_conn(db), migrations_dir(), NULL, &applied, &err), 0);
  assert_int_equal(applied, 0);
  char *n = scalar(db, "SELECT count(*) FROM schema_migrations", 0, NULL);
  assert_int_equal(atoi(n), files);
  free(n);
  /* The tables exist and the advisory lock was released. */
  n = scalar(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
                 " (SELECT oid FROM pg_database WHERE datname = current_database())", 0, NULL);
  assert_string_equal(n, "0");
  free(n);
  n = scalar(db, "SELECT to_regclass('event_runs') IS NOT NULL", 0, NULL);
  assert_string_equal(n, "t");
  free(n);
  ac_buf_free(&names);
  ac_db_free(db);
  drop_db(name);
}

typedef struct migrate_job {
  const char *conninfo;
  int rc;
  int applied;
  char msg[AC_ERR_MSG_MAX];
} migrate_job;

static void *migrate_thread(void *arg) {
  migrate_job *j = arg;
  ac_err err = {0};
  ac_db *db = ac_db_connect(j->conninfo, &err);
  if (!db) {
    j->rc = err.code;
    snprintf(j->msg, sizeof j->msg, "%s", err.msg);
    return NULL;
  }
  j->rc = ac_db_migrate(ac_db_conn(db), migrations_dir(), NULL, &j->applied, &err);
  snprintf(j->msg, sizeof j->msg, "%s", err.msg);
  ac_db_free(db);
  return NULL;
}

static void test_migrate_concurrently(void **state) {
  (void)state;
  char name[64], ci[2048];
  snprintf(name, sizeof name, "test_db_%d_c", (int)getpid());
  assert_int_equal(create_db(name, ci, sizeof ci), 0);
  enum { N = 4 };
  migrate_job jobs[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    jobs[i] = (migrate_job){.conninfo = ci};
    assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &jobs[i]), 0);
  }
  int total = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    if (jobs[i].rc)
      fail_msg("thread %d: %s", i, jobs[i].msg);
    total += jobs[i].applied;
  }
  assert_int_equal(total, count_sql_files(migrations_dir()));
  drop_db(name);
}

static void write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_migrate_failure_rolls_back(void **state) {
  (void)state;
  char name[64], ci[2048];
  snprintf(name, sizeof name, "test_db_%d_f", (int)getpid());
  assert_int_equal(create_db(name, ci, sizeof ci), 0);
  char dir[] = "/tmp/ac_migrations_XXXXXX";
  assert_non_null(mkdtemp(dir));
  write_file(dir, "001_a.sql", "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);\n");
  write_file(dir, "002_b.sql", "CREATE TABLE b (x int);\nSELECT no_such_function();\n");
  write_file(dir, "notes.txt", "not a migration");
  ac_err err = {0};
  ac_db *db = ac_db_connect(ci, &err);
  assert_non_null(db);
  int applied = -1;
  int rc = ac_db_migrate(ac_db_conn(db), dir, NULL, &applied, &err);
  assert_int_equal(rc, AC_ERR_DB);
  assert_int_equal(applied, 1);
  assert_non_null(strstr(err.msg, "migration 002_b.sql"));
  char *v = scalar(db, "SELECT to_regclass('b') IS NULL AND to_regclass('a') IS NOT NULL", 0, NULL);
  assert_string_equal(v, "t");
  free(v);
  v = scalar(db, "SELECT string_agg(name, ',') FROM schema_migrations", 0, NULL);
  assert_string_equal(v, "001_a.sql");
  free(v);
  /* Fixed, it applies; a missing directory is an I/O error. */
  write_file(dir, "002_b.sql", "CREATE TABLE b (x int);\n");
  assert_int_equal(ac_db_migrate(ac_db_conn(db), dir, NULL, &applied, &err), 0);
  assert_int_equal(applied, 1);
  assert_int_equal(ac_db_migrate(ac_db_conn(db), "/nonexistent/dir", NULL, &applied, &err),
                   AC_ERR_IO);
  ac_db_free(db);
  drop_db(name);
  char path[512];
  const char *files[] = {"001_a.sql", "002_b.sql", "notes.txt"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

static void test_cmd_migrate(void **state) {
  (void)state;
  char name[64], ci[2048];
  snprintf(name, sizeof name, "test_db_%d_cli", (int)getpid());
  assert_int_equal(create_db(name, ci, sizeof ci), 0);
  char *argv_plain[] = {"migrate", NULL};
  char *argv_help[] = {"migrate", "--help", NULL};
  char *argv_extra[] = {"migrate", "now", NULL};
  unsetenv("AGENTCORE_DATABASE_URL");
  assert_int_equal(ac_cmd_migrate(2, argv_help), 0);
  assert_int_equal(ac_cmd_migrate(1, argv_plain), 2);
  assert_int_equal(ac_cmd_migrate(2, argv_extra), 2);
  setenv("AGENTCORE_DATABASE_URL", ci, 1);
  setenv("AGENTCORE_MIGRATIONS_DIR", migrations_dir(), 1);
  assert_int_equal(ac_cmd_migrate(1, argv_plain), 0);
  assert_int_equal(ac_cmd_migrate(1, argv_plain), 0);
  setenv("AGENTCORE_DATABASE_URL", "host=/nonexistent/socket/dir dbname=x connect_timeout=2", 1);
  assert_int_equal(ac_cmd_migrate(1, argv_plain), 1);
  unsetenv("AGENTCORE_DATABASE_URL");
  unsetenv("AGENTCORE_MIGRATIONS_DIR");
  ac_err err = {0};
  ac_db *db = ac_db_connect(ci, &err);
  assert_non_null(db);
  char *v = scalar(db, "SELECT count(*) FROM schema_migrations", 0, NULL);
  assert_int_equal(atoi(v), count_sql_files(migrations_dir()));
  free(v);
  ac_db_free(db);
  drop_db(name);
}

/* ------------------------------------------------------- schema contract */

typedef struct sql_case {
  const char *sql;
  const char *sqlstate; /* NULL: must succeed */
  int code;             /* the mapped ac error code when it fails */
} sql_case;

/* One mapping of SQLSTATEs for every statement of the engine. */
static void test_error_codes(void **state) {
  (void)state;
  assert_int_equal(ac_db_error_code("23505"), AC_ERR_CONFLICT);
  assert_int_equal(ac_db_error_code("23503"), AC_ERR_NOTFOUND);
  assert_int_equal(ac_db_error_code("23502"), AC_ERR_INVALID);
  assert_int_equal(ac_db_error_code("23514"), AC_ERR_INVALID);
  assert_int_equal(ac_db_error_code("22P02"), AC_ERR_INVALID);
  assert_int_equal(ac_db_error_code("40001"), AC_ERR_BUSY);
  assert_int_equal(ac_db_error_code("40P01"), AC_ERR_BUSY);
  assert_int_equal(ac_db_error_code("57014"), AC_ERR_TIMEOUT);
  assert_int_equal(ac_db_error_code("08006"), AC_ERR_DB);
  assert_int_equal(ac_db_error_code(""), AC_ERR_DB);
  assert_int_equal(ac_db_error_code(NULL), AC_ERR_DB);
}

static void test_schema_constraints(void **state) {
  (void)state;
  char long_id[129];
  memset(long_id, 'a', 128);
  long_id[128] = '\0';
  char ok_long[256], bad_long[256];
  snprintf(ok_long, sizeof ok_long,
           "INSERT INTO departments (id, name) VALUES ('%s', 'x')", long_id);
  snprintf(bad_long, sizeof bad_long,
           "INSERT INTO departments (id, name) VALUES ('%sx', 'x')", long_id);
  const sql_case cases[] = {
      {"INSERT INTO departments (id, name) VALUES ('a.b:c-d_e9', 'ok')", NULL, 0},
      {ok_long, NULL, 0},
      {bad_long, "23514", AC_ERR_INVALID},
      {"INSERT INTO departments (id, name) VALUES ('-x', 'x')", "23514", AC_ERR_INVALID},
      {"INSERT INTO departments (id, name) VALUES ('a b', 'x')", "23514", AC_ERR_INVALID},
      {"INSERT INTO departments (id, name) VALUES ('', 'x')", "23514", AC_ERR_INVALID},
      {"INSERT INTO departments (id, name) VALUES ('ü', 'x')", "23514", AC_ERR_INVALID},
      {"INSERT INTO departments (id, name) VALUES ('d3', '')", "23514", AC_ERR_INVALID},
      {"INSERT INTO departments (id, name) VALUES ('d1', 'again')", "23505", AC_ERR_CONFLICT},
      {"INSERT INTO departments (id, name, parent_id) VALUES ('d4', 'x', 'nope')", "23503",
       AC_ERR_NOTFOUND},
      {"UPDATE departments SET parent_id = 'd1' WHERE id = 'd1'", "23514", AC_ERR_INVALID},
      {"INSERT INTO namespaces (id, name, department_id) VALUES ('n/x', 'x', 'd1')", "23514",
       AC_ERR_INVALID},
      {"INSERT INTO namespaces (id, name, department_id) VALUES ('nx', 'x', 'nope')", "23503",
       AC_ERR_NOTFOUND},
      {"INSERT INTO namespace_plugins (namespace_id, plugin_id, updated_by) VALUES"
       " ('ns1', 'Bad', 'u')", "23514", AC_ERR_INVALID},
      {"INSERT INTO namespace_plugins (namespace_id, plugin_id, config, updated_by) VALUES"
       " ('ns1', 'p', '[]', 'u')", "23514", AC_ERR_INVALID},
      {"INSERT INTO namespace_plugins (namespace_id, plugin_id, updated_by) VALUES"
       " ('nope', 'p', 'u')", "23503", AC_ERR_NOTFOUND},
      {"INSERT INTO events (namespace_id, type, payload) VALUES ('ns1', 'other', '{}')", "23514",
       AC_ERR_INVALID},
      {"INSERT INTO events (namespace_id, type, payload) VALUES ('ns1', 'document.ready', '1')",
       "23514", AC_ERR_INVALID},
      {"INSERT INTO event_runs (event_id, plugin_id, status) VALUES (gen_random_uuid(), 'p',"
       " 'queued')", "23503", AC_ERR_NOTFOUND},
      {"INSERT INTO plugin_kv (namespace_id, plugin_id, key, value) VALUES ('ns1', 'p',"
       " repeat('k', 201), '1')", "23514", AC_ERR_INVALID},
      {"INSERT INTO plugin_kv (namespace_id, plugin_id, key, value) VALUES ('ns1', 'p', 'k',"
       " '{bad')", "22P02", AC_ERR_INVALID},
      {"INSERT INTO plugin_init_state (namespace_id, plugin_id, config_version, status) VALUES"
       " ('ns1', 'p', 1, 'weird')", "23514", AC_ERR_INVALID},
  };
  ac_db *db = connect_main();
  exec_ok(db, "BEGIN");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ac_err err = {0};
    exec_ok(db, "SAVEPOINT s");
    int rc = ac_db_exec(db, cases[i].sql, 0, NULL, NULL, &err);
    if (!cases[i].sqlstate) {
      if (rc)
        fail_msg("case %zu (%s): %s", i, cases[i].sql, err.msg);
    } else {
      if (rc != cases[i].code || strcmp(ac_db_sqlstate(db), cases[i].sqlstate))
        fail_msg("case %zu (%s): rc %d sqlstate %s, want %d %s (%s)", i, cases[i].sql, rc,
                 ac_db_sqlstate(db), cases[i].code, cases[i].sqlstate, err.msg);
      assert_non_null(strstr(err.msg, cases[i].sqlstate));
    }
    exec_ok(db, "ROLLBACK TO SAVEPOINT s");
  }
  exec_ok(db, "ROLLBACK");
  ac_db_free(db);
}

typedef struct notes {
  int count;
  int reconnects;
  char last[512];
} notes;

static void on_note(void *ud, const char *channel, const char *payload) {
  notes *n = ud;
  if (!channel) {
    n->reconnects++;
    return;
  }
  assert_string_equal(channel, "agentcore_config");
  n->count++;
  snprintf(n->last, sizeof n->last, "%s", payload);
}

/* Waits up to 5 s for want notifications in total. */
static void wait_notes(ac_db *l, notes *n, int want) {
  int64_t deadline = ac_clock_mono_ms() + 5000;
  while (n->count < want && ac_clock_mono_ms() < deadline) {
    ac_err err = {0};
    int rc = ac_db_wait_notify(l, 200, on_note, n, &err);
    if (rc < 0)
      fail_msg("wait_notify: %s", err.msg);
  }
  assert_int_equal(n->count, want);
}

static void test_config_triggers_and_notify(void **state) {
  (void)state;
  ac_db *db = connect_main();
  ac_db *l = connect_main();
  ac_err err = {0};
  notes n = {0};
  assert_int_equal(ac_db_listen(l, "Bad-Name", &err), AC_ERR_INVALID);
  assert_int_equal(ac_db_listen(l, "agentcore_config", &err), 0);
  char *g0 = scalar(db, "SELECT cache_generation FROM namespaces WHERE id = 'ns2'", 0, NULL);

  exec_ok(db, "INSERT INTO namespace_plugins (namespace_id, plugin_id, config, updated_by)"
              " VALUES ('ns2', 'webhooks', '{\"url\":\"http://x\"}', 'alice')");
  wait_notes(l, &n, 1);
  json_t *p = json_loads(n.last, 0, NULL);
  assert_non_null(p);
  assert_string_equal(json_string_value(json_object_get(p, "namespaceId")), "ns2");
  assert_string_equal(json_string_value(json_object_get(p, "pluginId")), "webhooks");
  assert_string_equal(json_string_value(json_object_get(p, "op")), "insert");
  assert_int_equal(json_integer_value(json_object_get(p, "generation")), atoll(g0) + 1);
  json_decref(p);

  /* The version is bumped whatever the UPDATE sets; If-Match style. */
  exec_ok(db, "UPDATE namespace_plugins SET enabled = false, version = 77"
              " WHERE namespace_id = 'ns2' AND plugin_id = 'webhooks' AND version = 1");
  char *v = scalar(db, "SELECT version FROM namespace_plugins WHERE namespace_id = 'ns2'", 0, NULL);
  assert_string_equal(v, "2");
  free(v);
  wait_notes(l, &n, 2);

  /* A rolled-back write notifies nobody. */
  exec_ok(db, "BEGIN");
  exec_ok(db, "DELETE FROM namespace_plugins WHERE namespace_id = 'ns2'");
  exec_ok(db, "ROLLBACK");
  assert_int_equal(ac_db_wait_notify(l, 300, on_note, &n, &err), 0);
  assert_int_equal(n.count, 2);

  exec_ok(db, "DELETE FROM namespace_plugins WHERE namespace_id = 'ns2'");
  wait_notes(l, &n, 3);
  assert_non_null(strstr(n.last, "\"delete\""));
  v = scalar(db, "SELECT cache_generation FROM namespaces WHERE id = 'ns2'", 0, NULL);
  assert_int_equal(atoll(v), atoll(g0) + 3);
  free(v);

  /* The listener's connection is killed: it comes back, says so, and
   * listens again. */
  char *pid = scalar(l, "SELECT pg_backend_pid()", 0, NULL);
  const char *pp[1] = {pid};
  v = scalar(db, "SELECT pg_terminate_backend($1::int, 5000)", 1, pp);
  assert_string_equal(v, "t");
  free(v);
  free(pid);
  int64_t deadline = ac_clock_mono_ms() + 5000;
  while (n.reconnects == 0 && ac_clock_mono_ms() < deadline)
    assert_true(ac_db_wait_notify(l, 100, on_note, &n, &err) >= 0);
  assert_int_equal(n.reconnects, 1);
  exec_ok(db, "INSERT INTO namespace_plugins (namespace_id, plugin_id, updated_by)"
              " VALUES ('ns2', 'webhooks', 'bob')");
  wait_notes(l, &n, 4);
  exec_ok(db, "DELETE FROM namespace_plugins WHERE namespace_id = 'ns2'");
  free(g0);
  ac_db_free(l);
  ac_db_free(db);
}

static void test_event_idempotency(void **state) {
  (void)state;
  ac_db *db = connect_main();
  static const char put[] =
      "SELECT event_id, created FROM ac_event_put(gen_random_uuid(), 'ns1', 'approval.created',"
      " '{\"approvalId\":\"a1\"}', $1)";
  const char *key[1] = {"key-1"};
  PGresult *r1 = NULL, *r2 = NULL, *r3 = NULL;
  ac_err err = {0};
  assert_int_equal(ac_db_exec(db, put, 1, key, &r1, &err), 0);
  assert_int_equal(ac_db_exec(db, put, 1, key, &r2, &err), 0);
  assert_string_equal(PQgetvalue(r1, 0, 1), "t");
  assert_string_equal(PQgetvalue(r2, 0, 1), "f");
  assert_string_equal(PQgetvalue(r1, 0, 0), PQgetvalue(r2, 0, 0));
  /* After 24 h the key starts a new event. */
  const char *id[1] = {PQgetvalue(r1, 0, 0)};
  assert_int_equal(ac_db_exec(db, "UPDATE events SET created_at = now() - interval '25 hours'"
                                  " WHERE id = $1::uuid", 1, id, NULL, &err), 0);
  assert_int_equal(ac_db_exec(db, put, 1, key, &r3, &err), 0);
  assert_string_equal(PQgetvalue(r3, 0, 1), "t");
  assert_string_not_equal(PQgetvalue(r3, 0, 0), PQgetvalue(r1, 0, 0));
  /* Without a key every call creates. */
  const char *nokey[1] = {NULL};
  char *a = scalar(db, put, 1, nokey);
  char *b = scalar(db, put, 1, nokey);
  assert_string_not_equal(a, b);
  free(a);
  free(b);
  /* Runs: one delivery id per (event, plugin), kept across updates. */
  const char *ev[1] = {PQgetvalue(r3, 0, 0)};
  char *d1 = scalar(db, "INSERT INTO event_runs (event_id, plugin_id) VALUES ($1::uuid, 'webhooks')"
                        " RETURNING delivery_id", 1, ev);
  char *d2 = scalar(db, "UPDATE event_runs SET attempts = attempts + 1, status = 'retrying'"
                        " WHERE event_id = $1::uuid RETURNING delivery_id", 1, ev);
  assert_string_equal(d1, d2);
  assert_int_equal(ac_db_exec(db, "INSERT INTO event_runs (event_id, plugin_id) VALUES"
                                  " ($1::uuid, 'webhooks')", 1, ev, NULL, &err),
                   AC_ERR_CONFLICT);
  /* the events layer maps errors as every statement does: an event of a
   * namespace that does not exist (gone since it was checked) is not
   * found, not a database outage */
  char *event_id = NULL;
  int created = 0;
  json_t *payload = json_pack("{s:s}", "approvalId", "a2"), *plugins = json_array();
  assert_int_equal(ac_events_put(ac_db_conn(db), "no-such-ns", "approval.created", payload, NULL,
                                 plugins, &event_id, &created, &err),
                   AC_ERR_NOTFOUND);
  assert_null(event_id);
  json_decref(payload);
  json_decref(plugins);
  free(d1);
  free(d2);
  PQclear(r1);
  PQclear(r2);
  PQclear(r3);
  ac_db_free(db);
}

/* ------------------------------------------------------------------ kv */

static ac_db_pool *main_pool(int size, int wait_ms) {
  ac_err err = {0};
  ac_db_pool *p = ac_db_pool_new(main_conninfo, size, wait_ms, &err);
  if (!p)
    fail_msg("pool: %s", err.msg);
  return p;
}

static void kv_expect(ac_kv *kv, const char *ns, const char *plugin, const char *key,
                      const char *want) {
  char *got = NULL;
  ac_err err = {0};
  int rc = kv->ops->get(kv, ns, plugin, key, &got, &err);
  if (rc)
    fail_msg("get %s: %s", key, err.msg);
  if (!want)
    assert_null(got);
  else {
    assert_non_null(got);
    assert_string_equal(got, want);
  }
  free(got);
}

static void test_kv_roundtrip(void **state) {
  (void)state;
  ac_db_pool *pool = main_pool(2, 2000);
  ac_kv *kv = ac_kv_pg_new(pool);
  assert_non_null(kv);
  static const struct {
    const char *in, *out;
  } values[] = {
      {"{\"b\":1,\"a\":[1,2]}", "{\"a\": [1, 2], \"b\": 1}"},
      {"42", "42"},
      {"\"text\"", "\"text\""},
      {"null", "null"},
      {"true", "true"},
      {"[]", "[]"},
      {"{\"u\":\"\\u00fc\"}", "{\"u\": \"\xc3\xbc\"}"},
  };
  ac_err err = {0};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    assert_int_equal(kv->ops->set(kv, "ns1", "p1", "k", values[i].in, 0, &err), 0);
    kv_expect(kv, "ns1", "p1", "k", values[i].out);
  }
  kv_expect(kv, "ns1", "p1", "absent", NULL);
  /* Scoped to (namespace, plugin). */
  kv_expect(kv, "ns1", "p2", "k", NULL);
  kv_expect(kv, "ns2", "p1", "k", NULL);
  assert_int_equal(kv->ops->set(kv, "ns2", "p1", "k", "2", 0, &err), 0);
  kv_expect(kv, "ns1", "p1", "k", "{\"u\": \"\xc3\xbc\"}");
  kv_expect(kv, "ns2", "p1", "k", "2");
  assert_int_equal(kv->ops->del(kv, "ns1", "p1", "k", &err), 0);
  kv_expect(kv, "ns1", "p1", "k", NULL);
  kv_expect(kv, "ns2", "p1", "k", "2");
  assert_int_equal(kv->ops->del(kv, "ns1", "p1", "k", &err), 0); /* absent: fine */
  assert_int_equal(kv->ops->del(kv, "ns2", "p1", "k", &err), 0);
  ac_kv_free(kv);
  ac_kv_free(NULL);
  ac_db_pool_free(pool);
}

static void test_kv_limits(void **state) {
  (void)state;
  ac_db_pool *pool = main_pool(2, 2000);
  ac_kv *kv = ac_kv_pg_new(pool);
  char key[AC_KV_KEY_MAX + 2];
  memset(key, 'k', sizeof key - 1);
  key[sizeof key - 1] = '\0'; /* 201 bytes */
  char *big = malloc(AC_KV_VALUE_MAX + 2);
  assert_non_null(big);
  /* A JSON string of exactly AC_KV_VALUE_MAX bytes, quotes included. */
  big[0] = '"';
  memset(big + 1, 'v', AC_KV_VALUE_MAX - 2);
  big[AC_KV_VALUE_MAX - 1] = '"';
  big[AC_KV_VALUE_MAX] = '\0';
  char *got = NULL;
  static const struct {
    int op; /* 0 set, 1 get, 2 del */
    int key_len;
    const char *ns;
    const char *value; /* "BIG": big, "BIG+1": one byte more */
    int code;
  } cases[] = {
      {0, 201, "ns1", "1", AC_ERR_LIMIT},
      {1, 201, "ns1", NULL, AC_ERR_LIMIT},
      {2, 201, "ns1", NULL, AC_ERR_LIMIT},
      {0, 200, "ns1", "1", AC_OK},
      {0, 1, "ns1", "BIG", AC_OK},
      {0, 1, "ns1", "BIG+1", AC_ERR_LIMIT},
      {0, 1, "ns1", "{not json", AC_ERR_INVALID},
      {0, 1, "ns1", "\"\\u0000\"", AC_ERR_INVALID},
      {0, 1, "nope", "1", AC_ERR_NOTFOUND},
      {0, 0, "ns1", "1", AC_OK},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ac_err err = {0};
    char k[AC_KV_KEY_MAX + 2];
    memcpy(k, key, (size_t)cases[i].key_len);
    k[cases[i].key_len] = '\0';
    const char *v = cases[i].value;
    if (v && !strcmp(v, "BIG"))
      v = big;
    else if (v && !strcmp(v, "BIG+1")) {
      big[AC_KV_VALUE_MAX - 1] = 'v';
      big[AC_KV_VALUE_MAX] = '"';
      big[AC_KV_VALUE_MAX + 1] = '\0';
      v = big;
    }
    int rc = cases[i].op == 0   ? kv->ops->set(kv, cases[i].ns, "p", k, v, 0, &err)
             : cases[i].op == 1 ? kv->ops->get(kv, cases[i].ns, "p", k, &got, &err)
                                : kv->ops->del(kv, cases[i].ns, "p", k, &err);
    if (rc != cases[i].code)
      fail_msg("case %zu: rc %d (%s), want %d", i, rc, err.msg, cases[i].code);
    if (v == big) { /* restore the exact-size value */
      big[AC_KV_VALUE_MAX - 1] = '"';
      big[AC_KV_VALUE_MAX] = '\0';
    }
  }
  assert_int_equal(kv->ops->get(kv, "ns1", "p", "k", &got, NULL), 0);
  assert_non_null(got);
  assert_int_equal(strlen(got), AC_KV_VALUE_MAX);
  free(got);
  free(big);
  ac_kv_free(kv);
  ac_db_pool_free(pool);
}

static void test_kv_ttl(void **state) {
  (void)state;
  ac_db_pool *pool = main_pool(2, 2000);
  ac_kv *kv = ac_kv_pg_new(pool);
  ac_err err = {0};
  assert_int_equal(kv->ops->set(kv, "ns1", "ttl", "short", "1", 1, &err), 0);
  assert_int_equal(kv->ops->set(kv, "ns1", "ttl", "long", "2", 3600, &err), 0);
  assert_int_equal(kv->ops->set(kv, "ns1", "ttl", "forever", "3", 0, &err), 0);
  kv_expect(kv, "ns1", "ttl", "short", "1");
  ac_clock_sleep_ms(1100);
  kv_expect(kv, "ns1", "ttl", "short", NULL);
  kv_expect(kv, "ns1", "ttl", "long", "2");
  kv_expect(kv, "ns1", "ttl", "forever", "3");
  /* Setting again without a TTL makes it permanent. */
  assert_int_equal(kv->ops->set(kv, "ns1", "ttl", "short", "4", 0, &err), 0);
  kv_expect(kv, "ns1", "ttl", "short", "4");
  /* Expired rows are purged. */
  ac_db *db = connect_main();
  exec_ok(db, "UPDATE plugin_kv SET expires_at = now() - interval '1 second'"
              " WHERE plugin_id = 'ttl' AND key = 'long'");
  kv_expect(kv, "ns1", "ttl", "long", NULL);
  int purged = -1;
  assert_int_equal(ac_kv_pg_purge(kv, &purged, &err), 0);
  assert_true(purged >= 1);
  char *v = scalar(db, "SELECT string_agg(key, ',' ORDER BY key) FROM plugin_kv"
                       " WHERE plugin_id = 'ttl'", 0, NULL);
  assert_string_equal(v, "forever,short");
  free(v);
  ac_db_free(db);
  ac_kv_free(kv);
  ac_db_pool_free(pool);
}

/* -------------------------------------------------------------- intake */

/* What the intake reported for each event put, by position. */
#define INTAKE_MAX 256
typedef struct intake_outcome {
  int rc, created, reported;
  char id[40], status[16];
} intake_outcome;

typedef struct intake_log {
  pthread_mutex_t lock;
  int reported;
  intake_outcome o[INTAKE_MAX];
} intake_log;

typedef struct intake_slot {
  intake_log *log;
  int i;
} intake_slot;

static intake_slot intake_slots[INTAKE_MAX];

static void on_stored(void *ud, int rc, const char *id, int created, const char *status,
                      const ac_err *err) {
  (void)err;
  intake_slot *s = ud;
  pthread_mutex_lock(&s->log->lock);
  intake_outcome *o = &s->log->o[s->i];
  o->rc = rc;
  o->created = created;
  o->reported++;
  snprintf(o->id, sizeof o->id, "%s", id ? id : "");
  snprintf(o->status, sizeof o->status, "%s", status ? status : "");
  s->log->reported++;
  pthread_mutex_unlock(&s->log->lock);
}

static void intake_put(ac_intake *in, intake_log *log, int i, const char *ns, const char *key,
                       int with_run) {
  intake_slots[i] = (intake_slot){log, i};
  json_t *payload = json_pack("{s:i}", "n", i);
  json_t *plugins = with_run ? json_pack("[s]", "webhooks") : json_array();
  assert_int_equal(ac_intake_put(in, ns, "approval.created", payload, key, plugins, on_stored,
                                 &intake_slots[i]),
                   AC_OK);
  json_decref(payload);
  json_decref(plugins);
}

/* An intake over its own pool, and a fresh log for what it reports. */
static ac_intake *intake_with(ac_db_pool *pool, int batch_max, int wait_us, intake_log *log) {
  ac_intake_config cfg = {pool, 2, batch_max, wait_us};
  ac_intake *in = NULL;
  ac_err err = {0};
  assert_int_equal(ac_intake_start(&cfg, &in, &err), AC_OK);
  memset(log, 0, sizeof *log);
  pthread_mutex_init(&log->lock, NULL);
  return in;
}

static void intake_wait(intake_log *log, int n) {
  pthread_mutex_lock(&log->lock);
  int64_t until = ac_clock_mono_ms() + 20000;
  while (log->reported < n && ac_clock_mono_ms() < until) {
    pthread_mutex_unlock(&log->lock);
    usleep(2000);
    pthread_mutex_lock(&log->lock);
  }
  int got = log->reported;
  pthread_mutex_unlock(&log->lock);
  if (got != n)
    fail_msg("%d of %d events reported", got, n);
}

/* Events put together are stored together, in order, each reported once
 * after its commit: one idempotency key names one event inside a batch and
 * across batches; an event of a namespace that does not exist fails alone,
 * the rest of its batch is stored. */
static void test_intake_batches(void **state) {
  (void)state;
  ac_db_pool *pool = main_pool(4, 2000);
  static intake_log log;
  ac_intake *in = intake_with(pool, 64, 50000, &log); /* a 50 ms window: the puts share batches */
  char keys[10][16];
  for (int k = 0; k < 10; k++)
    snprintf(keys[k], sizeof keys[k], "batch-key-%d", k);
  for (int i = 0; i < 20; i++) /* each key twice */
    intake_put(in, &log, i, "ns1", keys[i % 10], 1);
  for (int i = 20; i < 30; i++) /* no key: every one is new; half without runs */
    intake_put(in, &log, i, "ns1", NULL, i % 2);
  intake_wait(&log, 30);
  /* they shared transactions: now() is a transaction's start time */
  ac_db *db = connect_main();
  char *batches = scalar(db, "SELECT count(DISTINCT created_at) FROM events WHERE payload ? 'n'",
                         0, NULL);
  if (atoi(batches) >= 5)
    fail_msg("20 events took %s transactions", batches);
  free(batches);
  /* a batch with an event of a namespace that does not exist */
  intake_put(in, &log, 30, "no-such-ns", NULL, 1);
  for (int i = 31; i < 40; i++)
    intake_put(in, &log, i, "ns2", NULL, 1);
  intake_wait(&log, 40);
  for (int i = 0; i < 40; i++) {
    assert_int_equal(log.o[i].reported, 1);
    if (i == 30)
      assert_int_equal(log.o[i].rc, AC_ERR_NOTFOUND);
    else if (log.o[i].rc != AC_OK)
      fail_msg("event %d: rc %d", i, log.o[i].rc);
  }
  for (int k = 0; k < 10; k++) {
    assert_int_equal(log.o[k].created + log.o[k + 10].created, 1);
    assert_string_equal(log.o[k].id, log.o[k + 10].id);
  }
  for (int i = 20; i < 30; i++) {
    assert_true(log.o[i].created);
    assert_string_equal(log.o[i].status, i % 2 ? "queued" : "done");
  }
  char *stored = scalar(db, "SELECT count(*) FROM events WHERE payload ? 'n'", 0, NULL);
  assert_string_equal(stored, "29"); /* 10 keyed, 10 without, 9 of ns2 */
  char *runs = scalar(db, "SELECT count(*) FROM event_runs r JOIN events e ON e.id = r.event_id"
                          " WHERE e.payload ? 'n'", 0, NULL);
  assert_string_equal(runs, "24"); /* 10 keyed, 5 of the unkeyed, 9 of ns2 */
  free(stored);
  free(runs);
  /* across batches: the key still names its event */
  log.reported = 0;
  memset(log.o, 0, sizeof log.o);
  intake_put(in, &log, 0, "ns1", keys[3], 1);
  intake_wait(&log, 1);
  assert_int_equal(log.o[0].rc, AC_OK);
  assert_false(log.o[0].created);
  assert_string_equal(log.o[0].status, "queued");
  ac_intake_stop(in);
  exec_ok(db, "DELETE FROM events WHERE payload ? 'n'");
  ac_db_free(db);
  ac_db_pool_free(pool);
}

/* Outcomes recorded in one batch: a refused run's claim is refunded (it
 * does not count towards giving up), a final outcome closes its event, a
 * run leased by another owner is left alone. */
static void test_finish_batch(void **state) {
  (void)state;
  ac_db *db = connect_main();
  ac_err err = {0};
  exec_ok(db, "DELETE FROM events WHERE namespace_id = 'ns2'");
  /* runs earlier tests left due are not this test's to claim */
  exec_ok(db, "UPDATE event_runs SET next_attempt_at = now() + interval '1 day'");
  json_t *payload = json_pack("{s:s}", "approvalId", "fb"), *plugins = json_pack("[ss]", "a", "b");
  char *id = NULL;
  int created = 0;
  assert_int_equal(ac_events_put(ac_db_conn(db), "ns2", "approval.created", payload, NULL, plugins,
                                 &id, &created, &err),
                   AC_OK);
  json_t *runs = NULL;
  assert_int_equal(ac_events_claim(ac_db_conn(db), "w1", 60, 10, NULL, NULL, &runs, &err), AC_OK);
  assert_int_equal(json_array_size(runs), 2);
  json_decref(runs);
  json_t *outcomes = json_pack("[{s:s, s:s, s:s, s:i, s:i, s:b}, {s:s, s:s, s:s, s:i, s:i}]",
                               "eventId", id, "pluginId", "a", "status", "retrying", "durationMs",
                               0, "retryInMs", 300, "refund", 1, "eventId", id, "pluginId", "b",
                               "status", "ok", "durationMs", 5, "retryInMs", 0);
  assert_int_equal(ac_events_finish_batch(ac_db_conn(db), "w2", outcomes, &err), AC_OK);
  const char *p[1] = {id};
  char *st = scalar(db, "SELECT string_agg(status || ':' || attempts, ',' ORDER BY plugin_id)"
                        " FROM event_runs WHERE event_id = $1::uuid", 1, p);
  assert_string_equal(st, "running:1,running:1"); /* w2 leases neither */
  free(st);
  assert_int_equal(ac_events_finish_batch(ac_db_conn(db), "w1", outcomes, &err), AC_OK);
  st = scalar(db, "SELECT string_agg(status || ':' || attempts, ',' ORDER BY plugin_id)"
                  " FROM event_runs WHERE event_id = $1::uuid", 1, p);
  assert_string_equal(st, "retrying:0,ok:1");
  free(st);
  st = scalar(db, "SELECT status FROM events WHERE id = $1::uuid", 1, p);
  assert_string_not_equal(st, "done"); /* a run is left to do */
  free(st);
  json_decref(outcomes);
  /* the last run's final outcome closes the event */
  assert_int_equal(ac_db_exec(db, "UPDATE event_runs SET next_attempt_at = now()"
                                  " WHERE event_id = $1::uuid AND status = 'retrying'",
                              1, p, NULL, &err),
                   AC_OK);
  assert_int_equal(ac_events_claim(ac_db_conn(db), "w1", 60, 10, NULL, NULL, &runs, &err), AC_OK);
  assert_int_equal(json_array_size(runs), 1);
  json_decref(runs);
  outcomes = json_pack("[{s:s, s:s, s:s, s:i, s:s, s:i}]", "eventId", id, "pluginId", "a",
                       "status", "error", "durationMs", 1, "error", "failed", "retryInMs", 0);
  assert_int_equal(ac_events_finish_batch(ac_db_conn(db), "w1", outcomes, &err), AC_OK);
  json_decref(outcomes);
  st = scalar(db, "SELECT status FROM events WHERE id = $1::uuid", 1, p);
  assert_string_equal(st, "done");
  free(st);
  free(id);
  json_decref(payload);
  json_decref(plugins);
  exec_ok(db, "DELETE FROM events WHERE namespace_id = 'ns2'");
  ac_db_free(db);
}

/* Claims take turns across namespaces: behind a backlog of one namespace,
 * another namespace's newer run is in the next claim. */
static void test_claim_takes_turns(void **state) {
  (void)state;
  ac_db *db = connect_main();
  ac_err err = {0};
  exec_ok(db, "UPDATE event_runs SET next_attempt_at = now() + interval '1 day'");
  json_t *payload = json_pack("{s:s}", "approvalId", "turns"), *plugins = json_pack("[s]", "a");
  for (int i = 0; i < 200; i++) {
    char *id = NULL;
    int created = 0;
    assert_int_equal(ac_events_put(ac_db_conn(db), "ns1", "approval.created", payload, NULL,
                                   plugins, &id, &created, &err),
                     AC_OK);
    free(id);
  }
  char *late = NULL;
  int created = 0;
  assert_int_equal(ac_events_put(ac_db_conn(db), "ns2", "approval.created", payload, NULL, plugins,
                                 &late, &created, &err),
                   AC_OK);
  json_t *runs = NULL;
  assert_int_equal(ac_events_claim(ac_db_conn(db), "w1", 60, 10, NULL, NULL, &runs, &err), AC_OK);
  /* a share per namespace with runs to do (those of earlier tests, not
   * due, count too): fewer than the limit, never only ns1's */
  assert_in_range(json_array_size(runs), 2, 10);
  int found = 0;
  size_t i;
  json_t *r;
  json_array_foreach(runs, i, r) found |= strcmp(json_string_value(json_object_get(r, "eventId")),
                                                 late) == 0;
  assert_true(found);
  json_decref(runs);
  /* the turns start after the namespace the last claim ended with */
  exec_ok(db, "UPDATE event_runs SET status = 'queued', lease_owner = NULL,"
              " next_attempt_at = now() WHERE namespace_id = 'ns2' AND plugin_id = 'a'");
  assert_int_equal(ac_events_claim(ac_db_conn(db), "w1", 60, 1, "ns1", NULL, &runs, &err), AC_OK);
  assert_int_equal(json_array_size(runs), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "eventId")), late);
  json_decref(runs);
  assert_int_equal(ac_events_claim(ac_db_conn(db), "w1", 60, 1, "ns2", NULL, &runs, &err), AC_OK);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(runs, 0), "namespaceId")), "ns1");
  json_decref(runs);
  /* a namespace at its bulkhead gives nothing */
  json_t *skip = json_pack("[s]", "ns1");
  assert_int_equal(ac_events_claim(ac_db_conn(db), "w1", 60, 10, NULL, skip, &runs, &err), AC_OK);
  json_array_foreach(runs, i, r)
      assert_string_not_equal(json_string_value(json_object_get(r, "namespaceId")), "ns1");
  json_decref(runs);
  json_decref(skip);
  /* and one namespace still gets at most its turn per claim */
  assert_int_equal(ac_events_claim(ac_db_conn(db), "w1", 60, 500, NULL, NULL, &runs, &err), AC_OK);
  assert_int_equal(json_array_size(runs), AC_EVENTS_CLAIM_TURN);
  json_decref(runs);
  free(late);
  json_decref(payload);
  json_decref(plugins);
  exec_ok(db, "DELETE FROM events WHERE payload->>'approvalId' = 'turns'");
  ac_db_free(db);
}

typedef struct outage_feed {
  ac_intake *in;
  intake_log *log;
  int n;
} outage_feed;

static void *feed_events(void *arg) {
  outage_feed *f = arg;
  for (int i = 0; i < f->n; i++) {
    intake_put(f->in, f->log, i, "ns1", NULL, 1);
    usleep(1000);
  }
  return NULL;
}

/* The database goes away while batches are written: an event reported
 * stored is stored (none is lost), the others are reported AC_ERR_DB, and
 * the intake goes on once the database is back. */
static void test_intake_outage(void **state) {
  (void)state;
  ac_db_pool *pool = main_pool(4, 2000);
  static intake_log log;
  ac_intake *in = intake_with(pool, 16, 2000, &log);
  outage_feed f = {in, &log, 200};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, feed_events, &f), 0);
  ac_db *killer = connect_main();
  for (int round = 0; round < 5; round++) {
    usleep(30000);
    exec_ok(killer, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()");
  }
  pthread_join(t, NULL);
  intake_wait(&log, 200);
  int stored = 0, refused = 0;
  for (int i = 0; i < 200; i++) {
    assert_int_equal(log.o[i].reported, 1);
    if (log.o[i].rc == AC_OK) {
      const char *id[1] = {log.o[i].id};
      char *n = scalar(killer, "SELECT count(*) FROM events WHERE id = $1::uuid", 1, id);
      if (strcmp(n, "1") != 0)
        fail_msg("event %d was reported stored but is not", i);
      free(n);
      stored++;
    } else {
      assert_int_equal(log.o[i].rc, AC_ERR_DB);
      refused++;
    }
  }
  assert_true(stored > 0);
  /* after the outage: stored again */
  log.reported = 0;
  memset(log.o, 0, sizeof log.o);
  intake_put(in, &log, 0, "ns1", NULL, 1);
  intake_wait(&log, 1);
  assert_int_equal(log.o[0].rc, AC_OK);
  print_message("outage: %d stored, %d refused\n", stored, refused);
  ac_intake_stop(in);
  exec_ok(killer, "DELETE FROM events WHERE payload ? 'n'");
  ac_db_free(killer);
  ac_db_pool_free(pool);
}

/* ------------------------------------------------------------ reconnect */

static void terminate(ac_db *victim, int wait_ms) {
  ac_db *killer = connect_main();
  char *pid = scalar(victim, "SELECT pg_backend_pid()", 0, NULL);
  char ms[16];
  snprintf(ms, sizeof ms, "%d", wait_ms);
  const char *p[2] = {pid, ms};
  char *v = scalar(killer, "SELECT pg_terminate_backend($1::int, $2::bigint)", 2, p);
  assert_string_equal(v, "t");
  free(v);
  free(pid);
  ac_db_free(killer);
}

static void test_reconnect(void **state) {
  (void)state;
  ac_db *db = connect_main();
  assert_int_equal(ac_db_generation(db), 1);
  /* Killed while idle (waited for): found before the next statement. */
  terminate(db, 5000);
  char *v = scalar(db, "SELECT 40 + 2", 0, NULL);
  assert_string_equal(v, "42");
  free(v);
  assert_int_equal(ac_db_generation(db), 2);
  /* Killed without waiting: whichever way it is noticed, the statement
   * succeeds on a new connection. */
  for (int i = 0; i < 3; i++) {
    terminate(db, 0);
    v = scalar(db, "SELECT 1", 0, NULL);
    assert_string_equal(v, "1");
    free(v);
  }
  /* One more statement: a backend that answered before dying is noticed. */
  v = scalar(db, "SELECT 2", 0, NULL);
  free(v);
  assert_int_equal(ac_db_generation(db), 5);

  /* Inside a transaction the loss is reported, and so is the commit. */
  ac_err err = {0};
  exec_ok(db, "CREATE TABLE IF NOT EXISTS t_reconnect (x int)");
  assert_int_equal(ac_db_begin(db, &err), 0);
  assert_int_equal(ac_db_begin(db, &err), AC_ERR_INTERNAL);
  exec_ok(db, "INSERT INTO t_reconnect VALUES (1)");
  terminate(db, 5000);
  assert_int_equal(ac_db_exec(db, "INSERT INTO t_reconnect VALUES (2)", 0, NULL, NULL, &err),
                   AC_ERR_DB);
  assert_non_null(strstr(err.msg, "database unavailable"));
  assert_int_equal(ac_db_commit(db, &err), AC_ERR_DB);
  v = scalar(db, "SELECT count(*) FROM t_reconnect", 0, NULL);
  assert_string_equal(v, "0");
  free(v);

  /* A failed statement makes COMMIT a failure, and the error is mapped. */
  assert_int_equal(ac_db_begin(db, &err), 0);
  exec_ok(db, "INSERT INTO t_reconnect VALUES (3)");
  assert_int_equal(ac_db_exec(db, "SELECT 1/0", 0, NULL, NULL, &err), AC_ERR_INVALID);
  assert_string_equal(ac_db_sqlstate(db), "22012");
  assert_int_equal(ac_db_commit(db, &err), AC_ERR_DB);
  assert_non_null(strstr(err.msg, "rolled back"));
  assert_int_equal(ac_db_begin(db, &err), 0);
  exec_ok(db, "INSERT INTO t_reconnect VALUES (4)");
  assert_int_equal(ac_db_commit(db, &err), 0);
  assert_int_equal(ac_db_commit(db, &err), AC_ERR_INTERNAL);
  v = scalar(db, "SELECT string_agg(x::text, ',') FROM t_reconnect", 0, NULL);
  assert_string_equal(v, "4");
  free(v);
  ac_db_rollback(db); /* nothing open: a no-op */
  exec_ok(db, "DROP TABLE t_reconnect");

  /* exec_once still re-opens a connection found broken before sending. */
  terminate(db, 5000);
  assert_int_equal(ac_db_exec_once(db, "SELECT 1", 0, NULL, NULL, &err), 0);
  ac_db_free(db);
  ac_db_free(NULL);
}

static void test_connect_failures(void **state) {
  (void)state;
  static const struct {
    const char *url;
    int code;
    const char *msg;
  } cases[] = {
      {"host=/nonexistent/dir dbname=x connect_timeout=2", AC_ERR_DB, "database unavailable: "},
      {"postgresql://[::1", AC_ERR_INVALID, "invalid database url"},
      {"nokey=1", AC_ERR_INVALID, "invalid database url"},
      {"", AC_ERR_INVALID, "empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ac_err err = {0};
    assert_null(ac_db_connect(cases[i].url, &err));
    assert_int_equal(err.code, cases[i].code);
    if (!strstr(err.msg, cases[i].msg))
      fail_msg("case %zu: %s", i, err.msg);
  }
  /* The pool only checks syntax; an unreachable server fails checkout. */
  ac_err err = {0};
  assert_null(ac_db_pool_new("nokey=1", 2, 100, &err));
  assert_null(ac_db_pool_new(main_conninfo, 0, 100, &err));
  ac_db_pool *pool = ac_db_pool_new(cases[0].url, 2, 100, &err);
  assert_non_null(pool);
  assert_null(ac_db_pool_get(pool, -1, &err));
  assert_int_equal(err.code, AC_ERR_DB);
  assert_int_equal(ac_db_pool_exec(pool, "SELECT 1", 0, NULL, NULL, NULL), AC_ERR_DB);
  ac_db_pool_free(pool);
  ac_db_pool_free(NULL);
}

/* ------------------------------------------------------------------ pool */

typedef struct putter {
  ac_db_pool *pool;
  ac_db *db;
  int delay_ms;
} putter;

static void *put_later(void *arg) {
  putter *p = arg;
  ac_clock_sleep_ms(p->delay_ms);
  ac_db_pool_put(p->pool, p->db);
  return NULL;
}

static void test_pool_checkout_timeout(void **state) {
  (void)state;
  ac_db_pool *pool = main_pool(2, 200);
  assert_string_equal(ac_db_pool_url(pool), main_conninfo);
  ac_err err = {0};
  ac_db *a = ac_db_pool_get(pool, -1, &err);
  ac_db *b = ac_db_pool_get(pool, -1, &err);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  int64_t t0 = ac_clock_mono_ms();
  assert_null(ac_db_pool_get(pool, -1, &err));
  int64_t waited = ac_clock_mono_ms() - t0;
  assert_int_equal(err.code, AC_ERR_TIMEOUT);
  assert_true(waited >= 180 && waited < 2000);
  assert_int_equal(ac_db_pool_exec(pool, "SELECT 1", 0, NULL, NULL, &err), AC_ERR_TIMEOUT);

  /* A connection returned while someone waits goes to the waiter. */
  putter p = {pool, a, 100};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, put_later, &p), 0);
  t0 = ac_clock_mono_ms();
  ac_db *c = ac_db_pool_get(pool, 3000, &err);
  pthread_join(th, NULL);
  assert_ptr_equal(c, a);
  assert_true(ac_clock_mono_ms() - t0 < 2000);

  /* Returned inside a transaction: rolled back. */
  exec_ok(c, "CREATE TABLE IF NOT EXISTS t_pool (x int)");
  assert_int_equal(ac_db_begin(c, &err), 0);
  exec_ok(c, "INSERT INTO t_pool VALUES (1)");
  ac_db_pool_put(pool, c);
  c = ac_db_pool_get(pool, -1, &err);
  assert_non_null(c);
  char *v = scalar(c, "SELECT count(*) FROM t_pool", 0, NULL);
  assert_string_equal(v, "0");
  free(v);
  exec_ok(c, "DROP TABLE t_pool");

  /* Returned after its server connection died: the next checkout hands
   * out a working one, usable through the raw PGconn too. */
  terminate(c, 5000);
  ac_db_pool_put(pool, c);
  c = ac_db_pool_get(pool, -1, &err);
  assert_non_null(c);
  PGresult *r = PQexecParams(ac_db_conn(c), "SELECT 7", 0, NULL, NULL, NULL, NULL, 0);
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  ac_db_pool_put(pool, c);
  ac_db_pool_put(pool, b);
  ac_db_pool_put(pool, NULL);
  ac_db_pool_free(pool);
}

typedef struct worker {
  ac_db_pool *pool;
  int id;
  int failures;
} worker;

static void *hammer(void *arg) {
  worker *w = arg;
  char id[16];
  snprintf(id, sizeof id, "%d", w->id);
  const char *p[1] = {id};
  for (int i = 0; i < 40; i++) {
    ac_err err = {0};
    if (ac_db_pool_exec(w->pool, "INSERT INTO t_hammer VALUES ($1::int)", 1, p, NULL, &err))
      w->failures++;
  }
  return NULL;
}

static void test_pool_threads(void **state) {
  (void)state;
  ac_db *db = connect_main();
  exec_ok(db, "CREATE TABLE t_hammer (x int)");
  ac_db_pool *pool = main_pool(3, 10000);
  enum { N = 8 };
  worker w[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    w[i] = (worker){pool, i, 0};
    assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].failures, 0);
  }
  char *v = scalar(db, "SELECT count(*) || '/' || count(DISTINCT x) FROM t_hammer", 0, NULL);
  assert_string_equal(v, "320/8");
  free(v);
  /* The pool never opened more than its size. */
  v = scalar(db, "SELECT count(*) <= 3 FROM pg_stat_activity WHERE datname = current_database()"
                 " AND backend_type = 'client backend' AND pid <> pg_backend_pid()", 0, NULL);
  assert_string_equal(v, "t");
  free(v);
  exec_ok(db, "DROP TABLE t_hammer");
  ac_db_pool_free(pool);
  ac_db_free(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_codes),
      cmocka_unit_test(test_migrate_once_and_idempotent),
      cmocka_unit_test(test_migrate_concurrently),
      cmocka_unit_test(test_migrate_failure_rolls_back),
      cmocka_unit_test(test_cmd_migrate),
      cmocka_unit_test(test_schema_constraints),
      cmocka_unit_test(test_config_triggers_and_notify),
      cmocka_unit_test(test_event_idempotency),
      cmocka_unit_test(test_intake_batches),
      cmocka_unit_test(test_intake_outage),
      cmocka_unit_test(test_finish_batch),
      cmocka_unit_test(test_claim_takes_turns),
      cmocka_unit_test(test_kv_roundtrip),
      cmocka_unit_test(test_kv_limits),
      cmocka_unit_test(test_kv_ttl),
      cmocka_unit_test(test_reconnect),
      cmocka_unit_test(test_connect_failures),
      cmocka_unit_test(test_pool_checkout_timeout),
      cmocka_unit_test(test_pool_threads),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
