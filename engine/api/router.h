/* router.h — the route table: method + pattern -> handler, with the token
 * and permission each route needs. Adding a route is one line in routes.c. */
#ifndef AC_API_ROUTER_H
#define AC_API_ROUTER_H

#include "api/http.h"

typedef void (*ac_route_fn)(ac_app *app, ac_request *req, ac_response *res);

enum {
  AC_ROUTE_PUBLIC = 0,      /* no token */
  AC_ROUTE_TOKEN = 1,       /* a valid token */
};

typedef struct ac_route {
  const char *method;
  const char *pattern;   /* "/api/v1/namespaces/:id/plugins/:pluginId" */
  int auth;              /* AC_ROUTE_PUBLIC or AC_ROUTE_TOKEN */
  unsigned any_perm;     /* the token needs one of these AC_PERM_* bits (0: none) */
  int needs_global;      /* the token must be global */
  ac_route_fn fn;
} ac_route;

/* The engine's routes (routes.c), terminated by a zero entry. */
extern const ac_route ac_routes[];

/* Finds the route for method and path, filling req->params and req->route.
 * Returns NULL and sets *status to 404 (no such path) or 405 (path known,
 * method not). */
const ac_route *ac_router_match(const ac_route *routes, ac_request *req, char *scratch,
                                size_t scratch_size, int *status);

/* Matches, authenticates, authorises and runs the handler. */
void ac_router_dispatch(ac_app *app, ac_request *req, ac_response *res);

#endif
