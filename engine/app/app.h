/* app.h — the running service: configuration, logger, database, plugin
 * registry, token verifier, metrics and dispatcher, created by `serve` and
 * shared (read-only or internally locked) by every request thread. */
#ifndef AC_APP_APP_H
#define AC_APP_APP_H

#include "auth/jwt.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "db/intake.h"
#include "dispatch/hooks.h"
#include "dispatch/tenancy.h"
#include "plugin/registry.h"

#include <libpq-fe.h>

typedef struct ac_app ac_app;
typedef struct ac_response ac_response;

/* Builds the service from cfg: verifier (bad token settings fail here with
 * a line naming the variable), database connections and migrations,
 * plugin registry. *out: caller frees. */
int ac_app_new(const ac_config *cfg, ac_logger *log, ac_app **out, ac_err *err);
/* Stops every thread and frees the service. Returns 1 when calls stuck in
 * C still run: then nothing they can reach is freed (the logger given to
 * ac_app_new included, which the caller must then keep too); the process
 * is expected to exit. */
int ac_app_free(ac_app *app);

const ac_config *ac_app_config(const ac_app *app);
ac_logger *ac_app_log(ac_app *app);
const ac_jwt_verifier *ac_app_jwt(ac_app *app);
ac_registry *ac_app_registry(ac_app *app);
ac_metrics *ac_app_metrics(ac_app *app);

/* The tenancy snapshot (scope and configs of the host flow), what plugin
 * calls need (registry, HTTP clients, storage, metrics, init tracking),
 * and the PluginResult schema (compiled without pluginId, which the engine
 * sets on each result it keeps). */
ac_tenancy *ac_app_tenancy(ac_app *app);
const ac_hook_env *ac_app_hook_env(ac_app *app);
const ac_schema *ac_app_result_schema(ac_app *app);

/* A database connection for this request, or NULL after answering 503
 * (the database is unreachable). Give it back with ac_app_db_done; pass
 * broken = 1 when a statement failed on the connection itself. */
PGconn *ac_app_db(ac_app *app, ac_response *res);
void ac_app_db_done(ac_app *app, PGconn *db);

/* 1 when the database answers and the built-in plugins are loaded. */
int ac_app_ready(ac_app *app);

/* Metrics of the API layer. */
void ac_app_count_request(ac_app *app, const char *method, const char *route, int status);
void ac_app_observe_request(ac_app *app, double seconds);

/* The catalog response body, rendered once per registry change (caller
 * frees; NULL when out of memory). */
char *ac_app_catalog_text(ac_app *app);

/* Wakes the event dispatcher: this instance stored an event. */
void ac_app_events_stored(ac_app *app);

/* Where accepted events go to be stored (db/intake.h). */
ac_intake *ac_app_intake(ac_app *app);

/* 1 if namespace ns may post one more event now (AGENTCORE_EVENT_RATE per
 * second, AGENTCORE_EVENT_BURST at once), taking it from its bucket. */
int ac_app_event_admitted(ac_app *app, const char *ns);

/* Copies counters kept elsewhere (outbound HTTP) into the metrics. */
void ac_app_refresh_metrics(ac_app *app);

/* A write to ns's plugin configs committed through this instance: re-reads
 * its tenancy entry before returning (with a pool connection: call it
 * after giving the request's back), so the very next call here uses the
 * new config. Other instances learn it by NOTIFY. */
void ac_app_config_changed(ac_app *app, const char *ns);

#endif
