/* test_http_client.c — the outbound HTTP client against a real local sink.
 * Every real request goes to loopback; other ranges are only checked on
 * socket addresses (test_addr_guard.c). */
#include "core/clock.h"
#include "http_sink.h"
#include "outbound/http_client.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- fixtures ----------------------------------------------------------- */

typedef struct fx {
  ac_sink *sink;
  ac_addr_guard *guard;
  ac_http_client *client;
  ac_counters *counters;
} fx;

static ac_http_client *client_with(const ac_addr_guard *g, ac_rate_limiter *rl,
                                   ac_counters *counters) {
  ac_http_client_config cfg = {.guard = g, .limiter = rl, .counters = counters};
  ac_http_client *c = NULL;
  ac_err err;
  if (ac_http_client_new(&cfg, &c, &err) != AC_OK)
    fail_msg("client: %s", err.msg);
  return c;
}

static ac_addr_guard *guard_with(const char *allow) {
  ac_addr_guard *g = NULL;
  ac_err err;
  if (ac_addr_guard_new(allow, &g, &err) != AC_OK)
    fail_msg("guard: %s", err.msg);
  return g;
}

/* A sink on 127.0.0.1 and a client allowed to reach 127.0.0.0/8. */
static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  f->sink = ac_sink_start();
  if (!f->sink)
    return -1;
  f->guard = guard_with("127.0.0.0/8");
  f->counters = ac_counters_new(AC_HTTP_COUNT_SLOTS);
  f->client = client_with(f->guard, NULL, f->counters);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  ac_http_client_free(f->client);
  ac_addr_guard_free(f->guard);
  ac_counters_free(f->counters);
  ac_sink_stop(f->sink);
  free(f);
  return 0;
}

/* Builds "<sink url><path>" or a URL on the sink's port with another host. */
static const char *url_at(fx *f, const char *path, char *buf, size_t n) {
  snprintf(buf, n, "%s%s", ac_sink_url(f->sink), path);
  return buf;
}

static const char *host_url(fx *f, const char *host, char *buf, size_t n) {
  snprintf(buf, n, "http://%s:%u/", host, ac_sink_port(f->sink));
  return buf;
}

static int64_t soon(void) { return ac_clock_mono_ms() + 5000; }

static int get(ac_http_client *c, const char *url, ac_http_response *resp, ac_err *err) {
  ac_http_req req = {.method = "GET", .url = url, .plugin_id = "test", .namespace_id = "ns"};
  return ac_http_request(c, &req, soon(), resp, err);
}

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ipv6_loopback_works(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

/* ---- address guard through the real client ------------------------------ */

/* Hosts that all mean 127.0.0.1 (or ::1) to the resolver or the kernel. */
static const char *const LOOPBACK_HOSTS[] = {
    "127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "127.0.1",
    "0x7f.0.0.1", "localhost", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]",
    "[::127.0.0.1]", "[64:ff9b::127.0.0.1]",
};

static void test_loopback_spellings_denied(void **state) {
  fx *f = *state;
  ac_addr_guard *g = guard_with(NULL);
  ac_http_client *c = client_with(g, NULL, f->counters);
  for (size_t i = 0; i < sizeof LOOPBACK_HOSTS / sizeof *LOOPBACK_HOSTS; i++) {
    char url[128];
    host_url(f, LOOPBACK_HOSTS[i], url, sizeof url);
    ac_http_response resp;
    ac_err err = {0};
    int rc = get(c, url, &resp, &err);
    if (rc != AC_ERR_DENIED || !starts_with(err.msg, "denied: address ") ||
        !strstr(err.msg, "is loopback"))
      fail_msg("%s: rc %d \"%s\"", url, rc, err.msg);
    assert_null(resp.headers);
  }
  assert_int_equal(ac_sink_count(f->sink), 0);
  assert_int_equal(ac_sink_connections(f->sink), 0);
  assert_int_equal(ac_counters_get(f->counters, "test", AC_HTTP_COUNT_DENIED),
                   sizeof LOOPBACK_HOSTS / sizeof *LOOPBACK_HOSTS);
  ac_http_client_free(c);
  ac_addr_guard_free(g);
}

static void test_exact_denied_message(void **state) {
  fx *f = *state;
  ac_addr_guard *g = guard_with("");
  ac_http_client *c = client_with(g, NULL, NULL);
  char url[128];
  ac_http_response resp;
  ac_err err;
  assert_int_equal(get(c, host_url(f, "2130706433", url, sizeof url), &resp, &err),
                   AC_ERR_DENIED);
  assert_string_equal(err.msg, "denied: address 127.0.0.1 is loopback");
  assert_int_equal(err.code, AC_ERR_DENIED);
  ac_http_client_free(c);
  ac_addr_guard_free(g);
}

