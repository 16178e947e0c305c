/* kv_pg.h — the plugin KV store (context.db) on PostgreSQL's plugin_kv. */
#ifndef AC_DB_KV_PG_H
#define AC_DB_KV_PG_H

#include "core/kv.h"
#include "db/db.h"

/* An ac_kv over pool (borrowed: it must outlive the store). Values are
 * JSON text kept as jsonb, so what get returns is normalised (key order,
 * whitespace). Keys over AC_KV_KEY_MAX bytes and values over
 * AC_KV_VALUE_MAX bytes fail with AC_ERR_LIMIT, text that is not JSON with
 * AC_ERR_INVALID, an unknown namespace with AC_ERR_NOTFOUND, an
 * unreachable database with AC_ERR_DB or AC_ERR_TIMEOUT (pool exhausted).
 * Expired rows are invisible at once and deleted in batches, at most once
 * a minute, by the set that finds the last purge old. Thread-safe. NULL on
 * allocation failure. Free with ac_kv_free. */
ac_kv *ac_kv_pg_new(ac_db_pool *pool);

/* Deletes up to 1000 expired rows now; *purged (optional) tells how many. */
int ac_kv_pg_purge(ac_kv *kv, int *purged, ac_err *err);

#endif
