/* db.c — reconnecting PostgreSQL connection, transactions, LISTEN, pool. */
#include "db/db.h"

#include "core/buf.h"
#include "core/clock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CHANNELS 16
#define MAX_POOL 1024

struct ac_db {
  PGconn *conn;
  char *url;
  unsigned long gen;          /* connections opened so far */
  unsigned long notified_gen; /* gen last reported to a notify callback */
  int in_tx;                  /* ac_db_begin ran, no commit/rollback yet */
  int tx_lost;                /* the connection broke inside that transaction */
  char sqlstate[6];
  char *channels[MAX_CHANNELS];
  int nchannels;
};

/* ------------------------------------------------------------ connection */

/* Copies libpq's (multi-line, newline-terminated) message into one line. */
static void one_line(const char *in, char *out, size_t size) {
  size_t o = 0;
  int space = 0;
  for (const char *p = in ? in : ""; *p && o + 1 < size; p++) {
    if (*p == '\n' || *p == '\r' || *p == '\t') {
      space = 1;
      continue;
    }
    if (space && o > 0 && o + 2 < size) {
      out[o++] = ' ';
    }
    space = 0;
    out[o++] = *p;
  }
  out[o] = '\0';
}

static void quiet_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

int ac_db_open_conn(const char *url, PGconn **out, ac_err *err) {
  /* Entries before "dbname" are defaults the url may override. */
  const char *keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname", NULL};
  const char *vals[] = {"10", "agentcore", "UTF8", url, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (!c)
    return ac_err_set(err, AC_ERR_NOMEM, "database unavailable: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    char msg[512];
    one_line(PQerrorMessage(c), msg, sizeof msg);
    PQfinish(c);
    return ac_err_set(err, AC_ERR_DB, "database unavailable: %s", msg);
  }
  /* Notices (and a "terminating connection" read while idle) would go to
   * standard error; the engine logs JSON lines only. */
  PQsetNoticeProcessor(c, quiet_notice, NULL);
  *out = c;
  return AC_OK;
}

static int listen_raw(PGconn *c, const char *channel, ac_err *err) {
  char *ident = PQescapeIdentifier(c, channel, strlen(channel));
  if (!ident)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  /* LISTEN takes no parameters; the channel was checked against
   * ^[a-z_][a-z0-9_]*$ and is quoted by libpq. */
  ac_buf sql = AC_BUF_INIT(128);
  int rc = ac_buf_printf(&sql, "LISTEN %s", ident);
  PQfreemem(ident);
  if (rc) {
    ac_buf_free(&sql);
    return ac_err_set(err, rc, "channel name too long");
  }
  PGresult *r = PQexecParams(c, sql.data, 0, NULL, NULL, NULL, NULL, 0);
  ac_buf_free(&sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    char msg[512];
    one_line(PQerrorMessage(c), msg, sizeof msg);
    PQclear(r);
    return ac_err_set(err, AC_ERR_DB, "database unavailable: LISTEN failed: %s", msg);
  }
  PQclear(r);
  return AC_OK;
}

/* Replaces the connection with a new one and restores what a session must
 * keep (LISTENs). A transaction open on the old connection is lost. */
static int reconnect(ac_db *db, ac_err *err) {
  if (db->in_tx)
    db->tx_lost = 1;
  PQfinish(db->conn);
  db->conn = NULL;
  int rc = ac_db_open_conn(db->url, &db->conn, err);
  if (rc)
    return rc;
  db->gen++;
  for (int i = 0; i < db->nchannels; i++) {
    if ((rc = listen_raw(db->conn, db->channels[i], err))) {
      PQfinish(db->conn);
      db->conn = NULL;
      return rc;
    }
  }
  return AC_OK;
}

ac_db *ac_db_connect(const char *url, ac_err *err) {
  if (!url || !*url) {
    ac_err_set(err, AC_ERR_INVALID, "database url is empty");
    return NULL;
  }
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(url, &perr);
  if (!opts) {
    char msg[512];
    one_line(perr ? perr : "out of memory", msg, sizeof msg);
    PQfreemem(perr);
    ac_err_set(err, AC_ERR_INVALID, "invalid database url: %s", msg);
    return NULL;
  }
  PQconninfoFree(opts);
  ac_db *db = calloc(1, sizeof *db);
  if (!db || !(db->url = strdup(url))) {
    free(db);
    ac_err_set(err, AC_ERR_NOMEM, "out of memory");
    return NULL;
  }
  if (ac_db_open_conn(url, &db->conn, err)) {
    free(db->url);
    free(db);
    return NULL;
  }
  db->gen = db->notified_gen = 1;
  return db;
}

void ac_db_free(ac_db *db) {
  if (!db)
    return;
  PQfinish(db->conn);
  for (int i = 0; i < db->nchannels; i++)
    free(db->channels[i]);
  free(db->url);
  free(db);
}

const char *ac_db_sqlstate(const ac_db *db) { return db->sqlstate; }

unsigned long ac_db_generation(const ac_db *db) { return db->gen; }

PGconn *ac_db_conn(ac_db *db) { return db->conn; }

int ac_db_ok(ac_db *db) {
  if (!db->conn || PQstatus(db->conn) != CONNECTION_OK)
    return 0;
  /* A server that ended the session (restart, pg_terminate_backend) has
   * sent a notice and closed the socket; reading it now finds that out
   * before a statement is sent, so nothing is ambiguous. */
  if (PQtransactionStatus(db->conn) == PQTRANS_ACTIVE)
    return 1;
  /* The notice and the end of the stream may come in separate reads, so
   * read while the socket has something (EOF counts as readable). */
  for (int i = 0; i < 4; i++) {
    struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0)
      break;
    if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK)
      return 0;
  }
  return PQstatus(db->conn) == CONNECTION_OK;
}