/* With 127.0.0.0/8 allowed, the IPv4 spellings reach the sink; ::1 does not. */
static void test_loopback_spellings_allowed(void **state) {
  fx *f = *state;
  size_t expect = 0;
  for (size_t i = 0; i < sizeof LOOPBACK_HOSTS / sizeof *LOOPBACK_HOSTS; i++) {
    const char *h = LOOPBACK_HOSTS[i];
    int is_v6_only = strcmp(h, "[::1]") == 0;
    int needs_v6 = h[0] == '[';
    if (needs_v6 && !is_v6_only && !ipv6_loopback_works())
      continue;
    if (strcmp(h, "[::127.0.0.1]") == 0 || strcmp(h, "[64:ff9b::127.0.0.1]") == 0)
      continue; /* allowed by the guard but not routed to 127.0.0.1 here */
    char url[128];
    host_url(f, h, url, sizeof url);
    ac_http_response resp;
    ac_err err = {0};
    int rc = get(f->client, url, &resp, &err);
    if (is_v6_only) {
      if (rc != AC_ERR_DENIED)
        fail_msg("%s: rc %d \"%s\"", url, rc, err.msg);
      assert_string_equal(err.msg, "denied: address ::1 is loopback");
      continue;
    }
    if (rc != AC_OK)
      fail_msg("%s: rc %d \"%s\"", url, rc, err.msg);
    assert_int_equal(resp.status, 200);
    assert_memory_equal(resp.body, "ok", 3);
    ac_http_response_free(&resp);
    expect++;
  }
  assert_int_equal(ac_sink_count(f->sink), expect);
  assert_int_equal(ac_counters_get(f->counters, "test", AC_HTTP_COUNT_OK), expect);
}

/* An allow list naming 127.0.0.0/8 does not open 10/8 or link-local. */
static void test_allow_list_is_narrow(void **state) {
  fx *f = *state;
  struct sockaddr_in a = {.sin_family = AF_INET};
  char why[128];
  inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
  assert_int_equal(ac_addr_guard_check(f->guard, (struct sockaddr *)&a, why, sizeof why),
                   AC_ERR_DENIED);
  assert_string_equal(why, "address 10.0.0.1 is private");
  inet_pton(AF_INET, "169.254.169.254", &a.sin_addr);
  assert_int_equal(ac_addr_guard_check(f->guard, (struct sockaddr *)&a, why, sizeof why),
                   AC_ERR_DENIED);
}

static void test_ipv6_sink(void **state) {
  (void)state;
  if (!ipv6_loopback_works())
    skip();
  ac_sink *s = ac_sink_start_on("::1");
  assert_non_null(s);
  assert_true(starts_with(ac_sink_url(s), "http://[::1]:"));
  ac_addr_guard *g = guard_with("::1/128");
  ac_http_client *c = client_with(g, NULL, NULL);
  ac_http_response resp;
  ac_err err = {0};
  if (get(c, ac_sink_url(s), &resp, &err) != AC_OK)
    fail_msg("%s", err.msg);
  assert_int_equal(resp.status, 200);
  ac_http_response_free(&resp);
  ac_http_client_free(c);
  ac_addr_guard_free(g);
  /* Without the allow list the same request is refused. */
  g = guard_with("127.0.0.0/8");
  c = client_with(g, NULL, NULL);
  assert_int_equal(get(c, ac_sink_url(s), &resp, &err), AC_ERR_DENIED);
  assert_string_equal(err.msg, "denied: address ::1 is loopback");
  assert_int_equal(ac_sink_count(s), 1);
  ac_http_client_free(c);
  ac_addr_guard_free(g);
  ac_sink_stop(s);
}

/* ---- policy: redirects, schemes, methods, headers ------------------------ */

static void test_redirect_not_followed(void **state) {
  fx *f = *state;
  char loc[128], url[128];
  snprintf(loc, sizeof loc, "%s/elsewhere", ac_sink_url(f->sink));
  ac_sink_push(f->sink, (ac_sink_response){.status = 302,
                                           .headers = {"Location", loc},
                                           .body = "moved"});
  ac_http_response resp;
  ac_err err;
  assert_int_equal(get(f->client, url_at(f, "/start", url, sizeof url), &resp, &err), AC_OK);
  assert_int_equal(resp.status, 302);
  assert_string_equal(json_string_value(json_object_get(resp.headers, "location")), loc);
  assert_string_equal(resp.body, "moved");
  ac_http_response_free(&resp);
  ac_clock_sleep_ms(100);
  assert_int_equal(ac_sink_count(f->sink), 1);
  ac_sink_request r;
  assert_int_equal(ac_sink_request_get(f->sink, 0, &r), AC_OK);
  assert_string_equal(r.target, "/start");
  ac_sink_request_free(&r);
}

