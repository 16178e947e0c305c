/* kv_pg.c — ac_kv on the plugin_kv table (context.db, docs/plugin-authoring.md). */
#include "db/kv_pg.h"

#include "core/clock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PURGE_EVERY_MS 60000
#define PURGE_BATCH "1000"

typedef struct kv_pg {
  ac_kv base;
  ac_db_pool *pool;
  _Atomic int64_t last_purge_ms; /* monotonic; claimed with a CAS */
} kv_pg;

/* Runs one statement on a pooled connection and turns the SQLSTATEs a
 * caller's input can cause into messages about that input. */
static int kv_exec(kv_pg *k, const char *sql, int n, const char *const *params, PGresult **out,
                   ac_err *err) {
  ac_err local;
  ac_err *e = err ? err : &local;
  ac_db *db = ac_db_pool_get(k->pool, -1, e);
  if (!db)
    return e->code;
  int rc = ac_db_exec(db, sql, n, params, out, e);
  if (rc) {
    /* the codes are ac_db_exec's (ac_db_error_code); the messages say
     * which input caused them */
    const char *s = ac_db_sqlstate(db);
    if (!strcmp(s, "23503"))
      ac_err_set(e, rc, "namespace not found");
    else if (!strcmp(s, "22P02"))
      ac_err_set(e, rc, "value is not valid JSON");
    else if (!strcmp(s, "22P05") || !strcmp(s, "22021"))
      ac_err_set(e, rc, "key or value holds a character the store cannot keep");
    else if (!strcmp(s, "23514"))
      ac_err_set(e, rc, "invalid namespace, plugin id or key");
  }
  ac_db_pool_put(k->pool, db);
  return rc;
}

static int check_args(const char *ns, const char *plugin, const char *key, ac_err *err) {
  if (!ns || !plugin || !key)
    return ac_err_set(err, AC_ERR_INVALID, "namespace, plugin and key are required");
  if (strlen(key) > AC_KV_KEY_MAX)
    return ac_err_set(err, AC_ERR_LIMIT, "key is longer than %d bytes", AC_KV_KEY_MAX);
  return AC_OK;
}

static int pg_get(ac_kv *kv, const char *ns, const char *plugin, const char *key, char **json_out,
                  ac_err *err) {
  *json_out = NULL;
  int rc = check_args(ns, plugin, key, err);
  if (rc)
    return rc;
  const char *p[3] = {ns, plugin, key};
  PGresult *r = NULL;
  rc = kv_exec((kv_pg *)kv,
               "SELECT value::text FROM plugin_kv"
               " WHERE namespace_id = $1 AND plugin_id = $2 AND key = $3"
               " AND (expires_at IS NULL OR expires_at > now())",
               3, p, &r, err);
  if (rc)
    return rc;
  if (PQntuples(r) == 1 && !(*json_out = strdup(PQgetvalue(r, 0, 0))))
    rc = ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  PQclear(r);
  return rc;
}

static void maybe_purge(kv_pg *k) {
  int64_t now = ac_clock_mono_ms();
  int64_t last = atomic_load(&k->last_purge_ms);
  if (now - last < PURGE_EVERY_MS || !atomic_compare_exchange_strong(&k->last_purge_ms, &last, now))
    return;
  ac_kv_pg_purge(&k->base, NULL, NULL); /* best effort: the next one retries */
}

static int pg_set(ac_kv *kv, const char *ns, const char *plugin, const char *key, const char *json,
                  int ttl_s, ac_err *err) {
  int rc = check_args(ns, plugin, key, err);
  if (rc)
    return rc;
  if (!json)
    return ac_err_set(err, AC_ERR_INVALID, "value is required");
  if (strlen(json) > AC_KV_VALUE_MAX)
    return ac_err_set(err, AC_ERR_LIMIT, "value is larger than %d bytes", AC_KV_VALUE_MAX);
  char ttl[16];
  snprintf(ttl, sizeof ttl, "%d", ttl_s > 0 ? ttl_s : 0);
  const char *p[5] = {ns, plugin, key, json, ttl};
  kv_pg *k = (kv_pg *)kv;
  /* An upsert: sending it twice (after a reconnect) is harmless. */
  rc = kv_exec(k,
               "INSERT INTO plugin_kv (namespace_id, plugin_id, key, value, expires_at)"
               " VALUES ($1, $2, $3, $4::jsonb,"
               "  CASE WHEN $5::int > 0 THEN now() + make_interval(secs => $5::int) END)"
               " ON CONFLICT (namespace_id, plugin_id, key) DO UPDATE"
               " SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, updated_at = now()",
               5, p, NULL, err);
  if (!rc)
    maybe_purge(k);
  return rc;
}

static int pg_del(ac_kv *kv, const char *ns, const char *plugin, const char *key, ac_err *err) {
  int rc = check_args(ns, plugin, key, err);
  if (rc)
    return rc;
  const char *p[3] = {ns, plugin, key};
  return kv_exec((kv_pg *)kv,
                 "DELETE FROM plugin_kv WHERE namespace_id = $1 AND plugin_id = $2 AND key = $3",
                 3, p, NULL, err);
}

static void pg_free(ac_kv *kv) { free(kv); }

static const ac_kv_ops pg_ops = {pg_get, pg_set, pg_del, pg_free};

ac_kv *ac_kv_pg_new(ac_db_pool *pool) {
  if (!pool)
    return NULL;
  kv_pg *k = calloc(1, sizeof *k);
  if (!k)
    return NULL;
  k->base.ops = &pg_ops;
  k->pool = pool;
  atomic_init(&k->last_purge_ms, ac_clock_mono_ms());
  return &k->base;
}

int ac_kv_pg_purge(ac_kv *kv, int *purged, ac_err *err) {
  if (purged)
    *purged = 0;
  if (!kv || kv->ops != &pg_ops)
    return ac_err_set(err, AC_ERR_INVALID, "not a PostgreSQL kv store");
  const char *p[1] = {PURGE_BATCH};
  PGresult *r = NULL;
  /* SKIP LOCKED: never wait behind a plugin writing the same row. */
  int rc = kv_exec((kv_pg *)kv,
                   "DELETE FROM plugin_kv k USING ("
                   " SELECT namespace_id, plugin_id, key FROM plugin_kv"
                   " WHERE expires_at <= now() LIMIT $1::int FOR UPDATE SKIP LOCKED) d"
                   " WHERE k.namespace_id = d.namespace_id AND k.plugin_id = d.plugin_id"
                   " AND k.key = d.key",
                   1, p, &r, err);
  if (!rc && purged)
    *purged = atoi(PQcmdTuples(r));
  PQclear(r);
  return rc;
}
