/* test_http_loop.c — the HTTP event loop against a real local sink:
 * transfers run together, and one destination holds at most
 * max_per_host of them while other destinations are not affected. */
#include "core/clock.h"
#include "http_sink.h"
#include "outbound/http_loop.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int finished[8];

static void on_done(void *ud) {
  pthread_mutex_lock(&lock);
  finished[(intptr_t)ud] = 1;
  pthread_mutex_unlock(&lock);
}

/* 1 when transfer i was reported within ms. */
static int wait_done(int i, int ms) {
  int64_t until = ac_clock_mono_ms() + ms;
  pthread_mutex_lock(&lock);
  while (!finished[i] && ac_clock_mono_ms() < until) {
    pthread_mutex_unlock(&lock);
    ac_clock_sleep_ms(5);
    pthread_mutex_lock(&lock);
  }
  int done = finished[i];
  pthread_mutex_unlock(&lock);
  return done;
}

static ac_http_client *client(const ac_addr_guard *g) {
  ac_http_client_config cfg = {.guard = g};
  ac_http_client *c = NULL;
  ac_err err;
  if (ac_http_client_new(&cfg, &c, &err) != AC_OK)
    fail_msg("client: %s", err.msg);
  return c;
}

static void start(ac_http_loop *l, ac_http_client *c, const char *url, int i) {
  ac_http_req req = {.method = "GET", .url = url, .plugin_id = "test", .timeout_ms = 800};
  ac_err err = {0};
  if (ac_http_request_begin(c, &req, ac_clock_mono_ms() + 5000, &err) != AC_OK)
    fail_msg("begin: %s", err.msg);
  assert_int_equal(ac_http_loop_add(l, c, on_done, (void *)(intptr_t)i), AC_OK);
}

static void test_one_destination_holds_at_most_its_share(void **state) {
  (void)state;
  ac_sink *sink = ac_sink_start();
  assert_non_null(sink);
  ac_addr_guard *g = NULL;
  ac_err err = {0};
  assert_int_equal(ac_addr_guard_new("127.0.0.0/8", &g, &err), AC_OK);
  ac_http_loop *l = NULL;
  assert_int_equal(ac_http_loop_start(2, &l, &err), AC_OK);
  ac_http_client *c[5];
  for (int i = 0; i < 5; i++)
    c[i] = client(g);
  char url[128], other[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/hook", ac_sink_port(sink));
  snprintf(other, sizeof other, "http://localhost:%u/hook", ac_sink_port(sink));

  /* two transfers hang on the destination: it is full */
  ac_sink_push(sink, (ac_sink_response){.hang = 1});
  ac_sink_push(sink, (ac_sink_response){.hang = 1});
  start(l, c[0], url, 0);
  start(l, c[1], url, 1);
  assert_int_equal(ac_sink_wait(sink, 2, 2000), AC_OK);
  assert_int_equal(ac_http_loop_in_flight(l), 2);

  /* a third to it is refused at once, without reaching the receiver */
  int64_t t0 = ac_clock_mono_ms();
  start(l, c[2], url, 2);
  assert_true(wait_done(2, 2000));
  assert_true(ac_clock_mono_ms() - t0 < 500);
  ac_http_response resp;
  assert_int_equal(ac_http_request_finish(c[2], &resp, &err), AC_ERR_IO);
  char want[160];
  snprintf(want, sizeof want, "transport: too many requests in flight to 127.0.0.1:%u",
           ac_sink_port(sink));
  if (strncmp(err.msg, want, strlen(want)) != 0)
    fail_msg("got \"%s\"", err.msg);
  assert_int_equal(ac_sink_count(sink), 2);

  /* another destination is not affected */
  start(l, c[3], other, 3);
  assert_true(wait_done(3, 2000));
  assert_int_equal(ac_http_request_finish(c[3], &resp, &err), AC_OK);
  assert_int_equal(resp.status, 200);
  ac_http_response_free(&resp);

  /* once the hanging ones time out, the destination takes transfers again */
  assert_true(wait_done(0, 3000));
  assert_true(wait_done(1, 3000));
  for (int i = 0; i < 2; i++) {
    assert_int_equal(ac_http_request_finish(c[i], &resp, &err), AC_ERR_TIMEOUT);
  }
  start(l, c[4], url, 4);
  assert_true(wait_done(4, 2000));
  assert_int_equal(ac_http_request_finish(c[4], &resp, &err), AC_OK);
  assert_int_equal(resp.status, 200);
  ac_http_response_free(&resp);
  assert_int_equal(ac_http_loop_in_flight(l), 0);

  ac_http_loop_stop(l);
  for (int i = 0; i < 5; i++)
    ac_http_client_free(c[i]);
  ac_addr_guard_free(g);
  ac_sink_stop(sink);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_destination_holds_at_most_its_share),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