static void test_refused_before_sending(void **state) {
  fx *f = *state;
  char good[128], big[200];
  url_at(f, "/x", good, sizeof good);
  static ac_http_header crlf[] = {{"X-A", "a\r\nb"}};
  static ac_http_header lf[] = {{"X-A", "a\nInjected: 1"}};
  static ac_http_header space_name[] = {{"Bad Name", "v"}};
  static ac_http_header colon_name[] = {{"X-A:", "v"}};
  static ac_http_header empty_name[] = {{"", "v"}};
  static ac_http_header clen[] = {{"Content-Length", "5"}};
  static ac_http_header te[] = {{"transfer-encoding", "chunked"}};
  static ac_http_header conn[] = {{"Connection", "close"}};
  static ac_http_header ctl[] = {{"X-A", "a\x01"}};
  snprintf(big, sizeof big, "%s", good);
  static char huge_value[AC_HTTP_MAX_HEADER_BYTES];
  memset(huge_value, 'v', sizeof huge_value - 1);
  ac_http_header too_big[] = {{"X-A", huge_value}};
  ac_http_header many[AC_HTTP_MAX_HEADERS + 1];
  for (size_t i = 0; i < AC_HTTP_MAX_HEADERS + 1; i++)
    many[i] = (ac_http_header){"X-N", "1"};
  struct {
    ac_http_req req;
    const char *msg; /* expected message prefix */
  } cases[] = {
      {{.url = "file:///etc/passwd"}, "denied: scheme \"file\" is not allowed"},
      {{.url = "gopher://127.0.0.1:70/"}, "denied: scheme \"gopher\" is not allowed"},
      {{.url = "ftp://127.0.0.1/"}, "denied: scheme \"ftp\" is not allowed"},
      {{.url = "dict://127.0.0.1/"}, "denied: scheme \"dict\" is not allowed"},
      {{.url = "ldap://127.0.0.1/"}, "denied: scheme \"ldap\" is not allowed"},
      {{.url = "not a url"}, "denied: invalid URL"},
      {{.url = "http://"}, "denied: invalid URL"},
      {{.url = ""}, "denied: missing URL"},
      {{.url = NULL}, "denied: missing URL"},
      {{.url = good, .method = "FOO"}, "denied: method \"FOO\" is not allowed"},
      {{.url = good, .method = "CONNECT"}, "denied: method \"CONNECT\" is not allowed"},
      {{.url = good, .method = "TRACE"}, "denied: method \"TRACE\" is not allowed"},
      {{.url = good, .method = "GET\r\nX"}, "denied: method"},
      {{.url = good, .headers = crlf, .header_count = 1}, "denied: value of header \"X-A\""},
      {{.url = good, .headers = lf, .header_count = 1}, "denied: value of header \"X-A\""},
      {{.url = good, .headers = ctl, .header_count = 1}, "denied: value of header \"X-A\""},
      {{.url = good, .headers = space_name, .header_count = 1},
       "denied: header name \"Bad Name\" is not an HTTP token"},
      {{.url = good, .headers = colon_name, .header_count = 1}, "denied: header name"},
      {{.url = good, .headers = empty_name, .header_count = 1}, "denied: empty header name"},
      {{.url = good, .headers = clen, .header_count = 1},
       "denied: header \"Content-Length\" is set by the HTTP client"},
      {{.url = good, .headers = te, .header_count = 1}, "denied: header \"transfer-encoding\""},
      {{.url = good, .headers = conn, .header_count = 1}, "denied: header \"Connection\""},
      {{.url = good, .headers = too_big, .header_count = 1},
       "denied: request headers exceed 65536 bytes"},
      {{.url = good, .headers = many, .header_count = AC_HTTP_MAX_HEADERS + 1},
       "denied: more than 100 request headers"},
      {{.url = good, .method = "HEAD", .body = "x", .body_len = 1},
       "denied: a HEAD request has no body"},
      {{.url = good, .timeout_ms = -1}, "denied: negative timeout"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ac_http_response resp;
    ac_err err = {0};
    int rc = ac_http_request(f->client, &cases[i].req, soon(), &resp, &err);
    if (rc != AC_ERR_DENIED || !starts_with(err.msg, cases[i].msg))
      fail_msg("case %zu: rc %d \"%s\", want \"%s...\"", i, rc, err.msg, cases[i].msg);
    assert_null(resp.body);
  }
  assert_int_equal(ac_sink_count(f->sink), 0);
  assert_int_equal(ac_sink_connections(f->sink), 0);
}

/* Counted strings: an embedded NUL (possible in a Lua string) is refused. */
static void test_check_header_counted(void **state) {
  (void)state;
  ac_err err;
  assert_int_equal(ac_http_check_header("X-A", 3, "a\0b", 3, &err), AC_ERR_DENIED);
  assert_true(starts_with(err.msg, "denied: value of header"));
  assert_int_equal(ac_http_check_header("X\0A", 3, "v", 1, &err), AC_ERR_DENIED);
  assert_int_equal(ac_http_check_header("X-Ok_1.~", 8, "tab\there \xc3\xa9", 11, &err), AC_OK);
  assert_int_equal(ac_http_check_header("X-Empty", 7, "", 0, &err), AC_OK);
}

/* ---- what arrives, what comes back ------------------------------------- */

static void test_methods(void **state) {
  fx *f = *state;
  static const struct {
    const char *method, *sent, *body;
  } cases[] = {
      {"GET", "GET", NULL},          {"get", "GET", NULL},
      {NULL, "GET", NULL},           {"POST", "POST", "p"},
      {"POST", "POST", NULL},        {"PUT", "PUT", "u"},
      {"PATCH", "PATCH", "pa"},      {"DELETE", "DELETE", NULL},
      {"DELETE", "DELETE", "d"},     {"HEAD", "HEAD", NULL},
      {"OPTIONS", "OPTIONS", NULL},  {"GET", "GET", "g"},
  };
  char url[128];
  url_at(f, "/m", url, sizeof url);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ac_http_req req = {.method = cases[i].method, .url = url, .body = cases[i].body,
                       .body_len = cases[i].body ? strlen(cases[i].body) : 0};
    ac_http_response resp;
    ac_err err = {0};
    if (ac_http_request(f->client, &req, soon(), &resp, &err) != AC_OK)
      fail_msg("%s: %s", cases[i].sent, err.msg);
    assert_int_equal(resp.status, 200);
    /* HEAD gets headers only. */
    assert_int_equal(resp.body_len, strcmp(cases[i].sent, "HEAD") == 0 ? 0 : 2);
    assert_non_null(resp.body);
    ac_http_response_free(&resp);
    ac_sink_request r;
    assert_int_equal(ac_sink_request_get(f->sink, i, &r), AC_OK);
    assert_string_equal(r.method, cases[i].sent);
    const char *b = cases[i].body ? cases[i].body : "";
    assert_int_equal(r.body_len, strlen(b));
    assert_memory_equal(r.body, b, r.body_len);
    /* A body always has a length; POST/PUT/PATCH say 0 when empty. */
    const char *cl = ac_sink_header_get(&r, "content-length");
    if (cases[i].body || !strcmp(cases[i].sent, "POST"))
      assert_non_null(cl);
    if (cl)
      assert_int_equal(atoi(cl), (int)strlen(b));
    ac_sink_request_free(&r);
  }
}

