/* http_sink.c — recording, scripted HTTP server for tests (libmicrohttpd). */
#include "http_sink.h"
#include "core/buf.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* A scripted response with its own copies of every string. */
typedef struct script {
  struct script *next;
  ac_sink_response r;
  char *strings[2 * AC_SINK_MAX_HEADERS + 1];
} script;

/* A request being received; becomes an ac_sink_request when complete. */
typedef struct pending {
  ac_sink_request req;
  ac_buf body;
  int started;
} pending;

struct ac_sink {
  struct MHD_Daemon *daemon;
  char url[64];
  unsigned port;
  atomic_int stopping;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  script *head, *tail;
  ac_sink_request *reqs;
  size_t nreqs, capreqs;
  size_t connections;
  atomic_size_t hangs_abandoned; /* hanging requests whose client closed */
};

/* ---- copies ------------------------------------------------------------- */

static char *dupn(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    if (n)
      memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

void ac_sink_request_free(ac_sink_request *r) {
  if (!r)
    return;
  free(r->method);
  free(r->target);
  for (size_t i = 0; i < r->header_count; i++) {
    free(r->headers[i].name);
    free(r->headers[i].value);
  }
  free(r->headers);
  free(r->body);
  memset(r, 0, sizeof *r);
}

static int copy_request(const ac_sink_request *src, ac_sink_request *dst) {
  memset(dst, 0, sizeof *dst);
  dst->method = strdup(src->method ? src->method : "");
  dst->target = strdup(src->target ? src->target : "");
  dst->body = dupn(src->body ? src->body : "", src->body_len);
  dst->body_len = src->body_len;
  dst->body_truncated = src->body_truncated;
  dst->connection = src->connection;
  dst->headers = calloc(src->header_count + 1, sizeof *dst->headers);
  if (!dst->method || !dst->target || !dst->body || !dst->headers) {
    ac_sink_request_free(dst);
    return AC_ERR_NOMEM;
  }
  for (size_t i = 0; i < src->header_count; i++) {
    dst->headers[i].name = strdup(src->headers[i].name);
    dst->headers[i].value = strdup(src->headers[i].value);
    dst->header_count = i + 1;
    if (!dst->headers[i].name || !dst->headers[i].value) {
      ac_sink_request_free(dst);
      return AC_ERR_NOMEM;
    }
  }
  return AC_OK;
}

const char *ac_sink_header_get(const ac_sink_request *r, const char *name) {
  for (size_t i = 0; i < r->header_count; i++)
    if (strcasecmp(r->headers[i].name, name) == 0)
      return r->headers[i].value;
  return NULL;
}

/* ---- MHD callbacks ------------------------------------------------------ */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
  (void)cls;
  (void)conn;
  pending *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->body.limit = AC_SINK_MAX_BODY;
  p->req.target = strdup(uri ? uri : "");
  return p;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  pending *p = *con_cls;
  if (!p)
    return;
  ac_sink_request_free(&p->req);
  ac_buf_free(&p->body);
  free(p);
  *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  (void)conn;
  ac_sink *s = cls;
  if (toe != MHD_CONNECTION_NOTIFY_STARTED)
    return;
  pthread_mutex_lock(&s->mu);
  s->connections++;
  *socket_context = (void *)(uintptr_t)s->connections;
  pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size) {
  (void)kind;
  ac_sink_request *r = cls;
  ac_sink_header *h = realloc(r->headers, (r->header_count + 1) * sizeof *h);
  if (!h)
    return MHD_NO;
  r->headers = h;
  char *name = dupn(key, key_size);
  char *val = dupn(value ? value : "", value ? value_size : 0);
  if (!name || !val) {
    free(name);
    free(val);
    return MHD_NO;
  }
  for (char *c = name; *c; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char)(*c - 'A' + 'a');
  h[r->header_count].name = name;
  h[r->header_count].value = val;
  r->header_count++;
  return MHD_YES;
}

