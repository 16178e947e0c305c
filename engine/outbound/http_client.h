/* http_client.h — the outbound HTTP client behind context.http (docs/plugin-authoring.md):
 * libcurl, http/https only, no redirects, no proxy from the environment,
 * timeouts bounded by the call's deadline, a token bucket per (plugin,
 * namespace), and an address guard on every connection actually opened.
 *
 * Failures come back as one of four kinds, by return code and by the first
 * word of the message ("<kind>: <detail>"):
 *   AC_ERR_LIMIT   "rate_limited: ..."  no token before the deadline
 *   AC_ERR_DENIED  "denied: ..."        refused before any byte was sent:
 *                                       address guard, scheme, method, bad
 *                                       URL, header or body over a cap
 *   AC_ERR_TIMEOUT "timeout: ..."       the timeout or the deadline passed
 *   AC_ERR_IO      "transport: ..."     anything else on the wire, including
 *                                       a response body over the cap
 * Any HTTP status, 3xx and 5xx included, is a success: redirects are
 * returned as they are, never followed. */
#ifndef AC_OUTBOUND_HTTP_CLIENT_H
#define AC_OUTBOUND_HTTP_CLIENT_H

#include "core/err.h"
#include "outbound/addr_guard.h"
#include "outbound/counters.h"
#include "outbound/rate_limit.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Caps. A response body over AC_HTTP_MAX_BODY fails the call ("transport:
 * response body exceeds ...") rather than being cut short: a truncated JSON
 * document or file would look valid to the plugin and mislead it. */
#define AC_HTTP_MAX_BODY (1024 * 1024)          /* request and response body */
#define AC_HTTP_MAX_HEADERS 100                 /* request header count */
#define AC_HTTP_MAX_HEADER_BYTES (64 * 1024)    /* request headers, total */
#define AC_HTTP_MAX_RESPONSE_HEADER_BYTES (256 * 1024)
#define AC_HTTP_MAX_URL 16384
#define AC_HTTP_DEFAULT_TIMEOUT_MS 10000

/* Counter slots of the optional call counters (see the config). */
enum {
  AC_HTTP_COUNT_OK = 0,
  AC_HTTP_COUNT_RATE_LIMITED,
  AC_HTTP_COUNT_DENIED,
  AC_HTTP_COUNT_TIMEOUT,
  AC_HTTP_COUNT_TRANSPORT,
  AC_HTTP_COUNT_SLOTS
};

typedef struct ac_http_client ac_http_client;

typedef struct ac_http_client_config {
  const ac_addr_guard *guard; /* required, borrowed, must outlive the client */
  ac_rate_limiter *limiter;   /* optional (NULL: no rate limit), borrowed */
  ac_counters *counters;      /* optional, AC_HTTP_COUNT_SLOTS slots, borrowed:
                                 calls per plugin by outcome */
  const char *user_agent;     /* copied; NULL: "AgentCore/<version>" */
} ac_http_client_config;

typedef struct ac_http_header {
  const char *name;  /* an RFC 7230 token */
  const char *value; /* no control characters except tab */
} ac_http_header;

typedef struct ac_http_req {
  const char *method; /* GET POST PUT PATCH DELETE HEAD OPTIONS, any case;
                         NULL: GET */
  const char *url;    /* absolute http:// or https:// URL */
  const ac_http_header *headers;
  size_t header_count;
  const char *body;   /* body_len bytes, may hold NULs; NULL: no body */
  size_t body_len;
  int64_t timeout_ms; /* 0: AC_HTTP_DEFAULT_TIMEOUT_MS; negative is refused */
  const char *plugin_id;    /* rate-limit key and counters (NULL: "") */
  const char *namespace_id; /* rate-limit key (NULL: "") */
} ac_http_req;

typedef struct ac_http_response {
  long status;
  json_t *headers; /* object: lower-cased name -> value; repeats joined with
                      ", "; bytes that are not UTF-8 read as Latin-1 */
  char *body;      /* body_len bytes plus a NUL; never NULL after success */
  size_t body_len;
} ac_http_response;

/* Starts a client for one thread: it owns a libcurl handle whose open
 * connections are reused by later requests. Connections are only reused to
 * the same host and port, and every one was opened through this client's
 * guard, so reuse cannot get around it. Caller frees with
 * ac_http_client_free. Not thread-safe: one client per worker thread. */
int ac_http_client_new(const ac_http_client_config *cfg, ac_http_client **out,
                       ac_err *err);
void ac_http_client_free(ac_http_client *c);

/* Performs req, which must end before deadline_ms (monotonic, as
 * ac_clock_mono_ms). First waits for a rate token (sleeping) if one comes
 * before the deadline; the transfer then gets min(timeout, time left).
 * AC_OK fills resp (caller frees with ac_http_response_free); otherwise
 * resp is left empty and err says why (see the kinds above). */
int ac_http_request(ac_http_client *c, const ac_http_req *req,
                    int64_t deadline_ms, ac_http_response *resp, ac_err *err);

/* The same request in two steps, so the transfer can run elsewhere (on
 * an event loop, ac_http_loop) while the caller's thread does other work:
 * begin checks req, takes its rate token and readies the client's handle
 * (nothing is sent); AC_OK means a transfer is pending, to start no earlier
 * than ac_http_client_start_at (a rate wait) on ac_http_client_handle (a
 * CURL easy handle). Whoever runs it reports its CURLcode with
 * ac_http_client_transfer_done; finish then fills resp or err like
 * ac_http_request — or, if nobody ran the transfer, runs it here first.
 * One request per client at a time. */
int ac_http_request_begin(ac_http_client *c, const ac_http_req *req, int64_t deadline_ms,
                          ac_err *err);
void *ac_http_client_handle(ac_http_client *c);
int64_t ac_http_client_start_at(const ac_http_client *c);
void ac_http_client_transfer_done(ac_http_client *c, int result);
/* The result to report for a transfer refused because its destination
 * already has too many in flight (finish fails with "transport: ..."). */
#define AC_HTTP_RESULT_HOST_FULL (-1)
/* "host:port" of the pending request, lower case, cut to size; "" when
 * there is none. */
void ac_http_client_destination(const ac_http_client *c, char *out, size_t size);
int ac_http_request_finish(ac_http_client *c, ac_http_response *resp, ac_err *err);

/* Drops a pending request that will not be finished (its call was ended
 * while it waited); the transfer must not be running. No-op otherwise. */
void ac_http_request_cancel(ac_http_client *c);

/* Frees what a response holds and empties it. NULL is a no-op. */
void ac_http_response_free(ac_http_response *resp);

/* Checks one request header (counted strings, so bindings holding Lua
 * strings catch embedded NULs): name an RFC 7230 token, value without
 * control characters other than tab, and not a header that frames the
 * message or the connection (Content-Length, Transfer-Encoding,
 * Connection, ...: libcurl sets those, and a forged one could desync a
 * connection that later requests reuse). AC_ERR_DENIED with a message
 * starting "denied: ", as ac_http_request would report it. */
int ac_http_check_header(const char *name, size_t name_len, const char *value,
                         size_t value_len, ac_err *err);

#endif