static void test_bytes_exact(void **state) {
  fx *f = *state;
  static const char body[] = "line1\r\nline2\n\0nul\xff\xfe end ";
  size_t body_len = sizeof body - 1;
  ac_http_header hdrs[] = {
      {"X-Plain", "value"},
      {"X-Spaces", "a  b\tc"},
      {"X-Utf8", "\xc3\xa9t\xc3\xa9"},
      {"X-Empty", ""},
      {"X-Rep", "one"},
      {"X-Rep", "two"},
      {"Content-Type", "application/octet-stream"},
      {"User-Agent", "custom-agent/1"},
  };
  char url[256];
  url_at(f, "/p/a%20b/%2F?x=1&y=%C3%A9&z", url, sizeof url);
  ac_http_req req = {.method = "POST", .url = url, .headers = hdrs,
                     .header_count = sizeof hdrs / sizeof *hdrs,
                     .body = body, .body_len = body_len};
  ac_http_response resp;
  ac_err err = {0};
  if (ac_http_request(f->client, &req, soon(), &resp, &err) != AC_OK)
    fail_msg("%s", err.msg);
  ac_http_response_free(&resp);
  ac_sink_request r;
  assert_int_equal(ac_sink_request_get(f->sink, 0, &r), AC_OK);
  assert_string_equal(r.method, "POST");
  assert_string_equal(r.target, "/p/a%20b/%2F?x=1&y=%C3%A9&z");
  assert_int_equal(r.body_len, body_len);
  assert_memory_equal(r.body, body, body_len);
  assert_string_equal(ac_sink_header_get(&r, "x-plain"), "value");
  assert_string_equal(ac_sink_header_get(&r, "x-spaces"), "a  b\tc");
  assert_string_equal(ac_sink_header_get(&r, "x-utf8"), "\xc3\xa9t\xc3\xa9");
  assert_string_equal(ac_sink_header_get(&r, "x-empty"), "");
  assert_string_equal(ac_sink_header_get(&r, "content-type"), "application/octet-stream");
  assert_string_equal(ac_sink_header_get(&r, "user-agent"), "custom-agent/1");
  int reps = 0;
  for (size_t i = 0; i < r.header_count; i++)
    if (!strcmp(r.headers[i].name, "x-rep"))
      assert_string_equal(r.headers[i].value, reps++ ? "two" : "one");
  assert_int_equal(reps, 2);
  assert_null(ac_sink_header_get(&r, "expect"));
  ac_sink_request_free(&r);

  /* Without a stated type no form type is invented; the agent is ours. */
  ac_http_req plain = {.method = "POST", .url = url, .body = "{}", .body_len = 2};
  assert_int_equal(ac_http_request(f->client, &plain, soon(), &resp, &err), AC_OK);
  ac_http_response_free(&resp);
  assert_int_equal(ac_sink_request_get(f->sink, 1, &r), AC_OK);
  assert_null(ac_sink_header_get(&r, "content-type"));
  assert_true(starts_with(ac_sink_header_get(&r, "user-agent"), "AgentCore/"));
  ac_sink_request_free(&r);
}

