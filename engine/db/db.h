/* db.h — PostgreSQL connections for the engine: one reconnecting
 * connection (ac_db), a bounded pool of them (ac_db_pool), transactions,
 * LISTEN/NOTIFY. All SQL of the engine lives under engine/db/. */
#ifndef AC_DB_DB_H
#define AC_DB_DB_H

#include "core/err.h"

#include <libpq-fe.h>

typedef struct ac_db ac_db;
typedef struct ac_db_pool ac_db_pool;

/* ------------------------------------------------------------ connection */

/* Opens a connection to url (a libpq URI or key=value string; a default
 * connect_timeout of 10 s applies unless the url sets one). Returns NULL
 * and fills err (AC_ERR_DB, "database unavailable: ...") on failure, or
 * AC_ERR_INVALID for a malformed url. Caller frees with ac_db_free. */
ac_db *ac_db_connect(const char *url, ac_err *err);

/* Closes the connection. NULL is a no-op. */
void ac_db_free(ac_db *db);

/* Runs one parameterised statement; params[i] is text or NULL (SQL NULL).
 * On success *res_out (if res_out) receives the result, caller PQclears.
 * A broken connection is re-opened once: outside a transaction the
 * statement is then sent again (so a statement whose answer was lost may
 * run twice: keep such statements idempotent, or use ac_db_exec_once);
 * inside one, the transaction is lost and this fails. Errors: AC_ERR_DB
 * "database unavailable: ..." when the server cannot be reached, else the
 * SQLSTATE mapped by ac_db_error_code; ac_db_sqlstate tells the exact
 * state. */
/* The engine's one mapping of a SQLSTATE to an error code: 23505 (unique)
 * AC_ERR_CONFLICT; 23503 (a referenced row does not exist, such as an
 * unknown parent or namespace) AC_ERR_NOTFOUND; 22xxx, 23502 and 23514
 * AC_ERR_INVALID; 40001, 40P01 and 55P03 AC_ERR_BUSY; 57014
 * AC_ERR_TIMEOUT; anything else, or NULL, AC_ERR_DB. */
int ac_db_error_code(const char *sqlstate);

int ac_db_exec(ac_db *db, const char *sql, int nparams, const char *const *params,
               PGresult **res_out, ac_err *err);

/* Like ac_db_exec but never sends the statement twice: for writes that
 * must not repeat. A connection found broken before sending is still
 * re-opened first. */
int ac_db_exec_once(ac_db *db, const char *sql, int nparams, const char *const *params,
                    PGresult **res_out, ac_err *err);

/* Runs a trusted multi-statement script without parameters (migration
 * files only: never text built from input). Not retried. */
int ac_db_exec_script(ac_db *db, const char *sql, ac_err *err);

/* SQLSTATE of the last failed statement ("" if it succeeded or failed
 * without reaching the server). Valid until the next call on db. */
const char *ac_db_sqlstate(const ac_db *db);

/* Counts the connections opened so far (1 after ac_db_connect, +1 per
 * reconnect): a session-level state (advisory lock, LISTEN, SET) survives
 * only while it stays the same. */
unsigned long ac_db_generation(const ac_db *db);

/* The underlying libpq connection (borrowed), for code written against
 * PGconn such as store.c and ac_db_migrate. It may change after any ac_db
 * call that reconnects; fetch it again rather than keeping it. */
PGconn *ac_db_conn(ac_db *db);

/* A connection of its own for a thread that manages it itself, with the
 * settings every engine connection has: a 10 s connect timeout, UTF-8, and
 * notices kept out of the JSON log. */
int ac_db_open_conn(const char *url, PGconn **out, ac_err *err);

/* True (1) if the connection looks usable right now, without a round trip
 * (it reads what the server already sent, e.g. a termination notice). */
int ac_db_ok(ac_db *db);

/* ---------------------------------------------------------- transactions */

/* BEGIN. Fails if a transaction is already open (AC_ERR_INTERNAL). */
int ac_db_begin(ac_db *db, ac_err *err);

/* COMMIT. Fails with AC_ERR_DB if the transaction was lost (connection
 * broke) or rolled back by the server after a failed statement; either
 * way no transaction is open afterwards. */
int ac_db_commit(ac_db *db, ac_err *err);

/* ROLLBACK if a transaction is open; never fails (a broken connection has
 * lost the transaction already). */
void ac_db_rollback(ac_db *db);

/* ----------------------------------------------------------- LISTEN/NOTIFY */

/* Called once per notification; channel == NULL means the connection was
 * re-opened and notifications may have been missed (drop all caches). */
typedef void (*ac_db_notify_fn)(void *ud, const char *channel, const char *payload);

/* LISTENs on channel (^[a-z_][a-z0-9_]{0,62}$, else AC_ERR_INVALID) and
 * remembers it, so it is listened to again after a reconnect. */
int ac_db_listen(ac_db *db, const char *channel, ac_err *err);

/* Waits up to timeout_ms for notifications and delivers each to fn.
 * Returns how many were delivered (>= 0), or AC_ERR_DB when the connection
 * broke and could not be re-opened (call again later to retry). A
 * successful reconnect re-LISTENs and calls fn(ud, NULL, NULL). */
int ac_db_wait_notify(ac_db *db, int timeout_ms, ac_db_notify_fn fn, void *ud, ac_err *err);

/* ------------------------------------------------------------------ pool */

/* A pool of at most size connections to url, opened on demand; checkouts
 * wait up to wait_ms for a free one. The url is checked for syntax only:
 * an unreachable server fails the first checkout, not this. Caller frees. */
ac_db_pool *ac_db_pool_new(const char *url, int size, int wait_ms, ac_err *err);

/* Closes every idle connection. All checked-out connections must have
 * been returned. NULL is a no-op. */
void ac_db_pool_free(ac_db_pool *pool);

/* Checks a connection out for the calling thread's exclusive use; return
 * it with ac_db_pool_put. wait_ms < 0 means the pool's default. NULL with
 * AC_ERR_TIMEOUT when none was free in time, AC_ERR_DB when a new one
 * could not be opened. */
ac_db *ac_db_pool_get(ac_db_pool *pool, int wait_ms, ac_err *err);

/* Returns a connection: an open transaction is rolled back, a broken
 * connection is closed (the pool opens a fresh one when needed). */
void ac_db_pool_put(ac_db_pool *pool, ac_db *db);

/* Checkout + ac_db_exec + checkin, for single statements. */
int ac_db_pool_exec(ac_db_pool *pool, const char *sql, int nparams, const char *const *params,
                    PGresult **res_out, ac_err *err);

/* The url the pool connects to (borrowed, lives as long as the pool). */
const char *ac_db_pool_url(const ac_db_pool *pool);

#endif
