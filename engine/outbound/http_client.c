/* http_client.c — libcurl-based outbound HTTP with the policy of docs/plugin-authoring.md. */
#include "outbound/http_client.h"
#include "core/buf.h"
#include "core/bytes.h"
#include "core/clock.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifndef AC_VERSION
#define AC_VERSION "0"
#endif

struct ac_http_client {
  CURL *curl;
  const ac_addr_guard *guard;
  ac_rate_limiter *limiter;
  ac_counters *counters;
  char *user_agent;
  /* State of the request in flight, reset by each ac_http_request. */
  int denied;            /* the guard refused an address */
  int opened;            /* ... and allowed this many */
  char denied_why[256];
  ac_buf body;
  int body_too_big;
  size_t header_bytes;
  int headers_too_big;
  char errbuf[CURL_ERROR_SIZE];
  /* a request begun and not yet finished (ac_http_request_begin) */
  int pending;
  CURLU *url;
  struct curl_slist *headers;
  int64_t timeout_ms;
  int64_t start_at_ms;
  char plugin_id[80];
  int ran;        /* the transfer ran (on a loop or here) */
  int result;     /* its CURLcode */
};

/* ---- process-wide libcurl setup ----------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- client ------------------------------------------------------------- */

int ac_http_client_new(const ac_http_client_config *cfg, ac_http_client **out,
                       ac_err *err) {
  *out = NULL;
  if (!cfg || !cfg->guard)
    return ac_err_set(err, AC_ERR_INVALID, "http client needs an address guard");
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return ac_err_set(err, AC_ERR_INTERNAL, "libcurl init failed: %s",
                      curl_easy_strerror(curl_init_rc));
  ac_http_client *c = calloc(1, sizeof *c);
  if (!c)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  c->guard = cfg->guard;
  c->limiter = cfg->limiter;
  c->counters = cfg->counters;
  c->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "AgentCore/" AC_VERSION);
  c->curl = curl_easy_init();
  c->body.limit = AC_HTTP_MAX_BODY;
  if (!c->user_agent || !c->curl) {
    ac_http_client_free(c);
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  }
  *out = c;
  return AC_OK;
}

void ac_http_client_free(ac_http_client *c) {
  if (!c)
    return;
  curl_slist_free_all(c->headers);
  curl_url_cleanup(c->url);
  if (c->curl)
    curl_easy_cleanup(c->curl);
  ac_buf_free(&c->body);
  free(c->user_agent);
  free(c);
}

void ac_http_response_free(ac_http_response *resp) {
  if (!resp)
    return;
  json_decref(resp->headers);
  free(resp->body);
  memset(resp, 0, sizeof *resp);
}

/* ---- request validation ------------------------------------------------- */

static const char *const METHODS[] = {"GET", "POST", "PUT", "PATCH",
                                      "DELETE", "HEAD", "OPTIONS"};

/* Headers libcurl owns: they frame the message or manage the connection. */
static const char *const RESERVED_HEADERS[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive",
    "proxy-connection", "te", "trailer", "upgrade", "expect"};

