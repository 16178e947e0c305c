/* test_api_edge.c — the HTTP edge against a real server, over raw sockets:
 * framing that could smuggle a request or route a path as another is
 * refused with one well-formed answer; HEAD works on GET routes; method
 * labels are bounded; one client holding many slow connections cannot
 * keep another client out, and idle connections are closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/jwt.h"
#include "fixtures.h"
#include "server_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PER_CLIENT 64
#define FLOOD 200 /* from one address: more than its cap */

static ac_test_server srv;
static int teardown_failed;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state) {
  (void)state;
  char per_client[64];
  snprintf(per_client, sizeof per_client, "AGENTCORE_MAX_CONNS_PER_CLIENT=%d", PER_CLIENT);
  const char *env[] = {per_client, "AGENTCORE_IDLE_TIMEOUT_S=2", "AGENTCORE_EVENT_RATE=1",
                       "AGENTCORE_EVENT_BURST=3", NULL};
  return ac_test_server_start(&srv, "api_edge", env);
}

static int teardown(void **state) {
  (void)state;
  int rc = ac_test_server_stop(&srv);
  teardown_failed = rc != 0;
  return teardown_failed ? -1 : 0;
}

/* A connection to the server from source address `from` (127.0.0.x). */
static int connect_from(const char *from) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in src = {.sin_family = AF_INET};
  inet_pton(AF_INET, from, &src.sin_addr);
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
      connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads until the peer closes or wait_ms pass; returns the bytes read. */
static size_t read_all(int fd, char *buf, size_t size, int wait_ms) {
  size_t n = 0;
  long long end = now_ms() + wait_ms;
  while (n + 1 < size) {
    struct pollfd p = {fd, POLLIN, 0};
    long long left = end - now_ms();
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
      break;
    ssize_t got = recv(fd, buf + n, size - n - 1, 0);
    if (got <= 0)
      break;
    n += (size_t)got;
  }
  buf[n] = '\0';
  return n;
}

/* Sends raw bytes, returns the status of the answer and how many status
 * lines came back. */
static int raw_status(const char *bytes, size_t len, int *status_lines) {
  int fd = connect_from("127.0.0.1");
  assert_true(fd >= 0);
  assert_int_equal(send(fd, bytes, len, 0), (ssize_t)len);
  static char buf[65536];
  read_all(fd, buf, sizeof buf, 2000);
  close(fd);
  /* status lines start a response: at the start, or right after a line */
  *status_lines = strncmp(buf, "HTTP/1.", 7) == 0;
  for (const char *p = buf; (p = strstr(p, "\r\nHTTP/1.")); p++)
    (*status_lines)++;
  int status = 0;
  sscanf(buf, "HTTP/1.%*d %d", &status);
  return status;
}

