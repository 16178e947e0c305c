/* store.c — SQL for departments, namespaces and namespace plugin configs.
 * Items are shaped as JSON by PostgreSQL itself (json_build_object), so the
 * C side only parses one column. Every statement is parameterised. */
#include "db/store.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define DEPT_JSON                                                                          \
  "json_build_object('id', d.id, 'name', d.name, 'parentId', d.parent_id, 'createdAt', " \
  TS("d.created_at") ")"
#define NS_JSON                                                                                 \
  "json_build_object('id', n.id, 'name', n.name, 'departmentId', n.department_id, 'createdAt', " \
  TS("n.created_at") ")"
#define ROW_JSON                                                                             \
  "json_build_object('namespaceId', p.namespace_id, 'pluginId', p.plugin_id, 'enabled', "    \
  "p.enabled, 'config', p.config, 'version', p.version, 'createdAt', " TS("p.created_at")   \
  ", 'updatedAt', " TS("p.updated_at") ", 'updatedBy', p.updated_by)"

/* Departments a principal may see: $1 is 'true' for global, else $2 the
 * JSON array of its departmentIds. */
#define SCOPE_CTE                                                                      \
  "WITH RECURSIVE scope(id) AS ("                                                      \
  " SELECT id FROM departments WHERE $1::boolean"                                      \
  "   OR id IN (SELECT jsonb_array_elements_text($2::jsonb))"                          \
  " UNION SELECT c.id FROM departments c JOIN scope s ON c.parent_id = s.id) "

/* Maps a failed result to an engine error code. */
static int db_error(PGconn *db, PGresult *r, ac_err *err) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  if (!msg)
    msg = PQerrorMessage(db);
  int rc = ac_db_error_code(state);
  if (rc == AC_ERR_CONFLICT)
    ac_err_set(err, rc, "already exists");
  else if (rc == AC_ERR_NOTFOUND)
    ac_err_set(err, rc, "a referenced item does not exist");
  else if (rc == AC_ERR_INVALID)
    ac_err_set(err, rc, "invalid value: %s", msg);
  else
    ac_err_set(err, rc, "database: %s", msg ? msg : "unavailable");
  PQclear(r);
  return rc;
}

static PGresult *run(PGconn *db, const char *sql, int n, const char *const *params) {
  return PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
}

static int command(PGconn *db, const char *sql, int n, const char *const *params, ac_err *err) {
  PGresult *r = run(db, sql, n, params);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    return db_error(db, r, err);
  PQclear(r);
  return AC_OK;
}

/* Runs a statement that yields one JSON column; no row is AC_ERR_NOTFOUND
 * with not_found as the message. */
static int query_json(PGconn *db, const char *sql, int n, const char *const *params, json_t **out,
                      const char *not_found, ac_err *err) {
  *out = NULL;
  PGresult *r = run(db, sql, n, params);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    return db_error(db, r, err);
  if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0)) {
    PQclear(r);
    return ac_err_set(err, AC_ERR_NOTFOUND, "%s", not_found);
  }
  *out = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
  PQclear(r);
  return *out ? AC_OK : ac_err_set(err, AC_ERR_INTERNAL, "database returned invalid JSON");
}

static void scope_params(const ac_principal *who, char **global, char **ids) {
  json_t *arr = json_array();
  for (size_t i = 0; who && i < who->department_count; i++)
    json_array_append_new(arr, json_string(who->department_ids[i]));
  *ids = json_dumps(arr, JSON_COMPACT);
  json_decref(arr);
  *global = (!who || who->global) ? "true" : "false";
}

/* Ends a transaction: commits on success, else rolls back. */
static int tx_end(PGconn *db, int rc, ac_err *err) {
  if (rc == AC_OK) {
    rc = command(db, "COMMIT", 0, NULL, err);
    if (rc == AC_OK)
      return AC_OK;
  }
  PGresult *r = PQexec(db, "ROLLBACK");
  PQclear(r);
  return rc;
}

/* ---- tenancy -------------------------------------------------------------- */