/* Headers just under the 64 KiB cap are sent whole. */
static void test_large_headers_sent(void **state) {
  fx *f = *state;
  static char value[60000];
  memset(value, 'h', sizeof value - 1);
  ac_http_header hdrs[] = {{"X-Big", value}};
  char url[128];
  ac_http_req req = {.url = url_at(f, "/", url, sizeof url), .headers = hdrs,
                     .header_count = 1};
  ac_http_response resp;
  ac_err err = {0};
  if (ac_http_request(f->client, &req, soon(), &resp, &err) != AC_OK)
    fail_msg("%s", err.msg);
  assert_int_equal(resp.status, 200);
  ac_http_response_free(&resp);
  ac_sink_request r;
  assert_int_equal(ac_sink_request_get(f->sink, 0, &r), AC_OK);
  assert_int_equal(strlen(ac_sink_header_get(&r, "x-big")), sizeof value - 1);
  ac_sink_request_free(&r);
}

static void test_response_shape(void **state) {
  fx *f = *state;
  static const char body[] = "{\"a\":1}\0tail";
  ac_sink_push(f->sink, (ac_sink_response){
                            .status = 418,
                            .headers = {"X-Rep", "a", "X-Rep", "b", "Content-Type",
                                        "application/json", "X-Latin", "caf\xe9"},
                            .body = body,
                            .body_len = sizeof body - 1});
  char url[128];
  ac_http_response resp;
  ac_err err = {0};
  if (get(f->client, url_at(f, "/", url, sizeof url), &resp, &err) != AC_OK)
    fail_msg("%s", err.msg);
  assert_int_equal(resp.status, 418);
  assert_int_equal(resp.body_len, sizeof body - 1);
  assert_memory_equal(resp.body, body, sizeof body - 1);
  assert_int_equal(resp.body[resp.body_len], '\0');
  assert_string_equal(json_string_value(json_object_get(resp.headers, "x-rep")), "a, b");
  assert_string_equal(json_string_value(json_object_get(resp.headers, "content-type")),
                      "application/json");
  /* Not UTF-8: read as Latin-1. */
  assert_string_equal(json_string_value(json_object_get(resp.headers, "x-latin")),
                      "caf\xc3\xa9");
  assert_non_null(json_object_get(resp.headers, "content-length"));
  assert_null(json_object_get(resp.headers, "Content-Type"));
  /* 5xx is a response, not an error. */
  ac_http_response_free(&resp);
  ac_sink_push(f->sink, (ac_sink_response){.status = 503, .body = "down"});
  assert_int_equal(get(f->client, url, &resp, &err), AC_OK);
  assert_int_equal(resp.status, 503);
  ac_http_response_free(&resp);
  ac_http_response_free(&resp); /* freeing twice is harmless */
  ac_http_response_free(NULL);
}

/* ---- time ---------------------------------------------------------------- */

static void test_deadline_against_hanging_sink(void **state) {
  fx *f = *state;
  ac_sink_push(f->sink, (ac_sink_response){.hang = 1});
  char url[128];
  ac_http_req req = {.url = url_at(f, "/hang", url, sizeof url), .plugin_id = "test"};
  ac_http_response resp;
  ac_err err = {0};
  int64_t t0 = ac_clock_mono_ms();
  int rc = ac_http_request(f->client, &req, t0 + 300, &resp, &err);
  int64_t took = ac_clock_mono_ms() - t0;
  assert_int_equal(rc, AC_ERR_TIMEOUT);
  assert_int_equal(err.code, AC_ERR_TIMEOUT);
  assert_true(starts_with(err.msg, "timeout: no response within "));
  assert_true(took > 250 && took < 1500);
  assert_int_equal(ac_sink_count(f->sink), 1); /* it did arrive */
  assert_int_equal(ac_counters_get(f->counters, "test", AC_HTTP_COUNT_TIMEOUT), 1);
  /* The client is still usable afterwards. */
  assert_int_equal(get(f->client, url, &resp, &err), AC_OK);
  ac_http_response_free(&resp);
}

