/* server.c — libmicrohttpd glue: limits, body accumulation with a cap,
 * response headers. Handlers never see MHD. */
#include "api/server.h"
#include "api/router.h"
#include "app/app.h"
#include "core/buf.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "core/json_write.h"
#include "core/utf8.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

struct ac_server {
  struct MHD_Daemon *daemon;
  ac_app *app;
  int port;
  /* answers still being worked on, so stopping can release them */
  pthread_mutex_t pending_lock;
  struct ac_deferred *pending;
  int stopping;
};

/* A deferred answer: shared by the connection and the work producing it. */
struct ac_deferred {
  ac_server *server;
  struct MHD_Connection *conn;
  pthread_mutex_t lock;
  int refs;      /* the connection's and the work's */
  int ready;     /* res holds the answer */
  int suspended; /* the connection waits for resume */
  ac_response res;
  struct ac_deferred *prev, *next; /* the server's pending list */
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
  ac_deferred *deferred;     /* the answer comes later */
  const char *route;         /* for metrics once it is sent */
} conn_state;

/* Response bodies are copied into blocks that are reused: a fresh
 * allocation of a body's size for every response costs the allocator more
 * than the copy (larger sizes than its per-thread caches hold). */
#define BODY_BLOCK (16 * 1024)
#define BODY_POOL_MAX 256

typedef struct body_block {
  struct body_block *next_free;
  size_t capacity;
  char data[];
} body_block;

static pthread_mutex_t body_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static body_block *body_pool;
static int body_pool_size;

/* A copy of len bytes of text in a block; NULL when out of memory. */
static char *body_copy(const char *text, size_t len) {
  body_block *b = NULL;
  if (len <= BODY_BLOCK) {
    pthread_mutex_lock(&body_pool_lock);
    if ((b = body_pool)) {
      body_pool = b->next_free;
      body_pool_size--;
    }
    pthread_mutex_unlock(&body_pool_lock);
  }
  size_t capacity = len <= BODY_BLOCK ? BODY_BLOCK : len;
  if (!b && !(b = malloc(sizeof *b + capacity)))
    return NULL;
  b->capacity = capacity;
  memcpy(b->data, text, len);
  return b->data;
}

/* MHD's free callback of a response body made by body_copy. */
static void body_release(void *data) {
  body_block *b = (body_block *)((char *)data - offsetof(body_block, data));
  int keep = 0;
  if (b->capacity == BODY_BLOCK) {
    pthread_mutex_lock(&body_pool_lock);
    if ((keep = body_pool_size < BODY_POOL_MAX)) {
      b->next_free = body_pool;
      body_pool = b;
      body_pool_size++;
    }
    pthread_mutex_unlock(&body_pool_lock);
  }
  if (!keep)
    free(b);
}

static enum MHD_Result send_response(struct MHD_Connection *c, ac_response *res) {
  /* most bodies fit this thread's scratch buffer: written there in one
   * pass and copied once, instead of grown by reallocation */
  static _Thread_local char scratch[64 * 1024];
  char *text = NULL;
  size_t len = 0;
  if (res->text) {
    text = res->text;
    len = strlen(text);
  } else if (res->body) {
    len = ac_json_write(res->body, scratch, sizeof scratch);
    if (len && len <= sizeof scratch) {
      text = scratch;
    } else if (len && (text = malloc(len))) {
      ac_json_write(res->body, text, len);
    } else {
      len = 0;
    }
  }
  char *copy = len ? body_copy(text, len) : NULL;
  if (text && text != res->text && text != scratch)
    free(text);
  if (len && !copy)
    return MHD_NO;
  struct MHD_Response *r =
      copy ? MHD_create_response_from_buffer_with_free_callback(len, copy, body_release)
           : MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
  if (!r) {
    if (copy)
      body_release(copy);
    return MHD_NO;
  }
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
  if (res->close)
    MHD_add_response_header(r, "Connection", "close");
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)res->status, r);
  MHD_destroy_response(r);
  return ok;
}

static void response_clear(ac_response *res) {
  json_decref(res->body);
  free(res->text);
}

/* ---- deferred answers ---------------------------------------------------- */

static void deferred_unref(ac_deferred *d) {
  pthread_mutex_lock(&d->lock);
  int last = --d->refs == 0;
  pthread_mutex_unlock(&d->lock);
  if (!last)
    return;
  response_clear(&d->res);
  pthread_mutex_destroy(&d->lock);
  free(d);
}

static void pending_unlink(ac_server *s, ac_deferred *d) {
  if (d->prev)
    d->prev->next = d->next;
  else if (s->pending == d)
    s->pending = d->next;
  if (d->next)
    d->next->prev = d->prev;
  d->prev = d->next = NULL;
}

