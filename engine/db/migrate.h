/* migrate.h — applying the SQL files of migrations/ once, in name order. */
#ifndef AC_DB_MIGRATE_H
#define AC_DB_MIGRATE_H

#include "core/err.h"
#include "core/log.h"

#include <libpq-fe.h>

/* Applies every migration file of dir not yet recorded in
 * schema_migrations, each in its own transaction, under an advisory lock so
 * instances starting together apply each file once. *applied (optional)
 * counts the files applied now. */
int ac_db_migrate(PGconn *db, const char *dir, ac_logger *log, int *applied, ac_err *err);

#endif