int ac_store_department_create(PGconn *db, const ac_principal *who, const char *id,
                               const char *name, const char *parent_id, json_t **item,
                               ac_err *err) {
  (void)who;
  const char *p[] = {id, name, parent_id};
  int rc = query_json(db,
                      "WITH d AS (INSERT INTO departments (id, name, parent_id) "
                      "VALUES (COALESCE($1::text, gen_random_uuid()::text), $2::text, $3::text) RETURNING *) "
                      "SELECT " DEPT_JSON ", pg_notify('" AC_NOTIFY_CHANNEL "', "
                      "json_build_object('departmentId', d.id, 'op', 'create')::text) FROM d",
                      3, p, item, "not created", err);
  if (rc == AC_ERR_NOTFOUND && parent_id)
    ac_err_set(err, AC_ERR_NOTFOUND, "unknown parentId \"%s\"", parent_id);
  if (rc == AC_ERR_CONFLICT)
    ac_err_set(err, AC_ERR_CONFLICT, "department id \"%s\" is taken", id ? id : "");
  return rc;
}

int ac_store_departments_list(PGconn *db, const ac_principal *who, json_t **list, ac_err *err) {
  char *global, *ids;
  scope_params(who, &global, &ids);
  const char *p[] = {global, ids};
  int rc = query_json(db,
                      SCOPE_CTE "SELECT COALESCE(json_agg(" DEPT_JSON " ORDER BY d.created_at, d.id), "
                                "'[]') FROM departments d WHERE d.id IN (SELECT id FROM scope)",
                      2, p, list, "none", err);
  free(ids);
  return rc;
}

int ac_store_namespace_create(PGconn *db, const ac_principal *who, const char *id,
                              const char *name, const char *department_id, json_t **item,
                              ac_err *err) {
  char *global, *ids;
  scope_params(who, &global, &ids);
  const char *p[] = {global, ids, id, name, department_id};
  int rc = query_json(db,
                      SCOPE_CTE ", n AS (INSERT INTO namespaces (id, name, department_id) "
                                "SELECT COALESCE($3::text, gen_random_uuid()::text), $4::text, $5::text "
                                "WHERE $5::text IN (SELECT id FROM scope) RETURNING *) "
                                "SELECT " NS_JSON ", pg_notify('" AC_NOTIFY_CHANNEL "', "
                                "json_build_object('namespaceId', n.id, 'op', 'create')::text) FROM n",
                      5, p, item, "unknown departmentId", err);
  free(ids);
  if (rc == AC_ERR_NOTFOUND)
    ac_err_set(err, AC_ERR_NOTFOUND, "unknown departmentId \"%s\"", department_id);
  if (rc == AC_ERR_CONFLICT)
    ac_err_set(err, AC_ERR_CONFLICT, "namespace id \"%s\" is taken", id ? id : "");
  return rc;
}

int ac_store_namespaces_list(PGconn *db, const ac_principal *who, json_t **list, ac_err *err) {
  char *global, *ids;
  scope_params(who, &global, &ids);
  const char *p[] = {global, ids};
  int rc = query_json(db,
                      SCOPE_CTE "SELECT COALESCE(json_agg(" NS_JSON " ORDER BY n.created_at, n.id), "
                                "'[]') FROM namespaces n WHERE n.department_id IN (SELECT id FROM scope)",
                      2, p, list, "none", err);
  free(ids);
  return rc;
}

int ac_store_namespace_get(PGconn *db, const ac_principal *who, const char *id, json_t **item,
                           ac_err *err) {
  char *global, *ids;
  scope_params(who, &global, &ids);
  const char *p[] = {global, ids, id};
  int rc = query_json(db,
                      SCOPE_CTE "SELECT " NS_JSON " FROM namespaces n WHERE n.id = $3 "
                                "AND n.department_id IN (SELECT id FROM scope)",
                      3, p, item, "unknown namespace", err);
  free(ids);
  return rc;
}

/* ---- namespace plugins ------------------------------------------------------ */