static int is_tchar(unsigned char ch) {
  if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
    return 1;
  return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

int ac_http_check_header(const char *name, size_t name_len, const char *value,
                         size_t value_len, ac_err *err) {
  if (!name || name_len == 0)
    return ac_err_set(err, AC_ERR_DENIED, "denied: empty header name");
  for (size_t i = 0; i < name_len; i++)
    if (!is_tchar((unsigned char)name[i]))
      return ac_err_set(err, AC_ERR_DENIED,
                        "denied: header name \"%.*s\" is not an HTTP token",
                        (int)(name_len > 64 ? 64 : name_len), name);
  for (size_t i = 0; i < sizeof RESERVED_HEADERS / sizeof *RESERVED_HEADERS; i++)
    if (strlen(RESERVED_HEADERS[i]) == name_len &&
        strncasecmp(RESERVED_HEADERS[i], name, name_len) == 0)
      return ac_err_set(err, AC_ERR_DENIED,
                        "denied: header \"%.*s\" is set by the HTTP client",
                        (int)name_len, name);
  if (value && ac_has_control(value, value_len))
    return ac_err_set(err, AC_ERR_DENIED,
                      "denied: value of header \"%.*s\" contains a control character "
                      "(CR, LF, NUL, ...)",
                      (int)(name_len > 64 ? 64 : name_len), name);
  return AC_OK;
}

/* The canonical method name, or NULL if not allowed. */
static const char *check_method(const char *m) {
  if (!m)
    return "GET";
  for (size_t i = 0; i < sizeof METHODS / sizeof *METHODS; i++)
    if (strcasecmp(m, METHODS[i]) == 0)
      return METHODS[i];
  return NULL;
}

/* Parses url with curl_url (the same parser the transfer uses) and allows
 * only http and https. On success *out holds the parsed URL (caller frees
 * with curl_url_cleanup). */
static int check_url(const char *url, CURLU **out, ac_err *err) {
  *out = NULL;
  if (!url || !*url)
    return ac_err_set(err, AC_ERR_DENIED, "denied: missing URL");
  if (strlen(url) > AC_HTTP_MAX_URL)
    return ac_err_set(err, AC_ERR_DENIED, "denied: URL longer than %d bytes",
                      AC_HTTP_MAX_URL);
  CURLU *u = curl_url();
  if (!u)
    return ac_err_set(err, AC_ERR_IO, "transport: out of memory");
  /* NON_SUPPORT_SCHEME: parse any scheme so the refusal can name it. */
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
  if (uc != CURLUE_OK) {
    curl_url_cleanup(u);
    return ac_err_set(err, AC_ERR_DENIED, "denied: invalid URL: %s", curl_url_strerror(uc));
  }
  char *scheme = NULL;
  uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  int ok = uc == CURLUE_OK && scheme &&
           (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0);
  if (!ok) {
    int rc = ac_err_set(err, AC_ERR_DENIED,
                        "denied: scheme \"%.32s\" is not allowed (only http and https)",
                        scheme ? scheme : "");
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
  }
  curl_free(scheme);
  *out = u;
  return AC_OK;
}

/* Builds the header list after checking every header and the caps. */
static int build_headers(const ac_http_req *req, struct curl_slist **out,
                         ac_err *err) {
  *out = NULL;
  if (req->header_count > AC_HTTP_MAX_HEADERS)
    return ac_err_set(err, AC_ERR_DENIED, "denied: more than %d request headers",
                      AC_HTTP_MAX_HEADERS);
  if (req->header_count && !req->headers)
    return ac_err_set(err, AC_ERR_DENIED, "denied: missing header array");
  size_t total = 0;
  int has_type = 0;
  struct curl_slist *list = NULL;
  ac_buf line = AC_BUF_INIT(AC_HTTP_MAX_HEADER_BYTES);
  int rc = AC_OK;
  for (size_t i = 0; i < req->header_count && rc == AC_OK; i++) {
    const char *name = req->headers[i].name, *value = req->headers[i].value;
    size_t nl = name ? strlen(name) : 0, vl = value ? strlen(value) : 0;
    rc = ac_http_check_header(name, nl, value, vl, err);
    if (rc != AC_OK)
      break;
    total += nl + vl + 4; /* "Name: value\r\n" */
    if (total > AC_HTTP_MAX_HEADER_BYTES) {
      rc = ac_err_set(err, AC_ERR_DENIED, "denied: request headers exceed %d bytes",
                      AC_HTTP_MAX_HEADER_BYTES);
      break;
    }
    if (nl == 12 && strncasecmp(name, "content-type", 12) == 0)
      has_type = 1;
    ac_buf_reset(&line);
    /* "Name;" is libcurl's spelling of an empty value; "Name:" would
     * instead delete one of its own headers. */
    if (vl)
      rc = ac_buf_printf(&line, "%s: %s", name, value);
    else
      rc = ac_buf_printf(&line, "%s;", name);
    struct curl_slist *next = rc == AC_OK ? curl_slist_append(list, line.data) : NULL;
    if (!next) {
      rc = ac_err_set(err, AC_ERR_IO, "transport: out of memory");
      break;
    }
    list = next;
  }
  ac_buf_free(&line);
  if (rc == AC_OK) {
    /* No "Expect: 100-continue" round trip, and no made-up form type for a
     * body whose type the plugin did not state. */
    const char *extra[] = {"Expect:", has_type ? NULL : "Content-Type:"};
    for (size_t i = 0; i < 2 && rc == AC_OK; i++) {
      if (!extra[i])
        continue;
      struct curl_slist *next = curl_slist_append(list, extra[i]);
      if (!next)
        rc = ac_err_set(err, AC_ERR_IO, "transport: out of memory");
      else
        list = next;
    }
  }
  if (rc != AC_OK) {
    curl_slist_free_all(list);
    return rc;
  }
  *out = list;
  return AC_OK;
}

/* ---- libcurl callbacks -------------------------------------------------- */

/* Every connection curl opens comes through here with the address it is
 * about to connect to, after DNS: the one place the guard cannot be
 * dodged by names, rebinding or numeric spellings. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose,
                                 struct curl_sockaddr *a) {
  ac_http_client *c = ud;
  if (purpose != CURLSOCKTYPE_IPCXN) {
    c->denied = 1;
    snprintf(c->denied_why, sizeof c->denied_why, "socket type %d is not allowed",
             (int)purpose);
    return CURL_SOCKET_BAD;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  size_t n = a->addrlen < sizeof ss ? a->addrlen : sizeof ss;
  memcpy(&ss, &a->addr, n);
  int addr_ok = (ss.ss_family == AF_INET && n >= sizeof(struct sockaddr_in)) ||
                (ss.ss_family == AF_INET6 && n >= sizeof(struct sockaddr_in6));
  if (!addr_ok) {
    c->denied = 1;
    snprintf(c->denied_why, sizeof c->denied_why, "address family %d is not allowed",
             (int)ss.ss_family);
    return CURL_SOCKET_BAD;
  }
  char why[200];
  if (ac_addr_guard_check(c->guard, (const struct sockaddr *)&ss, why, sizeof why) !=
      AC_OK) {
    /* The first refusal is the one reported; with several addresses
     * (happy eyeballs) another one may still succeed. */
    if (!c->denied)
      snprintf(c->denied_why, sizeof c->denied_why, "%s", why);
    c->denied = 1;
    return CURL_SOCKET_BAD;
  }
  c->opened++;
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  ac_http_client *c = ud;
  size_t n = size * nmemb;
  if (ac_buf_append(&c->body, p, n) != AC_OK) {
    c->body_too_big = 1;
    return 0; /* short count: curl aborts with CURLE_WRITE_ERROR */
  }
  return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  (void)p;
  ac_http_client *c = ud;
  size_t n = size * nmemb;
  c->header_bytes += n;
  if (c->header_bytes > AC_HTTP_MAX_RESPONSE_HEADER_BYTES) {
    c->headers_too_big = 1;
    return 0;
  }
  return n; /* values are read after the transfer via curl_easy_nextheader */
}

