/* routes.h — the handlers behind the route table, one file per group. */
#ifndef AC_API_ROUTES_H
#define AC_API_ROUTES_H

#include "api/router.h"

/* routes_ops.c */
void ac_route_healthz(ac_app *app, ac_request *req, ac_response *res);
void ac_route_readyz(ac_app *app, ac_request *req, ac_response *res);
void ac_route_metrics(ac_app *app, ac_request *req, ac_response *res);

/* routes_plugins.c */
void ac_route_catalog(ac_app *app, ac_request *req, ac_response *res);
void ac_route_reload(ac_app *app, ac_request *req, ac_response *res);
void ac_route_ns_plugins_list(ac_app *app, ac_request *req, ac_response *res);
void ac_route_ns_plugin_enable(ac_app *app, ac_request *req, ac_response *res);
void ac_route_ns_plugin_patch(ac_app *app, ac_request *req, ac_response *res);
void ac_route_ns_plugin_delete(ac_app *app, ac_request *req, ac_response *res);

/* routes_tenancy.c */
void ac_route_departments_list(ac_app *app, ac_request *req, ac_response *res);
void ac_route_departments_create(ac_app *app, ac_request *req, ac_response *res);
void ac_route_namespaces_list(ac_app *app, ac_request *req, ac_response *res);
void ac_route_namespaces_create(ac_app *app, ac_request *req, ac_response *res);
void ac_route_namespace_get(ac_app *app, ac_request *req, ac_response *res);

/* routes_host.c */
void ac_route_query(ac_app *app, ac_request *req, ac_response *res);
void ac_route_event_create(ac_app *app, ac_request *req, ac_response *res);
void ac_route_event_get(ac_app *app, ac_request *req, ac_response *res);

/* Answers a store failure: 404, 409, 400, 503 or 500. */
void ac_respond_store_error(ac_response *res, int rc, const ac_err *err);

/* 1 if s is a valid tenancy id: ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$ */
int ac_valid_tenancy_id(const char *s);

#endif