ac_deferred *ac_request_defer(ac_request *req) {
  conn_state *st = req->conn_state;
  ac_deferred *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  d->server = req->server;
  d->conn = req->conn;
  d->refs = 2;
  pthread_mutex_init(&d->lock, NULL);
  st->deferred = d;
  req->deferred = d;
  return d;
}

/* Stores the answer; resumes the connection if it already waits. Lock
 * order: pending_lock, then d->lock. */
static void deferred_set(ac_deferred *d, ac_response *res) {
  ac_server *s = d->server;
  pthread_mutex_lock(&s->pending_lock);
  pthread_mutex_lock(&d->lock);
  if (!d->ready) {
    d->ready = 1;
    d->res = *res;
    memset(res, 0, sizeof *res);
    if (d->suspended) {
      pending_unlink(s, d);
      d->suspended = 0;
      MHD_resume_connection(d->conn);
    }
  }
  pthread_mutex_unlock(&d->lock);
  pthread_mutex_unlock(&s->pending_lock);
  response_clear(res); /* an answer after the 503 of a stop */
}

void ac_deferred_finish(ac_deferred *d, ac_response *res) {
  deferred_set(d, res);
  deferred_unref(d);
}

/* After the handler returned: answer now if the work is already done,
 * else park the connection. Returns 1 when parked. */
static int deferred_park(ac_server *s, ac_deferred *d) {
  pthread_mutex_lock(&s->pending_lock);
  pthread_mutex_lock(&d->lock);
  if (s->stopping && !d->ready) {
    d->ready = 1;
    ac_respond_problem(&d->res, 503, "the server is stopping; try again", NULL);
    snprintf(d->res.retry_after, sizeof d->res.retry_after, "1");
  }
  int park = !d->ready;
  if (park) {
    MHD_suspend_connection(d->conn);
    d->suspended = 1;
    d->next = s->pending;
    if (s->pending)
      s->pending->prev = d;
    s->pending = d;
  }
  pthread_mutex_unlock(&d->lock);
  pthread_mutex_unlock(&s->pending_lock);
  return park;
}

static enum MHD_Result send_deferred(struct MHD_Connection *c, ac_server *s, conn_state *st,
                                     const char *method) {
  ac_deferred *d = st->deferred;
  pthread_mutex_lock(&d->lock);
  ac_response res = d->res;
  memset(&d->res, 0, sizeof d->res);
  pthread_mutex_unlock(&d->lock);
  enum MHD_Result ok = send_response(c, &res);
  ac_app_count_request(s->app, method, st->route ? st->route : "unmatched", res.status);
  ac_app_observe_request(s->app, (double)(ac_clock_mono_us() - st->started_us) / 1e6);
  response_clear(&res);
  st->deferred = NULL;
  deferred_unref(d);
  return ok;
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

/* ---- framing: what is refused before anything is routed or read ---------- */

typedef struct head_check {
  int content_length, transfer_encoding, authorization, host;
  int bad_length;     /* a Content-Length that is not a plain number */
  int bad_coding;     /* a transfer coding other than chunked */
  int control_bytes;  /* NUL or another control byte in a name or value */
} head_check;

static enum MHD_Result check_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size) {
  (void)kind;
  head_check *h = cls;
  if (ac_has_control(key, key_size) || (value && ac_has_control(value, value_size)) ||
      memchr(key, ' ', key_size))
    h->control_bytes = 1; /* a space in a name: "Name : value" */
  if (strcasecmp(key, "Content-Length") == 0) {
    h->content_length++;
    int digits = value_size > 0 && value_size <= 19;
    for (size_t i = 0; digits && i < value_size; i++)
      digits = value[i] >= '0' && value[i] <= '9';
    h->bad_length |= !digits;
  } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
    h->transfer_encoding++;
    h->bad_coding |= !value || strcasecmp(value, "chunked") != 0;
  } else if (strcasecmp(key, "Authorization") == 0) {
    h->authorization++;
  } else if (strcasecmp(key, "Host") == 0) {
    h->host++;
  }
  return MHD_YES;
}