/* ---- response ----------------------------------------------------------- */

/* A JSON string from header bytes: as is if UTF-8, else read as Latin-1
 * (HTTP's historical charset) so no byte is lost or rejected. */
static json_t *header_string(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (j)
    return j;
  char *u = malloc(n * 2 + 1);
  if (!u)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch < 0x80) {
      u[k++] = (char)ch;
    } else {
      u[k++] = (char)(0xc0 | (ch >> 6));
      u[k++] = (char)(0x80 | (ch & 0x3f));
    }
  }
  j = json_stringn(u, k);
  free(u);
  return j;
}

static int collect_headers(ac_http_client *c, json_t **out) {
  json_t *obj = json_object();
  if (!obj)
    return AC_ERR_NOMEM;
  struct curl_header *prev = NULL, *h;
  while ((h = curl_easy_nextheader(c->curl, CURLH_HEADER, -1, prev)) != NULL) {
    prev = h;
    size_t nl = strlen(h->name);
    char lower[256];
    if (nl >= sizeof lower)
      nl = sizeof lower - 1; /* names that long are not real headers */
    for (size_t i = 0; i < nl; i++) {
      char ch = h->name[i];
      lower[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    lower[nl] = '\0';
    json_t *key = header_string(lower, nl);
    if (!key) {
      json_decref(obj);
      return AC_ERR_NOMEM;
    }
    const char *k = json_string_value(key);
    json_t *old = json_object_get(obj, k);
    json_t *val;
    if (old) {
      ac_buf joined = AC_BUF_INIT(AC_HTTP_MAX_RESPONSE_HEADER_BYTES * 2);
      int rc = ac_buf_printf(&joined, "%s, %s", json_string_value(old), h->value);
      val = rc == AC_OK ? header_string(joined.data, joined.len) : NULL;
      ac_buf_free(&joined);
    } else {
      val = header_string(h->value, strlen(h->value));
    }
    int rc = val ? json_object_set_new(obj, k, val) : -1;
    json_decref(key);
    if (rc != 0) {
      json_decref(obj);
      return AC_ERR_NOMEM;
    }
  }
  *out = obj;
  return AC_OK;
}

/* ---- the request -------------------------------------------------------- */

static void count(ac_http_client *c, const ac_http_req *req, int rc) {
  int slot = AC_HTTP_COUNT_TRANSPORT;
  switch (rc) {
  case AC_OK: slot = AC_HTTP_COUNT_OK; break;
  case AC_ERR_LIMIT: slot = AC_HTTP_COUNT_RATE_LIMITED; break;
  case AC_ERR_DENIED: slot = AC_HTTP_COUNT_DENIED; break;
  case AC_ERR_TIMEOUT: slot = AC_HTTP_COUNT_TIMEOUT; break;
  default: break;
  }
  ac_counters_add(c->counters, req->plugin_id, slot, 1);
}

/* Sets the method and body options on the freshly reset handle. */
static void set_method(CURL *curl, const char *method, const ac_http_req *req) {
  int has_body = req->body != NULL;
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "GET") == 0 && !has_body) {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (has_body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
             strcmp(method, "PATCH") == 0) {
    /* POSTFIELDS sends the bytes as they are, with a Content-Length (an
     * empty body still says "Content-Length: 0"). */
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    /* copied: the transfer may run after the caller's buffer is gone */
    curl_easy_setopt(curl, CURLOPT_COPYPOSTFIELDS, has_body ? req->body : "");
    if (strcmp(method, "POST") != 0)
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  }
}

/* Takes the rate token and readies the handle for req (nothing is sent).
 * *start_at: when the transfer may start (later than now after a rate
 * wait). */
static int prepare(ac_http_client *c, const ac_http_req *req, const char *method, CURLU *url,
                   struct curl_slist *headers, int64_t deadline_ms, int64_t *start_at,
                   int64_t *timeout_out, ac_err *err) {
  /* The rate token is taken only for a request that will really be sent. */
  int64_t now = ac_clock_mono_ms();
  *start_at = now;
  if (c->limiter) {
    int64_t wait = 0;
    if (ac_rate_reserve(c->limiter, req->plugin_id, req->namespace_id, now, deadline_ms,
                        &wait) != AC_OK)
      return ac_err_set(err, AC_ERR_LIMIT,
                        "rate_limited: plugin %s in namespace %s is over its HTTP rate "
                        "and no token frees up before the deadline",
                        req->plugin_id ? req->plugin_id : "",
                        req->namespace_id ? req->namespace_id : "");
    if (wait > 0)
      *start_at = now + wait;
  }
  int64_t left = deadline_ms - *start_at;
  if (left <= 0)
    return ac_err_set(err, AC_ERR_TIMEOUT, "timeout: the call's deadline passed");
  int64_t timeout = req->timeout_ms ? req->timeout_ms : AC_HTTP_DEFAULT_TIMEOUT_MS;
  if (timeout > left)
    timeout = left;
  *timeout_out = timeout;

  CURL *curl = c->curl;
  /* Reset drops every option of the last request (a HEAD's NOBODY, a
   * body...) but keeps the connection cache. */
  curl_easy_reset(curl);
  c->denied = 0;
  c->opened = 0;
  c->denied_why[0] = '\0';
  ac_buf_reset(&c->body);
  c->body_too_big = 0;
  c->header_bytes = 0;
  c->headers_too_big = 0;
  c->errbuf[0] = '\0';

  /* The policy options must all take, or nothing is sent: a libcurl that
   * ignored one would silently drop a protection. */
  if (curl_easy_setopt(curl, CURLOPT_CURLU, url) != CURLE_OK ||
      curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
      curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
      curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
      curl_easy_setopt(curl, CURLOPT_PROXY, "") != CURLE_OK || /* no *_proxy */
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout) != CURLE_OK ||
      curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout) != CURLE_OK ||
      curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket) != CURLE_OK ||
      curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, c) != CURLE_OK) {
    curl_easy_reset(curl);
    return ac_err_set(err, AC_ERR_IO, "transport: libcurl rejected a required option");
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, c);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, c->errbuf);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_PRIVATE, c);
  if (strcmp(method, "HEAD") != 0) /* fail early on a declared size over the cap */
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)AC_HTTP_MAX_BODY);
  set_method(curl, method, req);
  return AC_OK;
}

