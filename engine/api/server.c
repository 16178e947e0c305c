/* server.c — libmicrohttpd glue: limits, body accumulation with a cap,
 * response headers. Handlers never see MHD. */
#include "api/server.h"
#include "api/router.h"
#include "app/app.h"
#include "core/buf.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ac_server {
  struct MHD_Daemon *daemon;
  ac_app *app;
  int port;
};

/* An oversized body up to this size is read and dropped before the 413 is
 * sent; a bigger one is refused at once (the connection then closes). */
#define DRAIN_MAX (16u << 20)

/* Per-request state across MHD's calls. */
typedef struct conn_state {
  ac_buf body;
  int too_large;   /* over AC_API_BODY_MAX: the rest is dropped */
  int answered;    /* the 413 went out before the body ended */
  size_t dropped;
  int64_t started_us;
} conn_state;

static enum MHD_Result send_response(struct MHD_Connection *c, ac_response *res) {
  char *text = NULL;
  size_t len = 0;
  if (res->text) {
    text = res->text;
    len = strlen(text);
  } else if (res->body) {
    text = json_dumps(res->body, JSON_COMPACT);
    len = text ? strlen(text) : 0;
  }
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, text ? text : (char *)"", MHD_RESPMEM_MUST_COPY);
  if (text && text != res->text)
    free(text);
  if (!r)
    return MHD_NO;
  if (len || res->body)
    MHD_add_response_header(r, "Content-Type",
                            res->content_type ? res->content_type : "application/json");
  if (res->etag[0])
    MHD_add_response_header(r, "ETag", res->etag);
  if (res->retry_after[0])
    MHD_add_response_header(r, "Retry-After", res->retry_after);
  if (res->allow[0])
    MHD_add_response_header(r, "Allow", res->allow);
  if (res->www_authenticate)
    MHD_add_response_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)res->status, r);
  MHD_destroy_response(r);
  return ok;
}

static void response_clear(ac_response *res) {
  json_decref(res->body);
  free(res->text);
}

static enum MHD_Result too_large(struct MHD_Connection *c, ac_server *s, const char *method,
                                 const char *url) {
  ac_response res = {0};
  ac_respond_problem(&res, 413, "the request body is larger than 1 MiB", NULL);
  enum MHD_Result ok = send_response(c, &res);
  ac_app_count_request(s->app, method, "oversized", 413);
  (void)url;
  response_clear(&res);
  return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  ac_server *s = cls;
  conn_state *st = *con_cls;
  if (!st) {
    st = calloc(1, sizeof *st);
    if (!st)
      return MHD_NO;
    st->body.limit = AC_API_BODY_MAX;
    st->started_us = ac_clock_mono_us();
    *con_cls = st;
    /* A body that announces itself too large is refused before it is read
     * when the client waits for 100-continue. Any other client is already
     * sending it: closing on it mid-upload resets the connection, and the
     * client may lose the 413, so the body is read and dropped first. */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
    if (announced > AC_API_BODY_MAX) {
      st->too_large = 1;
      const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
      if ((expect && strcasecmp(expect, "100-continue") == 0) || announced > DRAIN_MAX) {
        st->answered = 1;
        return too_large(c, s, method, url);
      }
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (!st->too_large && ac_buf_append(&st->body, upload_data, n) != AC_OK) {
      st->too_large = 1;
      ac_buf_free(&st->body);
    }
    if (st->too_large && (st->dropped += n) > DRAIN_MAX && !st->answered) {
      st->answered = 1; /* an endless chunked body: give up on it */
      return too_large(c, s, method, url);
    }
    return MHD_YES;
  }
  if (st->answered)
    return MHD_YES;
  if (st->too_large)
    return too_large(c, s, method, url);

  ac_request req = {0};
  req.method = method;
  req.path = url;
  req.body = st->body.data ? st->body.data : "";
  req.body_len = st->body.len;
  req.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  req.if_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");
  req.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  req.conn = c;
  ac_response res = {0};
  res.status = 500;
  ac_router_dispatch(s->app, &req, &res);
  enum MHD_Result ok = send_response(c, &res);
  ac_app_count_request(s->app, method, req.route ? req.route : "unmatched", res.status);
  ac_app_observe_request(s->app, (double)(ac_clock_mono_us() - st->started_us) / 1e6);
  response_clear(&res);
  ac_principal_clear(&req.principal);
  return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code) {
  (void)cls;
  (void)c;
  (void)code;
  conn_state *st = *con_cls;
  if (st) {
    ac_buf_free(&st->body);
    free(st);
    *con_cls = NULL;
  }
}

const char *ac_request_header(const ac_request *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, ac_err *err) {
  char host[256];
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
    return ac_err_set(err, AC_ERR_INVALID, "AGENTCORE_LISTEN must be host:port, got \"%s\"", listen);
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (*end || port < 0 || port > 65535 ||
      inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa->sin_addr) != 1)
    return ac_err_set(err, AC_ERR_INVALID,
                      "AGENTCORE_LISTEN must be an IPv4 address and port, got \"%s\"", listen);
  return AC_OK;
}

int ac_server_start(const ac_server_config *cfg, ac_app *app, ac_server **out, ac_err *err) {
  *out = NULL;
  struct sockaddr_in sa;
  int rc = parse_listen(cfg->listen, &sa, err);
  if (rc)
    return rc;
  ac_server *s = calloc(1, sizeof *s);
  if (!s)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  s->app = app;
  s->daemon = MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL,
      on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
      (unsigned)(cfg->threads > 0 ? cfg->threads : 4), MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)(cfg->connection_timeout_s > 0 ? cfg->connection_timeout_s : 30),
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)(cfg->connection_limit > 0 ? cfg->connection_limit : 1000),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE,
      (unsigned)511, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
  if (!s->daemon) {
    free(s);
    return ac_err_set(err, AC_ERR_IO, "cannot listen on %s (AGENTCORE_LISTEN)", cfg->listen);
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : ntohs(sa.sin_port);
  *out = s;
  return AC_OK;
}

int ac_server_port(const ac_server *s) { return s->port; }

void ac_server_stop(ac_server *s) {
  if (!s)
    return;
  MHD_stop_daemon(s->daemon);
  free(s);
}
