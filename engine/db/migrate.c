/* migrate.c — applies the migrations/ SQL files under an advisory lock, once each. */
#include "db/migrate.h"

#include "core/buf.h"
#include "core/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILES 1000
#define MAX_FILE_BYTES (4 * 1024 * 1024)
/* Arbitrary, fixed: every instance must use the same key ("acmigrat"). */
#define LOCK_KEY "7017304106624606580"
/* How long a starting instance waits for another one's migration. */
#define LOCK_WAIT "300s"

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

static int ends_with_sql(const char *s) {
  size_t n = strlen(s);
  return n > 4 && strcmp(s + n - 4, ".sql") == 0;
}

/* Lists the regular *.sql files of dir (not hidden ones), sorted. */
static int list_files(const char *dir, char ***out, int *count, ac_err *err) {
  DIR *d = opendir(dir);
  if (!d)
    return ac_err_set(err, AC_ERR_IO, "migrations directory %s: %s", dir, strerror(errno));
  char **names = calloc(MAX_FILES, sizeof *names);
  if (!names) {
    closedir(d);
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  }
  int n = 0, rc = AC_OK;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !ends_with_sql(e->d_name))
      continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (n == MAX_FILES) {
      rc = ac_err_set(err, AC_ERR_LIMIT, "%s holds more than %d migrations", dir, MAX_FILES);
      break;
    }
    if (!(names[n] = strdup(e->d_name))) {
      rc = ac_err_set(err, AC_ERR_NOMEM, "out of memory");
      break;
    }
    n++;
  }
  closedir(d);
  if (rc) {
    free_names(names, n);
    return rc;
  }
  if (n > 1)
    qsort(names, (size_t)n, sizeof *names, cmp_names);
  *out = names;
  *count = n;
  return AC_OK;
}

static int read_text(const char *dir, const char *name, char **out, ac_err *err) {
  ac_buf path = AC_BUF_INIT(8192);
  if (ac_buf_printf(&path, "%s/%s", dir, name)) {
    ac_buf_free(&path);
    return ac_err_set(err, AC_ERR_LIMIT, "migration path too long");
  }
  FILE *f = fopen(path.data, "rb");
  if (!f) {
    int rc = ac_err_set(err, AC_ERR_IO, "%s: %s", path.data, strerror(errno));
    ac_buf_free(&path);
    return rc;
  }
  ac_buf text = AC_BUF_INIT(MAX_FILE_BYTES);
  char chunk[8192];
  size_t got;
  int rc = AC_OK;
  while (!rc && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (ac_buf_append(&text, chunk, got))
      rc = ac_err_set(err, AC_ERR_LIMIT, "%s is larger than %d bytes", path.data, MAX_FILE_BYTES);
  if (!rc && ferror(f))
    rc = ac_err_set(err, AC_ERR_IO, "%s: read error", path.data);
  fclose(f);
  if (!rc && text.len && strlen(text.data) != text.len)
    rc = ac_err_set(err, AC_ERR_INVALID, "%s contains a NUL byte", path.data);
  ac_buf_free(&path);
  if (rc) {
    ac_buf_free(&text);
    return rc;
  }
  if (!(*out = ac_buf_take(&text)))
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  return AC_OK;
}

static void sha256_hex(const char *s, char out[65]) {
  unsigned char md[32];
  unsigned int len = 0;
  static const char hex[] = "0123456789abcdef";
  EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
}

/* Runs one statement (params may be NULL with n = 0); 0 or AC_ERR_DB
 * with the server's message. *out (optional) receives the result. */
static int run(PGconn *c, const char *sql, int n, const char *const *params, PGresult **out,
               ac_err *err) {
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    if (out)
      *out = r;
    else
      PQclear(r);
    return AC_OK;
  }
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  int lost = PQstatus(c) != CONNECTION_OK;
  int rc = ac_err_set(err, AC_ERR_DB, "%s%s (SQLSTATE %s)",
                      lost ? "database unavailable: " : "database error: ",
                      msg ? msg : "connection lost", state ? state : "none");
  PQclear(r);
  return rc;
}