static void test_timeout_ms_shorter_than_deadline(void **state) {
  fx *f = *state;
  ac_sink_push(f->sink, (ac_sink_response){.delay_ms = 3000});
  char url[128];
  ac_http_req req = {.url = url_at(f, "/slow", url, sizeof url), .timeout_ms = 200};
  ac_http_response resp;
  ac_err err = {0};
  int64_t t0 = ac_clock_mono_ms();
  assert_int_equal(ac_http_request(f->client, &req, t0 + 5000, &resp, &err), AC_ERR_TIMEOUT);
  int64_t took = ac_clock_mono_ms() - t0;
  assert_string_equal(err.msg, "timeout: no response within 200 ms");
  assert_true(took >= 150 && took < 1200);
}

static void test_delay_within_timeout(void **state) {
  fx *f = *state;
  ac_sink_push(f->sink, (ac_sink_response){.delay_ms = 150, .body = "late"});
  char url[128];
  ac_http_response resp;
  ac_err err = {0};
  assert_int_equal(get(f->client, url_at(f, "/", url, sizeof url), &resp, &err), AC_OK);
  assert_string_equal(resp.body, "late");
  ac_http_response_free(&resp);
}

static void test_deadline_already_passed(void **state) {
  fx *f = *state;
  char url[128];
  ac_http_req req = {.url = url_at(f, "/", url, sizeof url)};
  ac_http_response resp;
  ac_err err = {0};
  int64_t t0 = ac_clock_mono_ms();
  assert_int_equal(ac_http_request(f->client, &req, t0 - 1, &resp, &err), AC_ERR_TIMEOUT);
  assert_true(starts_with(err.msg, "timeout: "));
  assert_true(ac_clock_mono_ms() - t0 < 50);
  /* Even an invalid request reports the deadline first. */
  ac_http_req bad = {.url = "file:///x"};
  assert_int_equal(ac_http_request(f->client, &bad, t0, &resp, &err), AC_ERR_TIMEOUT);
  assert_int_equal(ac_sink_count(f->sink), 0);
}

/* ---- sizes --------------------------------------------------------------- */

static void test_request_body_cap(void **state) {
  fx *f = *state;
  char *body = malloc(AC_HTTP_MAX_BODY + 1);
  for (size_t i = 0; i < AC_HTTP_MAX_BODY + 1; i++)
    body[i] = (char)('a' + i % 26);
  char url[128];
  ac_http_req req = {.method = "POST", .url = url_at(f, "/big", url, sizeof url),
                     .body = body, .body_len = AC_HTTP_MAX_BODY + 1};
  ac_http_response resp;
  ac_err err = {0};
  assert_int_equal(ac_http_request(f->client, &req, soon(), &resp, &err), AC_ERR_DENIED);
  assert_true(starts_with(err.msg, "denied: request body of 1048577 bytes exceeds"));
  assert_int_equal(ac_sink_count(f->sink), 0);
  req.body_len = AC_HTTP_MAX_BODY;
  if (ac_http_request(f->client, &req, soon(), &resp, &err) != AC_OK)
    fail_msg("%s", err.msg);
  ac_http_response_free(&resp);
  ac_sink_request r;
  assert_int_equal(ac_sink_request_get(f->sink, 0, &r), AC_OK);
  assert_int_equal(r.body_len, AC_HTTP_MAX_BODY);
  assert_memory_equal(r.body, body, AC_HTTP_MAX_BODY);
  ac_sink_request_free(&r);
  free(body);
}

static void test_response_body_cap(void **state) {
  fx *f = *state;
  static const struct {
    size_t size;
    int chunked;
    int rc;
  } cases[] = {
      {AC_HTTP_MAX_BODY, 0, AC_OK},
      {AC_HTTP_MAX_BODY, 1, AC_OK},
      {AC_HTTP_MAX_BODY + 1, 0, AC_ERR_IO},  /* refused on Content-Length */
      {AC_HTTP_MAX_BODY + 1, 1, AC_ERR_IO},  /* refused while reading */
      {8 * AC_HTTP_MAX_BODY, 1, AC_ERR_IO},
  };
  char url[128];
  url_at(f, "/huge", url, sizeof url);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ac_sink_push(f->sink, (ac_sink_response){.huge_body = cases[i].size,
                                             .chunked = cases[i].chunked});
    ac_http_response resp;
    ac_err err = {0};
    int rc = get(f->client, url, &resp, &err);
    if (rc != cases[i].rc)
      fail_msg("case %zu: rc %d \"%s\"", i, rc, err.msg);
    if (rc == AC_OK) {
      assert_int_equal(resp.body_len, cases[i].size);
      assert_int_equal(resp.body[0], 'x');
      assert_int_equal(resp.body[resp.body_len - 1], 'x');
      ac_http_response_free(&resp);
    } else {
      assert_string_equal(err.msg, "transport: response body exceeds 1048576 bytes");
      assert_null(resp.body);
    }
  }
}

