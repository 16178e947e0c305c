/* http.h — the request and response a route handler sees. Handlers never
 * touch libmicrohttpd: server.c fills the request and sends the response. */
#ifndef AC_API_HTTP_H
#define AC_API_HTTP_H

#include "auth/jwt.h"

#include <jansson.h>
#include <stddef.h>

#define AC_API_BODY_MAX (1u << 20) /* request bodies, bytes */
#define AC_API_MAX_PARAMS 4

typedef struct ac_app ac_app;

typedef struct ac_request {
  const char *method;
  const char *path;       /* without the query string */
  const char *route;      /* the matched route's pattern, for metrics */
  const char *params[AC_API_MAX_PARAMS]; /* ":name" segments in order */
  const char *body;       /* raw bytes (NUL-terminated), may be empty */
  size_t body_len;
  const char *content_type;   /* may be NULL */
  const char *if_match;       /* may be NULL */
  const char *authorization;  /* may be NULL */
  ac_principal principal;     /* filled when the route needs a token */
  void *conn;                 /* server-private */
  struct ac_deferred *deferred; /* set by ac_request_defer */
  void *conn_state;           /* server-private */
  struct ac_server *server;   /* server-private */
} ac_request;

typedef struct ac_response {
  int status;
  json_t *body;           /* owned; NULL: no body */
  const char *content_type; /* default application/json */
  char etag[64];          /* sent as ETag when set */
  char retry_after[16];   /* sent as Retry-After when set */
  char allow[64];         /* sent as Allow when set (405) */
  char *text;             /* owned raw body instead of JSON (metrics) */
  int www_authenticate;   /* add WWW-Authenticate: Bearer error="invalid_token" */
  int close;              /* close the connection after this answer */
} ac_response;

/* Sets a JSON body (stolen) and status. */
void ac_respond_json(ac_response *res, int status, json_t *body);

/* Sets an RFC 9457 problem (application/problem+json) with a title from
 * the status and the given detail. errors (stolen, may be NULL) is added as
 * "errors" (422). */
void ac_respond_problem(ac_response *res, int status, const char *detail, json_t *errors);

/* Parses the request body as a JSON object (duplicate keys refused). On
 * failure answers 415 (not application/json) or 400 and returns NULL. */
json_t *ac_request_json(const ac_request *req, ac_response *res);

/* An answer that comes later. A handler that starts work which finishes
 * on another thread calls ac_request_defer and returns at once; the
 * connection then waits without holding a thread until the work calls
 * ac_deferred_finish. */
typedef struct ac_deferred ac_deferred;

/* Defers req's answer (the response the handler leaves is ignored).
 * Returns NULL when out of memory (the handler answers as usual). */
ac_deferred *ac_request_defer(ac_request *req);

/* Sends res (its body and text are taken) as the deferred answer, from any
 * thread, exactly once per ac_request_defer. After the server has begun to
 * stop, the client already got a 503 and res is dropped. */
void ac_deferred_finish(ac_deferred *d, ac_response *res);

/* A request header by name (case-insensitive), or NULL. */
const char *ac_request_header(const ac_request *req, const char *name);

#endif