int ac_store_ns_plugins_list(PGconn *db, const char *ns, json_t **rows, ac_err *err) {
  const char *p[] = {ns};
  return query_json(db,
                    "SELECT COALESCE(json_agg(" ROW_JSON " ORDER BY p.plugin_id), '[]') "
                    "FROM namespace_plugins p WHERE p.namespace_id = $1",
                    1, p, rows, "none", err);
}

int ac_store_ns_plugin_get(PGconn *db, const char *ns, const char *plugin, json_t **row,
                           ac_err *err) {
  const char *p[] = {ns, plugin};
  return query_json(db,
                    "SELECT " ROW_JSON " FROM namespace_plugins p "
                    "WHERE p.namespace_id = $1 AND p.plugin_id = $2",
                    2, p, row, "the plugin is not enabled in this namespace", err);
}

/* The audit record of one config write, inside the caller's transaction.
 * The generation bump and the NOTIFY to other instances are done by the
 * namespace_plugins trigger in the same transaction. */
static int record_change(PGconn *db, const char *ns, const char *plugin, const char *actor,
                         const char *action, const json_t *before, const json_t *after,
                         ac_err *err) {
  char *b = before ? json_dumps(before, JSON_COMPACT) : NULL;
  char *a = after ? json_dumps(after, JSON_COMPACT) : NULL;
  const char *p[] = {actor ? actor : "", action, ns, plugin, b, a};
  int rc = command(db,
                   "INSERT INTO audit_log (actor, action, namespace_id, plugin_id, before, after) "
                   "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
                   6, p, err);
  free(b);
  free(a);
  return rc;
}

int ac_store_ns_plugin_insert(PGconn *db, const char *ns, const char *plugin, int enabled,
                              const json_t *config, const char *actor,
                              const json_t *masked_after, json_t **row, ac_err *err) {
  *row = NULL;
  int rc = command(db, "BEGIN", 0, NULL, err);
  if (rc)
    return rc;
  char *cfg = json_dumps(config, JSON_COMPACT);
  const char *p[] = {ns, plugin, enabled ? "true" : "false", cfg, actor ? actor : ""};
  rc = query_json(db,
                  "WITH p AS (INSERT INTO namespace_plugins "
                  "(namespace_id, plugin_id, enabled, config, updated_by) "
                  "VALUES ($1, $2, $3::boolean, $4::jsonb, $5) RETURNING *) "
                  "SELECT " ROW_JSON " FROM p",
                  5, p, row, "not inserted", err);
  free(cfg);
  if (rc == AC_OK)
    rc = record_change(db, ns, plugin, actor, "plugin.enable", NULL, masked_after, err);
  rc = tx_end(db, rc, err);
  if (rc) {
    json_decref(*row);
    *row = NULL;
  }
  return rc;
}

int ac_store_ns_plugin_update(PGconn *db, const char *ns, const char *plugin,
                              long long expected_version, int enabled, const json_t *config,
                              const char *actor, const json_t *masked_before,
                              const json_t *masked_after, json_t **row, ac_err *err) {
  *row = NULL;
  int rc = command(db, "BEGIN", 0, NULL, err);
  if (rc)
    return rc;
  char *cfg = json_dumps(config, JSON_COMPACT);
  char version[32];
  snprintf(version, sizeof version, "%lld", expected_version);
  const char *p[] = {ns, plugin, version, enabled ? "true" : "false", cfg, actor ? actor : ""};
  rc = query_json(db,
                  "WITH p AS (UPDATE namespace_plugins SET enabled = $4::boolean, "
                  "config = $5::jsonb, updated_by = $6 "
                  "WHERE namespace_id = $1 AND plugin_id = $2 AND version = $3::bigint RETURNING *) "
                  "SELECT " ROW_JSON " FROM p",
                  6, p, row, "the version changed", err);
  free(cfg);
  if (rc == AC_ERR_NOTFOUND)
    rc = ac_err_set(err, AC_ERR_CONFLICT, "the config changed meanwhile");
  if (rc == AC_OK)
    rc = record_change(db, ns, plugin, actor, "plugin.update", masked_before, masked_after, err);
  rc = tx_end(db, rc, err);
  if (rc) {
    json_decref(*row);
    *row = NULL;
  }
  return rc;
}

