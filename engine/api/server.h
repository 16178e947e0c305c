/* server.h — the HTTP server (libmicrohttpd, epoll, a thread pool) that
 * feeds requests to the router. */
#ifndef AC_API_SERVER_H
#define AC_API_SERVER_H

#include "api/http.h"
#include "core/err.h"

typedef struct ac_server ac_server;

typedef struct ac_server_config {
  const char *listen;   /* "host:port"; port 0 picks a free one */
  int threads;          /* request threads */
  int connection_timeout_s; /* idle: without a byte received */
  int connection_limit;     /* all clients (0: from the file limit) */
  int per_client_limit;     /* connections from one IP address */
} ac_server_config;

/* Starts serving; requests go to ac_router_dispatch(app, ...). *out: caller
 * stops and frees with ac_server_stop. */
int ac_server_start(const ac_server_config *cfg, ac_app *app, ac_server **out, ac_err *err);

/* The port actually bound. */
int ac_server_port(const ac_server *s);

/* Stops accepting, waits for requests in flight, frees. NULL is a no-op. */
void ac_server_stop(ac_server *s);

#endif
