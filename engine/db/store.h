/* store.h — the engine's persistent records: departments, namespaces, and
 * the plugin configs of each namespace, with their audit trail. All SQL of
 * these lives in store.c. Items come back as JSON objects shaped as the
 * REST API shows them. */
#ifndef AC_DB_STORE_H
#define AC_DB_STORE_H

#include "auth/jwt.h"
#include "core/err.h"

#include <jansson.h>
#include <libpq-fe.h>

/* Failures: AC_ERR_NOTFOUND (no such row, or out of the principal's
 * scope, or a reference to one such as an unknown parent department: the
 * client is told what does not exist), AC_ERR_CONFLICT (id taken, already
 * enabled, version mismatch), AC_ERR_INVALID (a value the schema's checks
 * refuse), AC_ERR_DB (the database is unavailable: callers answer 503).
 * Database errors are mapped by ac_db_error_code (db.h), like every other
 * statement's. */

/* ---- tenancy ---- */

/* Creates a department ({"id","name","parentId","createdAt"}). id NULL:
 * a UUID is generated. Only global principals create departments (the
 * route checks), so who is not consulted. Notifies AC_NOTIFY_CHANNEL with
 * {"departmentId","op":"create"} in the same transaction. */
int ac_store_department_create(PGconn *db, const ac_principal *who, const char *id, const char *name,
                               const char *parent_id, json_t **item, ac_err *err);

/* Departments the principal may see: all for a global principal, else the
 * subtrees under its departmentIds. */
int ac_store_departments_list(PGconn *db, const ac_principal *who, json_t **list, ac_err *err);

/* Creates a namespace ({"id","name","departmentId","createdAt"}). The
 * department must exist and, unless who is global, be in who's scope.
 * Notifies AC_NOTIFY_CHANNEL with {"namespaceId","op":"create"} in the
 * same transaction. */
int ac_store_namespace_create(PGconn *db, const ac_principal *who, const char *id,
                              const char *name, const char *department_id, json_t **item,
                              ac_err *err);

int ac_store_namespaces_list(PGconn *db, const ac_principal *who, json_t **list, ac_err *err);

/* A namespace in who's scope (who NULL: any), else AC_ERR_NOTFOUND. */
int ac_store_namespace_get(PGconn *db, const ac_principal *who, const char *id, json_t **item,
                           ac_err *err);

/* ---- plugin configs of a namespace ---- */

/* Rows are {"namespaceId","pluginId","enabled","config","version",
 * "createdAt","updatedAt","updatedBy"} with the config as stored (secrets
 * in clear: callers mask before showing). */
int ac_store_ns_plugins_list(PGconn *db, const char *ns, json_t **rows, ac_err *err);
int ac_store_ns_plugin_get(PGconn *db, const char *ns, const char *plugin, json_t **row,
                           ac_err *err);

/* Inserts (AC_ERR_CONFLICT if the plugin already has a row in ns), writes
 * the audit record (masked_after as the after image), bumps the
 * namespace's cache generation and notifies other instances, all in one
 * transaction. */
int ac_store_ns_plugin_insert(PGconn *db, const char *ns, const char *plugin, int enabled,
                              const json_t *config, const char *actor,
                              const json_t *masked_after, json_t **row, ac_err *err);

/* Updates the row if its version is still expected_version (else
 * AC_ERR_CONFLICT), bumping the version; audit, generation and notify as
 * insert. */
int ac_store_ns_plugin_update(PGconn *db, const char *ns, const char *plugin,
                              long long expected_version, int enabled, const json_t *config,
                              const char *actor, const json_t *masked_before,
                              const json_t *masked_after, json_t **row, ac_err *err);

/* Deletes the row (AC_ERR_NOTFOUND if none); audit, generation, notify. */
int ac_store_ns_plugin_delete(PGconn *db, const char *ns, const char *plugin, const char *actor,
                              const json_t *masked_before, ac_err *err);

/* ---- the tenancy snapshot (dispatch/tenancy.c) ---- */

/* Receives one department; parent_id is NULL for a root. Strings are
 * borrowed for the call. */
typedef void (*ac_store_department_fn)(void *ud, const char *id, const char *parent_id);

/* Receives one namespace row {"id","name","departmentId","createdAt",
 * "generation","plugins":[{"pluginId","config","version"}]} (enabled
 * plugins only, by pluginId). The row is the callee's (caller does not
 * decref it). */
typedef void (*ac_store_namespace_fn)(void *ud, json_t *row);

/* Every department, then every namespace, read in one REPEATABLE READ
 * READ ONLY transaction so both lists describe one moment. A row that
 * does not parse fails the whole load (AC_ERR_INTERNAL); callbacks may
 * have run by then. */
int ac_store_tenancy_load(PGconn *db, ac_store_department_fn on_department,
                          ac_store_namespace_fn on_namespace, void *ud, ac_err *err);

/* One namespace's row as for ac_store_tenancy_load (*row: caller
 * decrefs), or AC_ERR_NOTFOUND. */
int ac_store_tenancy_namespace(PGconn *db, const char *ns, json_t **row, ac_err *err);

/* Department id and all its ancestors, each once even if parent links
 * loop, in one statement; AC_ERR_NOTFOUND when id does not exist. */
int ac_store_tenancy_departments(PGconn *db, const char *id, ac_store_department_fn fn, void *ud,
                                 ac_err *err);

/* Config writes (by trigger) and department and namespace creations
 * notify this channel in their transaction. Payloads are JSON objects:
 * {"namespaceId",...} for a namespace or its plugins, {"departmentId",...}
 * for a department. */
#define AC_NOTIFY_CHANNEL "agentcore_config"

#endif