/* The reason to refuse the request head (status in *status), or NULL. */
static const char *refuse_head(struct MHD_Connection *c, const char *url, const char *version,
                               int *status) {
  head_check h = {0};
  MHD_get_connection_values_n(c, MHD_HEADER_KIND, check_header, &h);
  *status = 400;
  if (h.control_bytes)
    return "control bytes in a header, or a space in a header name";
  if (h.content_length > 1)
    return "more than one Content-Length";
  if (h.content_length && h.transfer_encoding)
    return "both Content-Length and Transfer-Encoding";
  if (h.bad_length)
    return "Content-Length is not a number of bytes";
  if (h.transfer_encoding > 1 || h.bad_coding) {
    *status = 501;
    return "only the chunked transfer coding is supported";
  }
  if (h.authorization > 1)
    return "more than one Authorization header";
  if (h.host != 1 && strcmp(version, MHD_HTTP_VERSION_1_1) == 0)
    return "an HTTP/1.1 request needs exactly one Host header";
  if (strstr(url, "%00") || strcasestr(url, "%2f") || ac_has_control(url, strlen(url)))
    return "the path holds an encoded NUL or slash, or control bytes";
  if (!ac_utf8_valid(url, strlen(url)))
    return "the path is not valid UTF-8";
  return NULL;
}

/* Decodes the path as libmicrohttpd does, but leaves a path holding an
 * encoded NUL or "/" as it came, for refuse_head to refuse: decoded, it
 * would be cut at the NUL or split at the slash and routed as another. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  if (strstr(s, "%00") || strcasestr(s, "%2f"))
    return strlen(s);
  return MHD_http_unescape(s);
}

static enum MHD_Result refuse(struct MHD_Connection *c, ac_server *s, const char *method,
                              int status, const char *why) {
  ac_response res = {0};
  ac_respond_problem(&res, status, why, NULL);
  res.close = 1; /* what follows a refused head cannot be trusted */
  enum MHD_Result ok = send_response(c, &res);
  ac_app_count_request(s->app, method, "refused", status);
  response_clear(&res);
  return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  ac_server *s = cls;
  conn_state *st = *con_cls;
  if (!st) {
    st = calloc(1, sizeof *st);
    if (!st)
      return MHD_NO;
    st->body.limit = AC_API_BODY_MAX;
    st->started_us = ac_clock_mono_us();
    *con_cls = st;
    int status;
    const char *why = refuse_head(c, url, version, &status);
    if (why) {
      st->answered = 1;
      return refuse(c, s, method, status, why);
    }
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
  if (st->deferred)
    return send_deferred(c, s, st, method); /* resumed: the answer is ready */
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
  req.conn_state = st;
  req.server = s;
  ac_response res = {0};
  res.status = 500;
  ac_router_dispatch(s->app, &req, &res);
  if (req.deferred) {
    response_clear(&res);
    ac_principal_clear(&req.principal);
    st->route = req.route;
    if (deferred_park(s, req.deferred))
      return MHD_YES;
    return send_deferred(c, s, st, method);
  }
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
    if (st->deferred)
      deferred_unref(st->deferred);
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

/* Connections the process can hold: its file limit (raised to the hard
 * limit first) less what the database, plugin HTTP and files need. */
static unsigned fd_budget(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 1000;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit raised = {rl.rlim_max, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      rl = raised;
  }
  rlim_t n = rl.rlim_cur > 1024 ? rl.rlim_cur - 512 : rl.rlim_cur / 2;
  return n > 100000 ? 100000u : (unsigned)n;
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
  pthread_mutex_init(&s->pending_lock, NULL);
  unsigned limit = cfg->connection_limit > 0 ? (unsigned)cfg->connection_limit : fd_budget();
  /* by default one address may hold a quarter of all connections at most */
  unsigned per_client = cfg->per_client_limit > 0 ? (unsigned)cfg->per_client_limit
                                                  : (limit / 4 < 1024 ? limit / 4 : 1024);
  s->daemon = MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
      on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
      (unsigned)(cfg->threads > 0 ? cfg->threads : 4), MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)(cfg->connection_timeout_s > 0 ? cfg->connection_timeout_s : 10),
      MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_client,
      MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE,
      (unsigned)511, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
  if (!s->daemon) {
    pthread_mutex_destroy(&s->pending_lock);
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
  /* libmicrohttpd cannot stop with parked connections: answer them (the
   * work behind them finds its answer dropped) */
  pthread_mutex_lock(&s->pending_lock);
  s->stopping = 1;
  pthread_mutex_unlock(&s->pending_lock);
  for (;;) {
    pthread_mutex_lock(&s->pending_lock);
    ac_deferred *d = s->pending;
    if (d) {
      pthread_mutex_lock(&d->lock);
      d->refs++;
      pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_unlock(&s->pending_lock);
    if (!d)
      break;
    ac_response res = {0};
    ac_respond_problem(&res, 503, "the server is stopping; try again", NULL);
    snprintf(res.retry_after, sizeof res.retry_after, "1");
    deferred_set(d, &res);
    deferred_unref(d);
  }
  MHD_stop_daemon(s->daemon);
  pthread_mutex_destroy(&s->pending_lock);
  free(s);
}
