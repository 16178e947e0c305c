/* tenancy.h — departments, namespaces and each namespace's enabled plugins,
 * held in memory so the host flow (query, events, dispatch) answers scope
 * and config questions without a database round trip.
 *
 * The snapshot is read in full at startup and after every reconnect of the
 * LISTEN connection (the old one serves meanwhile); between those, single
 * entries are re-read: synchronously after a write through this instance,
 * on the listener thread after a NOTIFY from another one. Each namespace's
 * entry is an immutable JSON object shared by reference; lookups take a
 * read lock for a few hash lookups. A namespace or department missing from
 * the snapshot costs at most one database read, which installs it (or
 * remembers for a moment that it does not exist). */
#ifndef AC_DISPATCH_TENANCY_H
#define AC_DISPATCH_TENANCY_H

#include "auth/jwt.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

typedef struct ac_tenancy ac_tenancy;

/* An empty snapshot. pool (borrowed, must outlive t) serves the reads of
 * entries missing from it; log (may be NULL) gets reload lines. Nothing is
 * read here: call ac_tenancy_reload. NULL when out of memory. */
ac_tenancy *ac_tenancy_new(ac_db_pool *pool, ac_logger *log);

/* Frees t. NULL is a no-op. Snapshots handed out stay valid (refcounted). */
void ac_tenancy_free(ac_tenancy *t);

/* The namespace's snapshot {"departmentId","generation","plugins":
 * [{"pluginId","config","version"}]} (enabled plugins, by pluginId) as a
 * new reference to an immutable object (caller decrefs, never modifies).
 * who NULL or global: any existing namespace; else its department must be
 * one of who->department_ids or below one. AC_ERR_NOTFOUND alike for an
 * unknown namespace and one out of scope; AC_ERR_DB only when an entry
 * missing from the snapshot could not be read. */
int ac_tenancy_namespace(ac_tenancy *t, const ac_principal *who, const char *ns,
                         json_t **snapshot, ac_err *err);

/* The same lookup, answering the namespace as the API shows it:
 * {"id","name","departmentId","createdAt"} (new reference, immutable). */
int ac_tenancy_namespace_item(ac_tenancy *t, const ac_principal *who, const char *ns,
                              json_t **item, ac_err *err);

/* Reads every department and namespace with db (one consistent read) and
 * swaps the result in; entries re-read while it ran keep their newer
 * state. On failure the old snapshot stays, one error line is logged and
 * the error returned. */
int ac_tenancy_reload(ac_tenancy *t, PGconn *db, ac_err *err);

/* Re-reads one namespace (after a config write or a notification) with db,
 * or with a pool connection when db is NULL, and installs it; a namespace
 * gone from the database leaves the snapshot (AC_ERR_NOTFOUND). If the
 * read fails the entry is dropped, so the next lookup reads it again
 * rather than use what may be an old config. An entry never goes back to
 * an older generation. */
int ac_tenancy_refresh_namespace(ac_tenancy *t, PGconn *db, const char *ns, ac_err *err);

/* Re-reads one department and its ancestors, as for namespaces. */
int ac_tenancy_refresh_department(ac_tenancy *t, PGconn *db, const char *id, ac_err *err);

/* Waits up to timeout_ms for the first successful reload; 1 once loaded. */
int ac_tenancy_wait_loaded(ac_tenancy *t, int timeout_ms);

typedef struct ac_tenancy_stats {
  size_t departments, namespaces; /* in the snapshot now */
  unsigned long long reloads;     /* full reloads that succeeded */
  unsigned long long reload_failures;
  unsigned long long refreshes;   /* entries re-read after a change (write, notification) */
  unsigned long long misses;      /* reads of entries a lookup did not find */
  int loaded;                     /* a full reload succeeded once */
} ac_tenancy_stats;

/* Fills out with the snapshot's size and counters so far (for metrics and
 * tests); sizes are read under the lock, counters without it. */
void ac_tenancy_get_stats(ac_tenancy *t, ac_tenancy_stats *out);

#endif
