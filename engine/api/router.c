/* router.c — matching paths to routes; authentication and permissions
 * happen here once, so handlers only see authorised requests. */
#include "api/router.h"
#include "api/routes.h"
#include "app/app.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A route's ":name" segments as found in the request path. */
typedef struct path_params {
  size_t at[AC_API_MAX_PARAMS], len[AC_API_MAX_PARAMS];
  int n;
} path_params;

/* Matches path against pattern in one pass over both, without copying:
 * a ":name" segment takes one non-empty segment of the path; the rest
 * compares byte for byte, so an empty segment or a trailing slash matches
 * no route. */
static int match(const char *pattern, const char *path, path_params *found) {
  const char *p = pattern, *s = path;
  found->n = 0;
  while (*p) {
    if (*p == ':') {
      size_t n = strcspn(s, "/");
      if (n == 0 || found->n == AC_API_MAX_PARAMS)
        return 0;
      found->at[found->n] = (size_t)(s - path);
      found->len[found->n++] = n;
      s += n;
      p += strcspn(p, "/");
    } else if (*p++ != *s++) {
      return 0;
    }
  }
  return *s == '\0';
}

/* Copies the parameters, each NUL-terminated, into scratch for req. */
static int take_params(ac_request *req, const path_params *found, char *scratch, size_t size) {
  memset(req->params, 0, sizeof req->params);
  for (int i = 0; i < found->n; i++) {
    if (found->len[i] + 1 > size)
      return 0;
    memcpy(scratch, req->path + found->at[i], found->len[i]);
    scratch[found->len[i]] = '\0';
    req->params[i] = scratch;
    scratch += found->len[i] + 1;
    size -= found->len[i] + 1;
  }
  return 1;
}

const ac_route *ac_router_match(const ac_route *routes, ac_request *req, char *scratch,
                                size_t scratch_size, int *status) {
  int path_known = 0;
  path_params found;
  for (const ac_route *r = routes; r->fn; r++) {
    if (!match(r->pattern, req->path, &found))
      continue;
    /* HEAD is GET without the body, which libmicrohttpd leaves out */
    if (strcmp(r->method, req->method) == 0 ||
        (strcmp(req->method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
      if (!take_params(req, &found, scratch, scratch_size))
        break;
      req->route = r->pattern;
      return r;
    }
    if (!path_known)
      req->route = r->pattern; /* a bounded metrics label for the 405 */
    path_known = 1;
  }
  *status = path_known ? 405 : 404;
  return NULL;
}

static int valid_plugin_id(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 64 || !(s[0] >= 'a' && s[0] <= 'z'))
    return 0;
  for (size_t i = 1; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
          s[i] == '-'))
      return 0;
  return 1;
}

/* Path parameters are checked here once, by name: a malformed id can name
 * nothing, so 400 reveals nothing about what is in the caller's scope. */
static const struct {
  const char *name;
  int (*valid)(const char *);
  const char *detail;
} param_rules[] = {
    {"id", ac_valid_tenancy_id, "the namespace id must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"},
    {"pluginId", valid_plugin_id, "the plugin id must match ^[a-z][a-z0-9_-]{0,63}$"},
};

/* 1 if every named parameter of the route is well formed, else answers 400. */
static int params_valid(const ac_route *route, const ac_request *req, ac_response *res) {
  int k = 0;
  for (const char *p = strchr(route->pattern, ':'); p && k < AC_API_MAX_PARAMS;
       p = strchr(p + 1, ':'), k++) {
    size_t n = strcspn(p + 1, "/");
    for (size_t i = 0; i < sizeof param_rules / sizeof param_rules[0]; i++)
      if (strlen(param_rules[i].name) == n && strncmp(p + 1, param_rules[i].name, n) == 0 &&
          !param_rules[i].valid(req->params[k])) {
        ac_respond_problem(res, 400, param_rules[i].detail, NULL);
        return 0;
      }
  }
  return 1;
}

/* "GET, POST": the methods of every route matching req->path. */
static void allowed_methods(const ac_request *req, char *out, size_t size) {
  size_t len = 0;
  out[0] = '\0';
  path_params found;
  for (const ac_route *r = ac_routes; r->fn; r++) {
    if (!match(r->pattern, req->path, &found) || strstr(out, r->method))
      continue;
    int n = snprintf(out + len, size - len, "%s%s", len ? ", " : "", r->method);
    if (n < 0 || (size_t)n >= size - len) {
      out[len] = '\0'; /* no half method */
      break;
    }
    len += (size_t)n;
  }
}

void ac_router_dispatch(ac_app *app, ac_request *req, ac_response *res) {
  char scratch[2048];
  int status = 404;
  const ac_route *route = ac_router_match(ac_routes, req, scratch, sizeof scratch, &status);
  if (!route) {
    if (status != 405 || !req->route)
      req->route = "unmatched";
    if (status == 405) /* RFC 9110: a 405 lists the methods the resource has */
      allowed_methods(req, res->allow, sizeof res->allow);
    ac_respond_problem(res, status, status == 405 ? "method not allowed on this resource"
                                                  : "no such resource", NULL);
    return;
  }
  if (route->auth == AC_ROUTE_TOKEN) {
    const char *auth = req->authorization;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
      ac_respond_problem(res, 401, "a bearer token is required", NULL);
      return;
    }
    ac_err err = {0};
    int rc = ac_jwt_authenticate(ac_app_jwt(app), auth + 7, &req->principal, &err);
    if (rc == AC_ERR_DENIED) {
      ac_respond_problem(res, 401, err.msg, NULL);
      return;
    }
    if (rc != AC_OK) {
      ac_respond_problem(res, 500, "could not check the token", NULL);
      return;
    }
    if (route->any_perm && !(req->principal.permissions & route->any_perm)) {
      ac_respond_problem(res, 403, "the token lacks the permission this route needs", NULL);
      return;
    }
    if (route->needs_global && !req->principal.global) {
      ac_respond_problem(res, 403, "this route needs a global token", NULL);
      return;
    }
  }
  if (!params_valid(route, req, res))
    return;
  route->fn(app, req, res);
}