/* Moves the finished request into the log and takes its scripted answer. */
static script *record(ac_sink *s, struct MHD_Connection *conn, pending *p) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  p->req.connection = ci ? (unsigned)(uintptr_t)ci->socket_context : 0;
  p->req.body_len = p->body.len;
  p->req.body = ac_buf_take(&p->body);
  pthread_mutex_lock(&s->mu);
  if (s->nreqs == s->capreqs) {
    size_t cap = s->capreqs ? s->capreqs * 2 : 16;
    ac_sink_request *n = realloc(s->reqs, cap * sizeof *n);
    if (n) {
      s->reqs = n;
      s->capreqs = cap;
    }
  }
  if (s->nreqs < s->capreqs && p->req.body) {
    s->reqs[s->nreqs++] = p->req;
    memset(&p->req, 0, sizeof p->req);
  }
  script *sc = s->head;
  if (sc) {
    s->head = sc->next;
    if (!s->head)
      s->tail = NULL;
  }
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->mu);
  return sc;
}

/* True once the peer has closed its side (or the socket failed). */
static int client_gone(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci)
    return 1;
  struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
  if (poll(&pfd, 1, 0) <= 0)
    return 0;
  if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
    return 1;
  char c;
  return recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Sleeps up to ms (forever if ms < 0) in short steps. Returns 0 if the
 * client went away or the sink is stopping, 1 if the time passed. */
static int linger(ac_sink *s, struct MHD_Connection *conn, int64_t ms) {
  int64_t end = ac_clock_mono_ms() + ms;
  while (ms < 0 || ac_clock_mono_ms() < end) {
    if (atomic_load(&s->stopping) || client_gone(conn))
      return 0;
    ac_clock_sleep_ms(10);
  }
  return 1;
}

static ssize_t huge_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  size_t total = (size_t)(uintptr_t)cls;
  if (pos >= total)
    return MHD_CONTENT_READER_END_OF_STREAM;
  size_t n = total - (size_t)pos < max ? total - (size_t)pos : max;
  memset(buf, 'x', n);
  return (ssize_t)n;
}

static enum MHD_Result answer(ac_sink *s, struct MHD_Connection *conn, script *sc) {
  static const char DEFAULT_BODY[] = "ok";
  ac_sink_response r = {0};
  if (sc)
    r = sc->r;
  else {
    r.body = DEFAULT_BODY;
    r.body_len = sizeof DEFAULT_BODY - 1;
  }
  if (r.hang) {
    linger(s, conn, -1);
    if (!atomic_load(&s->stopping))
      atomic_fetch_add(&s->hangs_abandoned, 1);
    return MHD_NO; /* close without a response */
  }
  if (r.delay_ms > 0 && !linger(s, conn, r.delay_ms))
    return MHD_NO;
  struct MHD_Response *resp;
  if (r.huge_body)
    resp = MHD_create_response_from_callback(r.chunked ? MHD_SIZE_UNKNOWN : r.huge_body,
                                             64 * 1024, huge_reader,
                                             (void *)(uintptr_t)r.huge_body, NULL);
  else
    resp = MHD_create_response_from_buffer(r.body_len, (void *)(r.body ? r.body : ""),
                                           MHD_RESPMEM_MUST_COPY);
  if (!resp)
    return MHD_NO;
  for (int i = 0; i < AC_SINK_MAX_HEADERS && r.headers[2 * i]; i++)
    MHD_add_response_header(resp, r.headers[2 * i],
                            r.headers[2 * i + 1] ? r.headers[2 * i + 1] : "");
  enum MHD_Result rc = MHD_queue_response(conn, r.status ? r.status : 200, resp);
  MHD_destroy_response(resp);
  return rc;
}

