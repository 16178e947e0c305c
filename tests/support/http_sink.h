/* http_sink.h — a real HTTP server for tests: records every request it
 * receives and answers from a scripted queue of responses.
 *
 * Built on libmicrohttpd, one thread per connection, listening on an
 * ephemeral port of a loopback address. Typical use:
 *
 *   ac_sink *s = ac_sink_start();
 *   ac_sink_push(s, (ac_sink_response){.status = 302,
 *                   .headers = {"Location", "http://127.0.0.1/x"}});
 *   ... send requests to ac_sink_url(s) ...
 *   assert_int_equal(ac_sink_wait(s, 1, 2000), AC_OK);
 *   ac_sink_request r;
 *   ac_sink_request_get(s, 0, &r);  ... r.method, r.target, r.body ...
 *   ac_sink_request_free(&r);
 *   ac_sink_stop(s);
 *
 * Each request takes the next scripted response (in push order); with the
 * queue empty it gets 200 "ok". All functions are thread-safe. */
#ifndef AC_TEST_HTTP_SINK_H
#define AC_TEST_HTTP_SINK_H

#include "core/err.h"

#include <stddef.h>

typedef struct ac_sink ac_sink;

#define AC_SINK_MAX_HEADERS 8
#define AC_SINK_MAX_BODY (16 * 1024 * 1024) /* recorded request body cap */

/* One scripted answer. Zero fields mean: status 200, no extra headers,
 * empty body, answer at once. Strings are copied by ac_sink_push. */
typedef struct ac_sink_response {
  unsigned status;
  const char *headers[2 * AC_SINK_MAX_HEADERS]; /* name, value, name, value,
                                                   ...; a NULL name ends it;
                                                   a name may repeat */
  const char *body;  /* NULL: empty */
  size_t body_len;   /* 0: strlen(body) */
  int delay_ms;      /* wait this long before answering */
  int hang;          /* never answer; the connection closes once the client
                        goes away or the sink stops */
  size_t huge_body;  /* > 0: the body is this many 'x' bytes (body ignored),
                        generated on the fly */
  int chunked;       /* with huge_body: no Content-Length, chunked encoding */
} ac_sink_response;

typedef struct ac_sink_header {
  char *name; /* lower-cased */
  char *value;
} ac_sink_header;

/* A recorded request, copied out by ac_sink_request_get (caller frees with
 * ac_sink_request_free). */
typedef struct ac_sink_request {
  char *method;
  char *target;            /* path and query exactly as sent ("/a%20b?x=1") */
  ac_sink_header *headers; /* in arrival order */
  size_t header_count;
  char *body;              /* body_len bytes plus a NUL */
  size_t body_len;
  int body_truncated;      /* the body went over AC_SINK_MAX_BODY */
  unsigned connection;     /* 1-based number of the TCP connection it came on */
} ac_sink_request;

/* Starts a sink on 127.0.0.1 with an ephemeral port. NULL on failure. */
ac_sink *ac_sink_start(void);

/* Same on a given loopback address ("127.0.0.1" or "::1"). */
ac_sink *ac_sink_start_on(const char *ip);

/* Stops the sink (never hangs, even while a response is hanging) and frees
 * it with everything recorded. NULL is a no-op. */
void ac_sink_stop(ac_sink *s);

/* Base URL without a trailing slash: "http://127.0.0.1:PORT" or
 * "http://[::1]:PORT". Valid until ac_sink_stop. */
const char *ac_sink_url(ac_sink *s);
unsigned ac_sink_port(ac_sink *s);

/* Queues a scripted response for the next request that has none yet. */
void ac_sink_push(ac_sink *s, ac_sink_response r);

/* Waits until at least n requests were received (fully, body included).
 * AC_OK, or AC_ERR_TIMEOUT after timeout_ms. */
int ac_sink_wait(ac_sink *s, size_t n, int timeout_ms);

/* Requests received so far. */
size_t ac_sink_count(ac_sink *s);

/* TCP connections accepted so far (to check connection reuse). */
size_t ac_sink_connections(ac_sink *s);

/* Hanging requests (.hang) whose client closed the connection, while the
 * sink was running. */
size_t ac_sink_hangs_abandoned(ac_sink *s);

/* Copies request i (0-based, arrival order) into out. AC_OK, or
 * AC_ERR_NOTFOUND if fewer were received, or AC_ERR_NOMEM. */
int ac_sink_request_get(ac_sink *s, size_t i, ac_sink_request *out);
void ac_sink_request_free(ac_sink_request *r);

/* First value of a header (name case-insensitive) in a copied request, or
 * NULL. */
const char *ac_sink_header_get(const ac_sink_request *r, const char *name);

#endif