/* Applies one file with its record in one transaction. */
static int apply_one(PGconn *c, const char *name, const char *sql, const char *sum, ac_err *err) {
  int rc = run(c, "BEGIN", 0, NULL, NULL, err);
  if (rc)
    return rc;
  const char *params[2] = {name, sum};
  /* PQexec, not PQexecParams: a migration file holds many statements and
   * only the simple protocol runs more than one. The text is the file's. */
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    rc = ac_err_set(err, AC_ERR_DB, "database error: %s (SQLSTATE %s)",
                    msg ? msg : "connection lost", state ? state : "none");
  }
  PQclear(r);
  if (!rc)
    rc = run(c, "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", 2, params, NULL,
             err);
  PGresult *done = NULL;
  if (!rc && !(rc = run(c, "COMMIT", 0, NULL, &done, err)) && strcmp(PQcmdStatus(done), "COMMIT"))
    rc = ac_err_set(err, AC_ERR_DB, "database error: the transaction was rolled back");
  PQclear(done);
  if (rc && PQtransactionStatus(c) != PQTRANS_IDLE)
    PQclear(PQexecParams(c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
  return rc;
}

/* Looks name up in the recorded rows; returns its checksum or NULL. */
static const char *recorded(PGresult *r, const char *name) {
  for (int i = 0; i < PQntuples(r); i++)
    if (!strcmp(PQgetvalue(r, i, 0), name))
      return PQgetvalue(r, i, 1);
  return NULL;
}

static int apply_pending(PGconn *c, const char *dir, char **names, int n, ac_logger *log,
                         int *applied, ac_db_migrate_fn on_applied, void *ud, ac_err *err) {
  PGresult *done = NULL;
  int rc = run(c,
               "CREATE TABLE IF NOT EXISTS schema_migrations ("
               " name text PRIMARY KEY,"
               " checksum text NOT NULL DEFAULT '',"
               " applied_at timestamptz NOT NULL DEFAULT now())",
               0, NULL, NULL, err);
  /* A table made by an older engine may lack the checksum column. */
  if (!rc)
    rc = run(c, "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text NOT NULL "
                "DEFAULT ''", 0, NULL, NULL, err);
  if (!rc)
    rc = run(c, "SELECT name, checksum FROM schema_migrations", 0, NULL, &done, err);
  for (int i = 0; i < n && !rc; i++) {
    char *sql = NULL;
    char sum[65];
    if ((rc = read_text(dir, names[i], &sql, err)))
      break;
    sha256_hex(sql, sum);
    const char *was = recorded(done, names[i]);
    if (was) {
      if (*was && strcmp(was, sum))
        ac_log(log, AC_LOG_WARN, "migration changed after it was applied; not applied again",
               json_pack("{s:s}", "file", names[i]));
    } else {
      int64_t t0 = ac_clock_mono_ms();
      if ((rc = apply_one(c, names[i], sql, sum, err))) {
        ac_err_prefix(err, "migration %s", names[i]);
      } else {
        if (applied)
          (*applied)++;
        ac_log(log, AC_LOG_INFO, "migration applied",
               json_pack("{s:s,s:I}", "file", names[i], "durationMs",
                         (json_int_t)(ac_clock_mono_ms() - t0)));
        if (on_applied)
          on_applied(ud, names[i]);
      }
    }
    free(sql);
  }
  PQclear(done);
  return rc;
}

int ac_db_migrate_ex(PGconn *c, const char *dir, ac_logger *log, int *applied,
                     ac_db_migrate_fn on_applied, void *ud, ac_err *err) {
  if (applied)
    *applied = 0;
  if (!c || !dir)
    return ac_err_set(err, AC_ERR_INVALID, "ac_db_migrate: connection and dir are required");
  char **names = NULL;
  int n = 0;
  int rc = list_files(dir, &names, &n, err);
  if (rc)
    return rc;
  const char *lock[1] = {LOCK_KEY};
  const char *wait[1] = {LOCK_WAIT};
  if ((rc = run(c, "SELECT set_config('lock_timeout', $1, false)", 1, wait, NULL, err)) ||
      (rc = run(c, "SELECT pg_advisory_lock($1::bigint)", 1, lock, NULL, err))) {
    ac_err_prefix(err, "taking the migration lock");
  } else {
    rc = apply_pending(c, dir, names, n, log, applied, on_applied, ud, err);
    PQclear(PQexecParams(c, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, lock, NULL, NULL, 0));
  }
  PQclear(PQexecParams(c, "RESET lock_timeout", 0, NULL, NULL, NULL, NULL, 0));
  free_names(names, n);
  return rc;
}

int ac_db_migrate(PGconn *db, const char *dir, ac_logger *log, int *applied, ac_err *err) {
  return ac_db_migrate_ex(db, dir, log, applied, NULL, NULL, err);
}