static int in_transaction(const ac_db *db) {
  if (db->in_tx)
    return 1;
  PGTransactionStatusType t = db->conn ? PQtransactionStatus(db->conn) : PQTRANS_UNKNOWN;
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

static int conn_lost(const ac_db *db, const PGresult *r) {
  if (!r || !db->conn || PQstatus(db->conn) != CONNECTION_OK)
    return 1;
  const char *s = db->sqlstate;
  return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
         strcmp(s, "57P03") == 0;
}

int ac_db_error_code(const char *s) {
  if (!s)
    return AC_ERR_DB;
  if (!strcmp(s, "23505"))
    return AC_ERR_CONFLICT;
  if (!strcmp(s, "23503"))
    return AC_ERR_NOTFOUND;
  if (!strncmp(s, "22", 2) || !strcmp(s, "23502") || !strcmp(s, "23514"))
    return AC_ERR_INVALID;
  if (!strcmp(s, "40001") || !strcmp(s, "40P01") || !strcmp(s, "55P03"))
    return AC_ERR_BUSY;
  if (!strcmp(s, "57014"))
    return AC_ERR_TIMEOUT;
  return AC_ERR_DB;
}

/* Records the SQLSTATE of r; returns 0 for success, else the mapped code
 * with the server's message in err. */
static int check_result(ac_db *db, const PGresult *r, ac_err *err) {
  db->sqlstate[0] = '\0';
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
    return AC_OK;
  const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (s) {
    size_t n = strlen(s);
    if (n > 5)
      n = 5;
    memcpy(db->sqlstate, s, n);
    db->sqlstate[n] = '\0';
  }
  char msg[768];
  const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  one_line(primary ? primary : PQerrorMessage(db->conn), msg, sizeof msg);
  return ac_err_set(err, ac_db_error_code(db->sqlstate), "database error: %s (SQLSTATE %s)", msg,
                    db->sqlstate[0] ? db->sqlstate : "none");
}

/* Re-opens a connection found broken before a statement is sent. Fails if
 * a transaction was open on it: the statements before are gone. */
static int ensure_conn(ac_db *db, ac_err *err) {
  if (ac_db_ok(db))
    return db->in_tx && db->tx_lost
               ? ac_err_set(err, AC_ERR_DB, "database unavailable: connection lost during transaction")
               : AC_OK;
  int had_tx = db->in_tx;
  int rc = reconnect(db, err);
  if (rc)
    return rc;
  if (had_tx)
    return ac_err_set(err, AC_ERR_DB, "database unavailable: connection lost during transaction");
  return AC_OK;
}

static int exec_impl(ac_db *db, const char *sql, int nparams, const char *const *params,
                     PGresult **res_out, int may_retry, ac_err *err) {
  if (res_out)
    *res_out = NULL;
  db->sqlstate[0] = '\0';
  int rc = ensure_conn(db, err);
  if (rc)
    return rc;
  for (int attempt = 0;; attempt++) {
    int tx = in_transaction(db);
    PGresult *r = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    rc = check_result(db, r, err);
    if (!rc || !conn_lost(db, r)) {
      if (!rc && res_out)
        *res_out = r;
      else
        PQclear(r);
      return rc;
    }
    PQclear(r);
    char why[512];
    one_line(PQerrorMessage(db->conn), why, sizeof why);
    if ((rc = reconnect(db, err)))
      return rc;
    if (tx)
      return ac_err_set(err, AC_ERR_DB, "database unavailable: connection lost during transaction: %s", why);
    if (!may_retry || attempt > 0)
      return ac_err_set(err, AC_ERR_DB, "database unavailable: %s", why);
  }
}

int ac_db_exec(ac_db *db, const char *sql, int nparams, const char *const *params,
               PGresult **res_out, ac_err *err) {
  return exec_impl(db, sql, nparams, params, res_out, 1, err);
}

int ac_db_exec_once(ac_db *db, const char *sql, int nparams, const char *const *params,
                    PGresult **res_out, ac_err *err) {
  return exec_impl(db, sql, nparams, params, res_out, 0, err);
}

int ac_db_exec_script(ac_db *db, const char *sql, ac_err *err) {
  db->sqlstate[0] = '\0';
  int rc = ensure_conn(db, err);
  if (rc)
    return rc;
  /* PQexec, not PQexecParams: a migration holds many statements, and
   * only PQexec's simple protocol runs more than one. */
  PGresult *r = PQexec(db->conn, sql);
  rc = check_result(db, r, err);
  int lost = rc && conn_lost(db, r);
  PQclear(r);
  if (lost) {
    char why[512];
    one_line(PQerrorMessage(db->conn), why, sizeof why);
    reconnect(db, NULL);
    return ac_err_set(err, AC_ERR_DB, "database unavailable: %s", why);
  }
  return rc;
}

/* ---------------------------------------------------------- transactions */

int ac_db_begin(ac_db *db, ac_err *err) {
  if (db->in_tx)
    return ac_err_set(err, AC_ERR_INTERNAL, "a transaction is already open");
  int rc = exec_impl(db, "BEGIN", 0, NULL, NULL, 1, err);
  if (rc)
    return rc;
  db->in_tx = 1;
  db->tx_lost = 0;
  return AC_OK;
}

int ac_db_commit(ac_db *db, ac_err *err) {
  if (!db->in_tx)
    return ac_err_set(err, AC_ERR_INTERNAL, "no transaction is open");
  if (db->tx_lost) {
    db->in_tx = db->tx_lost = 0;
    return ac_err_set(err, AC_ERR_DB, "database unavailable: connection lost during transaction");
  }
  PGresult *r = NULL;
  int rc = exec_impl(db, "COMMIT", 0, NULL, &r, 0, err);
  /* COMMIT of a transaction that had a failed statement "succeeds" with
   * the tag ROLLBACK: for the caller nothing was written. */
  if (!rc && strcmp(PQcmdStatus(r), "COMMIT") != 0)
    rc = ac_err_set(err, AC_ERR_DB, "database error: transaction rolled back after an earlier error");
  PQclear(r);
  db->in_tx = db->tx_lost = 0;
  return rc;
}

void ac_db_rollback(ac_db *db) {
  if (!db)
    return;
  if (db->conn && PQstatus(db->conn) == CONNECTION_OK && !db->tx_lost &&
      PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
    PGresult *r = PQexecParams(db->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
    PQclear(r);
  }
  db->in_tx = db->tx_lost = 0;
}

/* ----------------------------------------------------------- LISTEN/NOTIFY */

static int channel_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return 0;
  return 1;
}

int ac_db_listen(ac_db *db, const char *channel, ac_err *err) {
  if (!channel || !channel_ok(channel))
    return ac_err_set(err, AC_ERR_INVALID, "invalid channel name");
  for (int i = 0; i < db->nchannels; i++)
    if (!strcmp(db->channels[i], channel))
      return AC_OK;
  if (db->nchannels == MAX_CHANNELS)
    return ac_err_set(err, AC_ERR_LIMIT, "at most %d channels", MAX_CHANNELS);
  char *copy = strdup(channel);
  if (!copy)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  int rc = ensure_conn(db, err);
  if (!rc)
    rc = listen_raw(db->conn, channel, err);
  if (rc) {
    free(copy);
    return rc;
  }
  db->channels[db->nchannels++] = copy;
  return AC_OK;
}

static int drain_notifies(ac_db *db, ac_db_notify_fn fn, void *ud) {
  int n = 0;
  PGnotify *nt;
  while ((nt = PQnotifies(db->conn))) {
    if (fn)
      fn(ud, nt->relname, nt->extra);
    PQfreemem(nt);
    n++;
  }
  return n;
}

int ac_db_wait_notify(ac_db *db, int timeout_ms, ac_db_notify_fn fn, void *ud, ac_err *err) {
  if (!ac_db_ok(db)) {
    int rc = reconnect(db, err);
    if (rc)
      return rc;
  }
  if (db->notified_gen != db->gen) {
    db->notified_gen = db->gen;
    if (fn)
      fn(ud, NULL, NULL);
  }
  int n = drain_notifies(db, fn, ud);
  if (n > 0)
    return n;
  struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
  int pr = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
  if (pr <= 0)
    return 0; /* timeout, or a signal: the caller loops anyway */
  if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK) {
    int rc = reconnect(db, err);
    if (rc)
      return rc;
    db->notified_gen = db->gen;
    if (fn)
      fn(ud, NULL, NULL);
    return 0;
  }
  return drain_notifies(db, fn, ud);
}