static void script_free(script *sc) {
  if (!sc)
    return;
  for (size_t i = 0; i < sizeof sc->strings / sizeof *sc->strings; i++)
    free(sc->strings[i]);
  free(sc);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  (void)url;
  (void)version;
  ac_sink *s = cls;
  pending *p = *con_cls;
  if (!p || !p->req.target)
    return MHD_NO;
  if (!p->started) {
    p->started = 1;
    p->req.method = strdup(method);
    if (!p->req.method)
      return MHD_NO;
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, on_header, &p->req);
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (ac_buf_append(&p->body, upload_data, *upload_data_size) != AC_OK)
      p->req.body_truncated = 1;
    *upload_data_size = 0;
    return MHD_YES;
  }
  script *sc = record(s, conn, p);
  enum MHD_Result rc = answer(s, conn, sc);
  script_free(sc);
  return rc;
}

/* ---- public ------------------------------------------------------------- */

ac_sink *ac_sink_start(void) { return ac_sink_start_on("127.0.0.1"); }

ac_sink *ac_sink_start_on(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
  int v6 = strchr(ip, ':') != NULL;
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, ip, &a->sin6_addr) != 1)
      return NULL;
    flags |= MHD_USE_IPv6;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &a->sin_addr) != 1)
      return NULL;
  }
  ac_sink *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cond, NULL);
  s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                               MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                               MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                               MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                               /* room for 64 KiB of request headers */
                               MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                               MHD_OPTION_END);
  const union MHD_DaemonInfo *di =
      s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  if (!di || !di->port) {
    ac_sink_stop(s);
    return NULL;
  }
  s->port = di->port;
  snprintf(s->url, sizeof s->url, v6 ? "http://[%s]:%u" : "http://%s:%u", ip, s->port);
  return s;
}

void ac_sink_stop(ac_sink *s) {
  if (!s)
    return;
  atomic_store(&s->stopping, 1);
  if (s->daemon)
    MHD_stop_daemon(s->daemon);
  for (size_t i = 0; i < s->nreqs; i++)
    ac_sink_request_free(&s->reqs[i]);
  free(s->reqs);
  while (s->head) {
    script *next = s->head->next;
    script_free(s->head);
    s->head = next;
  }
  pthread_cond_destroy(&s->cond);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

const char *ac_sink_url(ac_sink *s) { return s->url; }

unsigned ac_sink_port(ac_sink *s) { return s->port; }

void ac_sink_push(ac_sink *s, ac_sink_response r) {
  script *sc = calloc(1, sizeof *sc);
  if (!sc)
    abort(); /* a test helper: running out of memory here is fatal */
  if (r.body && !r.body_len)
    r.body_len = strlen(r.body);
  size_t k = 0;
  for (int i = 0; i < 2 * AC_SINK_MAX_HEADERS && r.headers[i]; i++) {
    sc->strings[k] = strdup(r.headers[i]);
    r.headers[i] = sc->strings[k++];
  }
  if (r.body) {
    sc->strings[k] = dupn(r.body, r.body_len);
    r.body = sc->strings[k++];
  }
  for (size_t i = 0; i < k; i++)
    if (!sc->strings[i])
      abort();
  sc->r = r;
  pthread_mutex_lock(&s->mu);
  if (s->tail)
    s->tail->next = sc;
  else
    s->head = sc;
  s->tail = sc;
  pthread_mutex_unlock(&s->mu);
}

int ac_sink_wait(ac_sink *s, size_t n, int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->mu);
  int rc = AC_OK;
  while (s->nreqs < n) {
    if (pthread_cond_timedwait(&s->cond, &s->mu, &until) != 0 && s->nreqs < n) {
      rc = AC_ERR_TIMEOUT;
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

size_t ac_sink_count(ac_sink *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->nreqs;
  pthread_mutex_unlock(&s->mu);
  return n;
}

size_t ac_sink_hangs_abandoned(ac_sink *s) { return atomic_load(&s->hangs_abandoned); }

size_t ac_sink_connections(ac_sink *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->connections;
  pthread_mutex_unlock(&s->mu);
  return n;
}

int ac_sink_request_get(ac_sink *s, size_t i, ac_sink_request *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->mu);
  int rc = i < s->nreqs ? copy_request(&s->reqs[i], out) : AC_ERR_NOTFOUND;
  pthread_mutex_unlock(&s->mu);
  return rc;
}