static void framing_is_strict(void **state) {
  (void)state;
  static const struct {
    const char *name, *bytes;
    int status;
    int lines; /* status lines expected: one, except where noted */
  } cases[] = {
      {"Content-Length and Transfer-Encoding",
       "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
       400, 1},
      {"two Content-Length",
       "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, 1},
      /* libmicrohttpd 0.9.75 (Debian 12) refuses this itself, before the
       * engine sees the request, and writes its status line twice: the
       * answer is a 400 and the connection closes, but not one response */
      {"Content-Length not a number", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
       400, 2},
      {"unknown transfer coding", "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
       501, 1},
      {"chunked not last",
       "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501, 1},
      {"HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, 1},
      {"space before a colon",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400, 1},
      {"control byte in a value", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\001b\r\n\r\n", 400, 1},
      {"encoded NUL in the path", "GET /healthz%00/anything HTTP/1.1\r\nHost: x\r\n\r\n", 400, 1},
      {"a path that is not UTF-8", "GET /api/v1/namespaces/%ff%fe/events/x HTTP/1.1\r\nHost: x\r\n\r\n",
       400, 1},
      {"encoded slash in the path", "GET /api/v1/namespaces/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n", 400, 1},
      {"two Authorization headers",
       "GET /api/v1/plugins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
       400, 1},
      {"a plain GET", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, 1},
      {"HTTP/1.0 without Host", "GET /healthz HTTP/1.0\r\n\r\n", 200, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int lines = 0;
    int status = raw_status(cases[i].bytes, strlen(cases[i].bytes), &lines);
    int want_lines = cases[i].lines;
    if (status != cases[i].status || lines != want_lines)
      fail_msg("%s: status %d in %d status lines, want %d in %d", cases[i].name, status, lines,
               cases[i].status, want_lines);
  }
}

/* A malformed body is located (line, column, byte), never quoted: what
 * stands near the error may be a secret. */
static void malformed_json_is_not_quoted(void **state) {
  (void)state;
  char *admin = ac_test_token("admin", AC_PERM_MANAGE_NAMESPACES | AC_PERM_MANAGE_PLUGINS, 1, NULL,
                              600);
  assert_non_null(admin);
  ac_test_response res;
  assert_int_equal(ac_test_call(&srv, "POST", "/api/v1/departments", admin,
                                "{\"name\": sk-live-0123456789}", &res),
                   400);
  assert_non_null(res.body);
  assert_null(strstr(res.body, "sk-live"));
  assert_non_null(strstr(res.body, "line 1 column"));
  ac_test_response_free(&res);
  free(admin);
}

/* One namespace posting faster than its quota gets 429 with Retry-After;
 * another namespace's events are still accepted. */
static void event_quota_per_namespace(void **state) {
  (void)state;
  char *admin = ac_test_token("admin", AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS, 1, NULL,
                              600);
  assert_non_null(admin);
  ac_test_response res;
  assert_int_equal(ac_test_call(&srv, "POST", "/api/v1/departments", admin,
                                "{\"id\":\"q-dept\",\"name\":\"q\"}", &res),
                   201);
  ac_test_response_free(&res);
  const char *const ids[] = {"q-busy", "q-calm"};
  for (int i = 0; i < 2; i++) {
    char body[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"name\":\"q\",\"departmentId\":\"q-dept\"}",
             ids[i]);
    assert_int_equal(ac_test_call(&srv, "POST", "/api/v1/namespaces", admin, body, &res), 201);
    ac_test_response_free(&res);
  }
  const char event[] = "{\"type\":\"document.ready\",\"documentId\":\"d\"}";
  for (int i = 0; i < 3; i++) { /* the burst */
    assert_int_equal(
        ac_test_call(&srv, "POST", "/api/v1/namespaces/q-busy/events", admin, event, &res), 202);
    ac_test_response_free(&res);
  }
  assert_int_equal(
      ac_test_call(&srv, "POST", "/api/v1/namespaces/q-busy/events", admin, event, &res), 429);
  char retry[16];
  assert_non_null(ac_test_header(&res, "Retry-After", retry, sizeof retry));
  assert_string_equal(retry, "1");
  assert_true(ac_test_expect(&res, 429, "problem.json"));
  ac_test_response_free(&res);
  assert_int_equal(
      ac_test_call(&srv, "POST", "/api/v1/namespaces/q-calm/events", admin, event, &res), 202);
  ac_test_response_free(&res);
  /* a second later the bucket holds a token again */
  usleep(1100 * 1000);
  assert_int_equal(
      ac_test_call(&srv, "POST", "/api/v1/namespaces/q-busy/events", admin, event, &res), 202);
  ac_test_response_free(&res);
  free(admin);
}

static void head_works_on_get_routes(void **state) {
  (void)state;
  const char req[] = "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  int fd = connect_from("127.0.0.1");
  assert_true(fd >= 0);
  assert_int_equal(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
  char buf[4096];
  read_all(fd, buf, sizeof buf, 2000);
  close(fd);
  assert_non_null(strstr(buf, "HTTP/1.1 200"));
  const char *body = strstr(buf, "\r\n\r\n");
  assert_non_null(body);
  assert_string_equal(body + 4, ""); /* no body */
}

static void method_labels_are_bounded(void **state) {
  (void)state;
  for (int i = 0; i < 30; i++) {
    char req[128];
    int n = snprintf(req, sizeof req, "MADEUP%d /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", i);
    int lines;
    raw_status(req, (size_t)n, &lines);
  }
  ac_test_response res;
  assert_int_equal(ac_test_call(&srv, "GET", "/metrics", NULL, NULL, &res), 200);
  assert_null(strstr(res.body, "MADEUP"));
  assert_non_null(strstr(res.body, "method=\"other\""));
  ac_test_response_free(&res);
}

/* How many of the open connections the server has closed. */
static int count_closed(const int *fds, int n) {
  int closed = 0;
  for (int i = 0; i < n; i++) {
    if (fds[i] < 0)
      continue;
    struct pollfd p = {fds[i], POLLIN, 0};
    char b;
    if (poll(&p, 1, 0) == 1 && recv(fds[i], &b, 1, MSG_DONTWAIT) <= 0)
      closed++;
  }
  return closed;
}

/* One address opens more slow connections than its cap (each sends half a
 * request head and stops); another address is answered at once, and the
 * slow ones are closed after the idle timeout. */
static void one_client_cannot_keep_others_out(void **state) {
  (void)state;
  int fds[FLOOD], open_n = 0;
  for (int i = 0; i < FLOOD; i++) {
    fds[i] = connect_from("127.0.0.1");
    if (fds[i] >= 0) {
      send(fds[i], "GET /healthz HTTP/1.1\r\nHo", 25, MSG_NOSIGNAL);
      open_n++;
    }
  }
  usleep(300 * 1000);
  /* past the cap, connections are closed by the server at once */
  int refused = count_closed(fds, FLOOD);
  long long t0 = now_ms();
  const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  int other = connect_from("127.0.0.2");
  assert_true(other >= 0);
  assert_int_equal(send(other, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
  char buf[4096];
  read_all(other, buf, sizeof buf, 3000);
  close(other);
  long long took = now_ms() - t0;
  /* the slow ones: closed once the idle timeout (2 s) passed */
  usleep(3500 * 1000);
  int closed = count_closed(fds, FLOOD);
  for (int i = 0; i < FLOOD; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  fprintf(stderr, "  %d connections from one address, %d closed past its cap of %d; another "
          "address answered in %lld ms; %d closed after the idle timeout\n",
          open_n, refused, PER_CLIENT, took, closed);
  assert_non_null(strstr(buf, "HTTP/1.1 200"));
  assert_true(took < 1000);
  assert_true(refused >= open_n - PER_CLIENT);
  assert_int_equal(closed, open_n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(framing_is_strict),
      cmocka_unit_test(head_works_on_get_routes),
      cmocka_unit_test(malformed_json_is_not_quoted),
      cmocka_unit_test(event_quota_per_namespace),
      cmocka_unit_test(method_labels_are_bounded),
      cmocka_unit_test(one_client_cannot_keep_others_out),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  return failed || teardown_failed;
}
