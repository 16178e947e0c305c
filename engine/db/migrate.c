/* migrate.c — schema migrations with an advisory lock. */
#include "db/migrate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATION_LOCK "7235412001" /* pg_advisory_lock key of the engine */

static int exec_ok(PGconn *db, PGresult *r, ac_err *err, const char *what) {
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    PQclear(r);
    return AC_OK;
  }
  ac_err_set(err, AC_ERR_DB, "%s: %s", what, PQerrorMessage(db));
  PQclear(r);
  return AC_ERR_DB;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = n >= 0 && n < (8 << 20) ? malloc((size_t)n + 1) : NULL;
  if (s && fread(s, 1, (size_t)n, f) == (size_t)n)
    s[n] = '\0';
  else {
    free(s);
    s = NULL;
  }
  fclose(f);
  return s;
}

static int apply_one(PGconn *db, const char *dir, const char *name, ac_logger *log, int *applied,
                     ac_err *err) {
  const char *p[] = {name};
  PGresult *r = PQexecParams(db, "SELECT 1 FROM schema_migrations WHERE name = $1", 1, NULL, p,
                             NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    return exec_ok(db, r, err, "reading schema_migrations");
  int done = PQntuples(r) > 0;
  PQclear(r);
  if (done)
    return AC_OK;
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  char *sql = read_file(path);
  if (!sql)
    return ac_err_set(err, AC_ERR_IO, "cannot read migration %s", path);
  int rc = exec_ok(db, PQexec(db, "BEGIN"), err, "BEGIN");
  if (rc == AC_OK)
    rc = exec_ok(db, PQexec(db, sql), err, name); /* the file's own SQL text */
  if (rc == AC_OK)
    rc = exec_ok(db, PQexecParams(db, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, NULL, p,
                                  NULL, NULL, 0),
                 err, "recording the migration");
  if (rc == AC_OK)
    rc = exec_ok(db, PQexec(db, "COMMIT"), err, "COMMIT");
  else
    PQclear(PQexec(db, "ROLLBACK"));
  free(sql);
  if (rc == AC_OK) {
    ac_logf(log, AC_LOG_INFO, "applied migration %s", name);
    if (applied)
      (*applied)++;
  }
  return rc;
}

int ac_db_migrate(PGconn *db, const char *dir, ac_logger *log, int *applied, ac_err *err) {
  if (applied)
    *applied = 0;
  DIR *d = opendir(dir);
  if (!d)
    return ac_err_set(err, AC_ERR_IO, "cannot open the migrations directory %s", dir);
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0) {
      char **grown = realloc(names, (n + 1) * sizeof *names);
      if (!grown)
        break;
      names = grown;
      names[n++] = strdup(e->d_name);
    }
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp);

  const char *lock[] = {MIGRATION_LOCK};
  int rc = exec_ok(db, PQexecParams(db, "SELECT pg_advisory_lock($1::bigint)", 1, NULL, lock, NULL, NULL, 0),
                   err, "taking the migration lock");
  if (rc == AC_OK)
    rc = exec_ok(db,
                 PQexec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                            "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"),
                 err, "creating schema_migrations");
  for (size_t i = 0; rc == AC_OK && i < n; i++)
    rc = apply_one(db, dir, names[i], log, applied, err);
  PQclear(PQexecParams(db, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, lock, NULL, NULL, 0));
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return rc;
}