/* ------------------------------------------------------------------ pool */

struct ac_db_pool {
  char *url;
  int size;
  int wait_ms;
  int total; /* idle + checked out + being opened */
  int nidle;
  ac_db **idle;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* signalled when a connection or a slot frees up */
};

ac_db_pool *ac_db_pool_new(const char *url, int size, int wait_ms, ac_err *err) {
  if (!url || !*url) {
    ac_err_set(err, AC_ERR_INVALID, "database url is empty");
    return NULL;
  }
  if (size < 1 || size > MAX_POOL) {
    ac_err_set(err, AC_ERR_INVALID, "pool size must be from 1 to %d", MAX_POOL);
    return NULL;
  }
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(url, &perr);
  if (!opts) {
    char msg[512];
    one_line(perr ? perr : "out of memory", msg, sizeof msg);
    PQfreemem(perr);
    ac_err_set(err, AC_ERR_INVALID, "invalid database url: %s", msg);
    return NULL;
  }
  PQconninfoFree(opts);
  ac_db_pool *p = calloc(1, sizeof *p);
  if (!p || !(p->url = strdup(url)) || !(p->idle = calloc((size_t)size, sizeof *p->idle))) {
    if (p)
      free(p->url);
    free(p);
    ac_err_set(err, AC_ERR_NOMEM, "out of memory");
    return NULL;
  }
  p->size = size;
  p->wait_ms = wait_ms < 0 ? 0 : wait_ms;
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  return p;
}

