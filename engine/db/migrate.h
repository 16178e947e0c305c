/* migrate.h — applies the migrations/ SQL files to a database, once each. */
#ifndef AC_DB_MIGRATE_H
#define AC_DB_MIGRATE_H

#include "core/err.h"
#include "core/log.h"

#include <libpq-fe.h>

/* Applies, in file-name order, every `*.sql` file of dir not yet recorded
 * in schema_migrations (created if missing), each in its own transaction
 * together with its record, under a PostgreSQL advisory lock so instances
 * starting together apply each file once (a second one waits up to 300 s).
 * *applied (optional) counts the files applied now. A failing file is
 * rolled back and named in err (AC_ERR_DB; AC_ERR_IO for an unreadable
 * dir/file). log (may be NULL) gets a line per applied file, and a warning
 * for a recorded file whose content changed since. With an ac_db, pass
 * ac_db_conn(db). */
int ac_db_migrate(PGconn *db, const char *dir, ac_logger *log, int *applied, ac_err *err);

/* Called with each file name right after it was applied. */
typedef void (*ac_db_migrate_fn)(void *ud, const char *name);

/* ac_db_migrate, also calling on_applied (may be NULL) per applied file,
 * e.g. for a command that prints what it applied. */
int ac_db_migrate_ex(PGconn *db, const char *dir, ac_logger *log, int *applied,
                     ac_db_migrate_fn on_applied, void *ud, ac_err *err);

#endif