/* ---- connections, transport errors, environment ------------------------- */

static void test_connection_reuse(void **state) {
  fx *f = *state;
  char url[128];
  for (int i = 0; i < 3; i++) {
    ac_http_response resp;
    ac_err err = {0};
    assert_int_equal(get(f->client, url_at(f, "/r", url, sizeof url), &resp, &err), AC_OK);
    ac_http_response_free(&resp);
  }
  assert_int_equal(ac_sink_count(f->sink), 3);
  assert_int_equal(ac_sink_connections(f->sink), 1);
  ac_sink_request a, b;
  assert_int_equal(ac_sink_request_get(f->sink, 0, &a), AC_OK);
  assert_int_equal(ac_sink_request_get(f->sink, 2, &b), AC_OK);
  assert_int_equal(a.connection, 1);
  assert_int_equal(b.connection, 1);
  ac_sink_request_free(&a);
  ac_sink_request_free(&b);
  assert_int_equal(ac_sink_request_get(f->sink, 3, &a), AC_ERR_NOTFOUND);
}

/* A second client (another worker) has its own connections, and a client
 * whose guard refuses the address cannot ride on anyone's connection. */
static void test_reuse_is_per_client(void **state) {
  fx *f = *state;
  char url[128];
  url_at(f, "/", url, sizeof url);
  ac_http_response resp;
  ac_err err = {0};
  assert_int_equal(get(f->client, url, &resp, &err), AC_OK);
  ac_http_response_free(&resp);
  ac_addr_guard *g = guard_with(NULL);
  ac_http_client *strict = client_with(g, NULL, NULL);
  assert_int_equal(get(strict, url, &resp, &err), AC_ERR_DENIED);
  assert_int_equal(get(strict, url, &resp, &err), AC_ERR_DENIED);
  ac_http_client_free(strict);
  ac_addr_guard_free(g);
  assert_int_equal(ac_sink_count(f->sink), 1);
}

static void test_transport_error(void **state) {
  fx *f = *state;
  /* A bound but not listening port: the connection is refused. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/", ntohs(a.sin_port));
  ac_http_req req = {.url = url, .plugin_id = "test"};
  ac_http_response resp;
  ac_err err = {0};
  assert_int_equal(ac_http_request(f->client, &req, soon(), &resp, &err), AC_ERR_IO);
  assert_true(starts_with(err.msg, "transport: "));
  assert_int_equal(ac_counters_get(f->counters, "test", AC_HTTP_COUNT_TRANSPORT), 1);
  /* localhost: ::1 is refused by the guard, 127.0.0.1 is allowed but
   * closed; the failure is the connection, not the guard. */
  snprintf(url, sizeof url, "http://localhost:%u/", ntohs(a.sin_port));
  assert_int_equal(ac_http_request(f->client, &req, soon(), &resp, &err), AC_ERR_IO);
  assert_true(starts_with(err.msg, "transport: "));
  close(fd);
}

/* *_proxy variables must not route requests anywhere. */
static void test_proxy_env_ignored(void **state) {
  fx *f = *state;
  setenv("http_proxy", "http://127.0.0.1:9/", 1);
  setenv("HTTPS_PROXY", "http://127.0.0.1:9/", 1);
  setenv("ALL_PROXY", "http://127.0.0.1:9/", 1);
  setenv("all_proxy", "http://127.0.0.1:9/", 1);
  char url[128];
  ac_http_response resp;
  ac_err err = {0};
  int rc = get(f->client, url_at(f, "/via", url, sizeof url), &resp, &err);
  unsetenv("http_proxy");
  unsetenv("HTTPS_PROXY");
  unsetenv("ALL_PROXY");
  unsetenv("all_proxy");
  if (rc != AC_OK)
    fail_msg("%s", err.msg);
  ac_http_response_free(&resp);
  ac_sink_request r;
  assert_int_equal(ac_sink_request_get(f->sink, 0, &r), AC_OK);
  assert_string_equal(r.target, "/via"); /* a proxy would see an absolute URI */
  ac_sink_request_free(&r);
}

/* ---- rate limit through the client -------------------------------------- */