void ac_db_pool_free(ac_db_pool *pool) {
  if (!pool)
    return;
  for (int i = 0; i < pool->nidle; i++)
    ac_db_free(pool->idle[i]);
  pthread_mutex_destroy(&pool->mu);
  pthread_cond_destroy(&pool->cv);
  free(pool->idle);
  free(pool->url);
  free(pool);
}

const char *ac_db_pool_url(const ac_db_pool *pool) { return pool->url; }

ac_db *ac_db_pool_get(ac_db_pool *pool, int wait_ms, ac_err *err) {
  if (wait_ms < 0)
    wait_ms = pool->wait_ms;
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += wait_ms / 1000;
  deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&pool->mu);
  for (;;) {
    if (pool->nidle > 0) {
      ac_db *db = pool->idle[--pool->nidle];
      pthread_mutex_unlock(&pool->mu);
      /* Callers may use the PGconn directly (ac_db_conn), which does not
       * reconnect: hand out a live connection. */
      if (ac_db_ok(db) || reconnect(db, err) == AC_OK)
        return db;
      ac_db_free(db);
      pthread_mutex_lock(&pool->mu);
      pool->total--;
      pthread_cond_signal(&pool->cv);
      pthread_mutex_unlock(&pool->mu);
      return NULL;
    }
    if (pool->total < pool->size) {
      pool->total++; /* reserve the slot; connect without holding the lock */
      pthread_mutex_unlock(&pool->mu);
      ac_db *db = ac_db_connect(pool->url, err);
      if (!db) {
        pthread_mutex_lock(&pool->mu);
        pool->total--;
        pthread_cond_signal(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
      }
      return db;
    }
    int rc = pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline);
    if (rc == ETIMEDOUT && pool->nidle == 0 && pool->total >= pool->size) {
      pthread_mutex_unlock(&pool->mu);
      ac_err_set(err, AC_ERR_TIMEOUT,
                 "database unavailable: no free connection within %d ms (pool of %d)", wait_ms,
                 pool->size);
      return NULL;
    }
  }
}

void ac_db_pool_put(ac_db_pool *pool, ac_db *db) {
  if (!db)
    return;
  if (in_transaction(db))
    ac_db_rollback(db);
  int healthy = db->conn && PQstatus(db->conn) == CONNECTION_OK &&
                PQtransactionStatus(db->conn) == PQTRANS_IDLE && db->nchannels == 0;
  pthread_mutex_lock(&pool->mu);
  if (healthy && pool->nidle < pool->size) {
    pool->idle[pool->nidle++] = db;
    db = NULL;
  } else {
    pool->total--;
  }
  pthread_cond_signal(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
  ac_db_free(db); /* a broken one is closed outside the lock */
}

int ac_db_pool_exec(ac_db_pool *pool, const char *sql, int nparams, const char *const *params,
                    PGresult **res_out, ac_err *err) {
  if (res_out)
    *res_out = NULL;
  ac_err local;
  ac_err *e = err ? err : &local;
  ac_db *db = ac_db_pool_get(pool, -1, e);
  if (!db)
    return e->code;
  int rc = ac_db_exec(db, sql, nparams, params, res_out, e);
  ac_db_pool_put(pool, db);
  return rc;
}
