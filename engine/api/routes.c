/* routes.c — the route table (docs/api.md). One line per route. */
#include "api/routes.h"

#define PLUGINS (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES)
#define TENANCY AC_PERM_MANAGE_NAMESPACES

const ac_route ac_routes[] = {
    {"GET", "/healthz", AC_ROUTE_PUBLIC, 0, 0, ac_route_healthz},
    {"GET", "/readyz", AC_ROUTE_PUBLIC, 0, 0, ac_route_readyz},
    {"GET", "/metrics", AC_ROUTE_PUBLIC, 0, 0, ac_route_metrics},

    {"GET", "/api/v1/plugins", AC_ROUTE_TOKEN, PLUGINS, 0, ac_route_catalog},
    {"POST", "/api/v1/plugins/reload", AC_ROUTE_TOKEN, PLUGINS, 1, ac_route_reload},
    {"GET", "/api/v1/namespaces/:id/plugins", AC_ROUTE_TOKEN, PLUGINS, 0, ac_route_ns_plugins_list},
    {"POST", "/api/v1/namespaces/:id/plugins/:pluginId", AC_ROUTE_TOKEN, PLUGINS, 0, ac_route_ns_plugin_enable},
    {"PATCH", "/api/v1/namespaces/:id/plugins/:pluginId", AC_ROUTE_TOKEN, PLUGINS, 0, ac_route_ns_plugin_patch},
    {"DELETE", "/api/v1/namespaces/:id/plugins/:pluginId", AC_ROUTE_TOKEN, PLUGINS, 0, ac_route_ns_plugin_delete},

    {"GET", "/api/v1/departments", AC_ROUTE_TOKEN, TENANCY, 0, ac_route_departments_list},
    {"POST", "/api/v1/departments", AC_ROUTE_TOKEN, TENANCY, 1, ac_route_departments_create},
    {"GET", "/api/v1/namespaces", AC_ROUTE_TOKEN, TENANCY, 0, ac_route_namespaces_list},
    {"POST", "/api/v1/namespaces", AC_ROUTE_TOKEN, TENANCY, 0, ac_route_namespaces_create},
    {"GET", "/api/v1/namespaces/:id", AC_ROUTE_TOKEN, TENANCY, 0, ac_route_namespace_get},

    {"POST", "/api/v1/namespaces/:id/events", AC_ROUTE_TOKEN, AC_PERM_EMIT_EVENTS, 0, ac_route_event_create},
    {"GET", "/api/v1/namespaces/:id/events/:eventId", AC_ROUTE_TOKEN, AC_PERM_EMIT_EVENTS | AC_PERM_MANAGE_PLUGINS, 0, ac_route_event_get},
    {"POST", "/api/v1/namespaces/:id/query", AC_ROUTE_TOKEN, AC_PERM_QUERY_PLUGINS, 0, ac_route_query},
    {0},
};