int ac_store_ns_plugin_delete(PGconn *db, const char *ns, const char *plugin, const char *actor,
                              const json_t *masked_before, ac_err *err) {
  int rc = command(db, "BEGIN", 0, NULL, err);
  if (rc)
    return rc;
  const char *p[] = {ns, plugin};
  PGresult *r = run(db, "DELETE FROM namespace_plugins WHERE namespace_id = $1 AND plugin_id = $2",
                    2, p);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    rc = db_error(db, r, err);
  } else {
    if (strcmp(PQcmdTuples(r), "0") == 0)
      rc = ac_err_set(err, AC_ERR_NOTFOUND, "the plugin is not enabled in this namespace");
    PQclear(r);
  }
  if (rc == AC_OK)
    rc = record_change(db, ns, plugin, actor, "plugin.disable", masked_before, NULL, err);
  return tx_end(db, rc, err);
}

/* ---- the tenancy snapshot ------------------------------------------------------ */

/* A namespace as the snapshot keeps it, with its enabled plugins. */
#define TENANCY_NS_JSON                                                                     \
  "json_build_object('id', n.id, 'name', n.name, 'departmentId', n.department_id, "        \
  "'createdAt', " TS("n.created_at") ", 'generation', n.cache_generation, 'plugins', "     \
  "COALESCE((SELECT json_agg(json_build_object('pluginId', p.plugin_id, 'config', "        \
  "p.config, 'version', p.version) ORDER BY p.plugin_id) FROM namespace_plugins p "        \
  "WHERE p.namespace_id = n.id AND p.enabled), '[]'))"

/* Hands each (id, parent_id) row of r to fn. */
static void each_department(PGresult *r, ac_store_department_fn fn, void *ud) {
  for (int i = 0; i < PQntuples(r); i++)
    fn(ud, PQgetvalue(r, i, 0), PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1));
}

int ac_store_tenancy_load(PGconn *db, ac_store_department_fn on_department,
                          ac_store_namespace_fn on_namespace, void *ud, ac_err *err) {
  int rc = command(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err);
  if (rc)
    return rc;
  PGresult *r = run(db, "SELECT id, parent_id FROM departments", 0, NULL);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    rc = db_error(db, r, err);
  } else {
    each_department(r, on_department, ud);
    PQclear(r);
    r = run(db, "SELECT " TENANCY_NS_JSON " FROM namespaces n", 0, NULL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      rc = db_error(db, r, err);
    } else {
      for (int i = 0; i < PQntuples(r) && rc == AC_OK; i++) {
        json_t *row = json_loads(PQgetvalue(r, i, 0), 0, NULL);
        if (row)
          on_namespace(ud, row);
        else
          rc = ac_err_set(err, AC_ERR_INTERNAL, "database returned invalid JSON");
      }
      PQclear(r);
    }
  }
  /* read only: ending it either way changes nothing */
  return tx_end(db, rc, err);
}

int ac_store_tenancy_namespace(PGconn *db, const char *ns, json_t **row, ac_err *err) {
  const char *p[] = {ns};
  return query_json(db, "SELECT " TENANCY_NS_JSON " FROM namespaces n WHERE n.id = $1", 1, p, row,
                    "unknown namespace", err);
}

int ac_store_tenancy_departments(PGconn *db, const char *id, ac_store_department_fn fn, void *ud,
                                 ac_err *err) {
  const char *p[] = {id};
  /* UNION drops a row already seen, so a loop of parent links ends */
  PGresult *r = run(db,
                    "WITH RECURSIVE up(id, parent_id) AS ("
                    " SELECT id, parent_id FROM departments WHERE id = $1"
                    " UNION SELECT d.id, d.parent_id FROM departments d JOIN up ON d.id = up.parent_id) "
                    "SELECT id, parent_id FROM up",
                    1, p);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    return db_error(db, r, err);
  int found = PQntuples(r) > 0;
  each_department(r, fn, ud);
  PQclear(r);
  return found ? AC_OK : ac_err_set(err, AC_ERR_NOTFOUND, "unknown department");
}