/* Reads what the transfer produced (cc is its result). */
static int complete(ac_http_client *c, CURLcode cc, int64_t timeout, ac_http_response *resp,
                    ac_err *err) {
  CURL *curl = c->curl;
  /* Detach request-owned memory from the long-lived handle. */
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(curl, CURLOPT_CURLU, NULL);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);

  if ((int)cc == AC_HTTP_RESULT_HOST_FULL) {
    char dest[300];
    ac_http_client_destination(c, dest, sizeof dest);
    return ac_err_set(err, AC_ERR_IO,
                      "transport: too many requests in flight to %s (the engine's limit per "
                      "destination)", dest);
  }
  if (cc != CURLE_OK) {
    if (c->body_too_big || cc == CURLE_FILESIZE_EXCEEDED)
      return ac_err_set(err, AC_ERR_IO, "transport: response body exceeds %d bytes",
                        AC_HTTP_MAX_BODY);
    if (c->headers_too_big)
      return ac_err_set(err, AC_ERR_IO, "transport: response headers exceed %d bytes",
                        AC_HTTP_MAX_RESPONSE_HEADER_BYTES);
    if (cc == CURLE_OPERATION_TIMEDOUT)
      return ac_err_set(err, AC_ERR_TIMEOUT, "timeout: no response within %lld ms",
                        (long long)timeout);
    if (cc == CURLE_ABORTED_BY_CALLBACK)
      return ac_err_set(err, AC_ERR_IO, "transport: cancelled (the engine is stopping)");
    /* A refused address is the cause only if no allowed one was tried
     * ("localhost": ::1 refused, then 127.0.0.1 allowed but closed). */
    if (c->denied && !c->opened)
      return ac_err_set(err, AC_ERR_DENIED, "denied: %s", c->denied_why);
    return ac_err_set(err, AC_ERR_IO, "transport: %s",
                      c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  json_t *hdrs = NULL;
  if (collect_headers(c, &hdrs) != AC_OK)
    return ac_err_set(err, AC_ERR_IO, "transport: out of memory");
  size_t len = c->body.len;
  char *body = ac_buf_take(&c->body);
  if (!body) {
    json_decref(hdrs);
    return ac_err_set(err, AC_ERR_IO, "transport: out of memory");
  }
  resp->status = status;
  resp->headers = hdrs;
  resp->body = body;
  resp->body_len = len;
  return AC_OK;
}

/* Checks req and readies the transfer (c->pending, url, headers, timeout,
 * start). */
static int begin(ac_http_client *c, const ac_http_req *req, int64_t deadline_ms, ac_err *err) {
  /* The deadline comes first: a call already out of time sends nothing. */
  if (ac_clock_mono_ms() >= deadline_ms)
    return ac_err_set(err, AC_ERR_TIMEOUT,
                      "timeout: the call's deadline passed before the request started");
  const char *method = check_method(req->method);
  if (!method)
    return ac_err_set(err, AC_ERR_DENIED,
                      "denied: method \"%.32s\" is not allowed (GET, POST, PUT, PATCH, "
                      "DELETE, HEAD, OPTIONS)",
                      req->method);
  if (req->timeout_ms < 0)
    return ac_err_set(err, AC_ERR_DENIED, "denied: negative timeout");
  if (req->body && req->body_len > AC_HTTP_MAX_BODY)
    return ac_err_set(err, AC_ERR_DENIED,
                      "denied: request body of %zu bytes exceeds %d bytes", req->body_len,
                      AC_HTTP_MAX_BODY);
  if (req->body && strcmp(method, "HEAD") == 0)
    return ac_err_set(err, AC_ERR_DENIED, "denied: a HEAD request has no body");
  CURLU *url = NULL;
  int rc = check_url(req->url, &url, err);
  if (rc != AC_OK)
    return rc;
  struct curl_slist *headers = NULL;
  rc = build_headers(req, &headers, err);
  if (rc == AC_OK)
    rc = prepare(c, req, method, url, headers, deadline_ms, &c->start_at_ms, &c->timeout_ms, err);
  if (rc != AC_OK) {
    curl_slist_free_all(headers);
    curl_url_cleanup(url);
    return rc;
  }
  c->pending = 1;
  c->url = url;
  c->headers = headers;
  c->ran = 0;
  c->result = CURLE_OK;
  snprintf(c->plugin_id, sizeof c->plugin_id, "%s", req->plugin_id ? req->plugin_id : "");
  return AC_OK;
}

static void count_as(ac_http_client *c, const char *plugin_id, int rc) {
  ac_http_req r = {.plugin_id = plugin_id};
  count(c, &r, rc);
}

int ac_http_request_begin(ac_http_client *c, const ac_http_req *req, int64_t deadline_ms,
                          ac_err *err) {
  if (!c || !req)
    return ac_err_set(err, AC_ERR_DENIED, "denied: missing client or request");
  if (c->pending)
    return ac_err_set(err, AC_ERR_INTERNAL, "transport: a request is already in progress");
  int rc = begin(c, req, deadline_ms, err);
  if (rc != AC_OK)
    count(c, req, rc);
  return rc;
}

void *ac_http_client_handle(ac_http_client *c) { return c->curl; }
int64_t ac_http_client_start_at(const ac_http_client *c) { return c->start_at_ms; }

void ac_http_client_destination(const ac_http_client *c, char *out, size_t size) {
  char *host = NULL, *port = NULL;
  out[0] = '\0';
  if (c->url && curl_url_get(c->url, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(c->url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    snprintf(out, size, "%s:%s", host, port);
    for (char *p = out; *p; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
  }
  curl_free(host);
  curl_free(port);
}

void ac_http_client_transfer_done(ac_http_client *c, int result) {
  c->ran = 1;
  c->result = result;
}

int ac_http_request_finish(ac_http_client *c, ac_http_response *resp, ac_err *err) {
  memset(resp, 0, sizeof *resp);
  if (!c || !c->pending)
    return ac_err_set(err, AC_ERR_INTERNAL, "transport: no request in progress");
  if (!c->ran) { /* nobody ran it elsewhere: here, waiting as needed */
    int64_t wait = c->start_at_ms - ac_clock_mono_ms();
    if (wait > 0)
      ac_clock_sleep_ms(wait);
    c->result = (int)curl_easy_perform(c->curl);
    c->ran = 1;
  }
  int rc = complete(c, (CURLcode)c->result, c->timeout_ms, resp, err);
  curl_slist_free_all(c->headers);
  curl_url_cleanup(c->url);
  c->headers = NULL;
  c->url = NULL;
  c->pending = 0;
  count_as(c, c->plugin_id, rc);
  return rc;
}

void ac_http_request_cancel(ac_http_client *c) {
  if (!c || !c->pending)
    return;
  curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(c->curl, CURLOPT_CURLU, NULL);
  curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
  curl_slist_free_all(c->headers);
  curl_url_cleanup(c->url);
  c->headers = NULL;
  c->url = NULL;
  c->pending = 0;
}

int ac_http_request(ac_http_client *c, const ac_http_req *req, int64_t deadline_ms,
                    ac_http_response *resp, ac_err *err) {
  if (!c || !req || !resp)
    return ac_err_set(err, AC_ERR_DENIED, "denied: missing client, request or response");
  memset(resp, 0, sizeof *resp);
  int rc = ac_http_request_begin(c, req, deadline_ms, err);
  if (rc != AC_OK)
    return rc;
  return ac_http_request_finish(c, resp, err);
}