static void test_rate_limited(void **state) {
  fx *f = *state;
  ac_rate_limiter *rl = NULL;
  assert_int_equal(ac_rate_limiter_new(4.0, 1, 0, &rl, NULL), AC_OK); /* 250 ms a token */
  ac_http_client *c = client_with(f->guard, rl, f->counters);
  char url[128];
  ac_http_req req = {.url = url_at(f, "/rl", url, sizeof url), .plugin_id = "rp",
                     .namespace_id = "ns"};
  ac_http_response resp;
  ac_err err = {0};
  assert_int_equal(ac_http_request(c, &req, soon(), &resp, &err), AC_OK);
  ac_http_response_free(&resp);
  /* The next token is ~250 ms away: a 100 ms deadline cannot wait for it. */
  int64_t t0 = ac_clock_mono_ms();
  assert_int_equal(ac_http_request(c, &req, t0 + 100, &resp, &err), AC_ERR_LIMIT);
  assert_int_equal(err.code, AC_ERR_LIMIT);
  assert_true(starts_with(err.msg, "rate_limited: "));
  assert_true(ac_clock_mono_ms() - t0 < 50); /* refused at once, no sleeping */
  /* With time to spare it waits for the token. */
  t0 = ac_clock_mono_ms();
  assert_int_equal(ac_http_request(c, &req, t0 + 2000, &resp, &err), AC_OK);
  int64_t took = ac_clock_mono_ms() - t0;
  assert_true(took >= 150 && took < 1000);
  ac_http_response_free(&resp);
  /* Another namespace of the same plugin has its own bucket. */
  req.namespace_id = "other";
  t0 = ac_clock_mono_ms();
  assert_int_equal(ac_http_request(c, &req, t0 + 2000, &resp, &err), AC_OK);
  assert_true(ac_clock_mono_ms() - t0 < 150);
  ac_http_response_free(&resp);

  assert_int_equal(ac_sink_count(f->sink), 3);
  ac_counters *rc = ac_rate_limiter_counters(rl);
  assert_int_equal(ac_counters_get(rc, "rp", AC_RATE_COUNT_REFUSALS), 1);
  assert_int_equal(ac_counters_get(rc, "rp", AC_RATE_COUNT_WAITS), 1);
  assert_int_equal(ac_counters_get(f->counters, "rp", AC_HTTP_COUNT_OK), 3);
  assert_int_equal(ac_counters_get(f->counters, "rp", AC_HTTP_COUNT_RATE_LIMITED), 1);
  ac_http_client_free(c);
  ac_rate_limiter_free(rl);
}

/* Invalid requests do not spend rate tokens. */
static void test_refusal_spends_no_token(void **state) {
  fx *f = *state;
  ac_rate_limiter *rl = NULL;
  assert_int_equal(ac_rate_limiter_new(0.001, 1, 0, &rl, NULL), AC_OK);
  ac_http_client *c = client_with(f->guard, rl, NULL);
  ac_http_req bad = {.url = "ftp://127.0.0.1/", .plugin_id = "p", .namespace_id = "n"};
  ac_http_response resp;
  ac_err err = {0};
  for (int i = 0; i < 3; i++)
    assert_int_equal(ac_http_request(c, &bad, soon(), &resp, &err), AC_ERR_DENIED);
  char url[128];
  ac_http_req good = {.url = url_at(f, "/", url, sizeof url), .plugin_id = "p",
                      .namespace_id = "n"};
  assert_int_equal(ac_http_request(c, &good, soon(), &resp, &err), AC_OK);
  ac_http_response_free(&resp);
  ac_http_client_free(c);
  ac_rate_limiter_free(rl);
}

/* ---- the sink itself ------------------------------------------------------ */

static void test_sink_stop_while_hanging(void **state) {
  (void)state;
  ac_sink *s = ac_sink_start();
  assert_non_null(s);
  ac_sink_push(s, (ac_sink_response){.hang = 1});
  /* A raw client that sends a request and then just waits. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ac_sink_port(s)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  static const char req[] = "GET /h HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
  assert_int_equal(ac_sink_wait(s, 1, 2000), AC_OK);
  assert_int_equal(ac_sink_wait(s, 2, 50), AC_ERR_TIMEOUT);
  int64_t t0 = ac_clock_mono_ms();
  ac_sink_stop(s);
  assert_true(ac_clock_mono_ms() - t0 < 1000);
  close(fd);
  ac_sink_stop(NULL);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_loopback_spellings_denied),
      T(test_exact_denied_message),
      T(test_loopback_spellings_allowed),
      T(test_allow_list_is_narrow),
      cmocka_unit_test(test_ipv6_sink),
      T(test_redirect_not_followed),
      T(test_refused_before_sending),
      cmocka_unit_test(test_check_header_counted),
      T(test_methods),
      T(test_bytes_exact),
      T(test_large_headers_sent),
      T(test_response_shape),
      T(test_deadline_against_hanging_sink),
      T(test_timeout_ms_shorter_than_deadline),
      T(test_delay_within_timeout),
      T(test_deadline_already_passed),
      T(test_request_body_cap),
      T(test_response_body_cap),
      T(test_connection_reuse),
      T(test_reuse_is_per_client),
      T(test_transport_error),
      T(test_proxy_env_ignored),
      T(test_rate_limited),
      T(test_refusal_spends_no_token),
      cmocka_unit_test(test_sink_stop_while_hanging),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
