/* test_hostflow_crash.c — nothing is lost when an instance dies: deliveries
 * in flight when `agentcore serve` is SIGKILLed are picked up by a new
 * instance on the same database once their leases expire; every event
 * reaches the receiver at least once with a stable webhook-id and ends ok. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hostflow_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS 8
#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)

/* short timeouts and leases so a lost lease comes back within seconds */
static const char *const env[] = {"AGENTCORE_HOOK_TIMEOUT_MS=1000",
                                  "AGENTCORE_HTTP_ALLOW_CIDRS=127.0.0.0/8", "AGENTCORE_LEASE_S=2",
                                  "AGENTCORE_WORKERS=4", NULL};

static ac_test_server first, second;
static char *admin;
static ac_sink *sink;

static int teardown_failed;

static int setup(void **state) {
  (void)state;
  sink = ac_sink_start();
  if (!sink || ac_test_server_start(&first, "hostflow_crash", env) != 0)
    return -1;
  admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 3600);
  char cfg[512];
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/crash\"}", ac_sink_url(sink));
  if (!admin || ac_hostflow_tenant(&first, admin, "crash", "crash-ns") ||
      ac_hostflow_enable(&first, admin, "crash-ns", "webhooks", cfg))
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  int rc = ac_test_server_stop(&second); /* the process only */
  ac_test_server_stop(&first);           /* drops the database */
  ac_sink_stop(sink);
  /* a server that did not exit cleanly (ASan reports included) fails the
   * program: cmocka does not count a failed group teardown */
  teardown_failed = rc != 0;
  if (teardown_failed)
    fprintf(stderr, "agentcore serve exited with status %d\n", rc);
  return teardown_failed ? -1 : 0;
}

static void killed_instance_loses_nothing(void **state) {
  (void)state;
  /* slow answers (well inside the call's time) keep deliveries in flight */
  for (int i = 0; i < 4 * EVENTS; i++)
    ac_sink_push(sink, (ac_sink_response){.status = 200, .delay_ms = 400});
  char *ids[EVENTS];
  for (int i = 0; i < EVENTS; i++) {
    char body[128];
    snprintf(body, sizeof body, "{\"type\":\"approval.created\",\"approvalId\":\"c-%d\"}", i);
    long st = 0;
    ids[i] = ac_hostflow_emit(&first, admin, "crash-ns", body, &st);
    assert_non_null(ids[i]);
    assert_int_equal(st, 202);
  }
  assert_int_equal(ac_sink_wait(sink, 2, 5000), AC_OK);
  ac_hostflow_kill(&first);
  /* deliveries run concurrently, so every request may have reached the
   * receiver already; each is still waiting on its 400 ms answer, and the
   * ones cut off come again below (twice >= 1) */

  assert_int_equal(ac_hostflow_spawn(&first, env, &second), 0);
  for (int i = 0; i < EVENTS; i++) {
    json_t *st = ac_hostflow_wait_done(&second, admin, "crash-ns", ids[i], 20000);
    json_t *run = ac_hostflow_run(st, "webhooks");
    if (!run || strcmp(json_string_value(json_object_get(st, "status")), "done") != 0 ||
        strcmp(json_string_value(json_object_get(run, "status")), "ok") != 0)
      fail_msg("event %d did not end ok after the restart", i);
    assert_true(json_integer_value(json_object_get(run, "attempts")) >= 1);
    json_decref(st);
  }

  /* at least once per event, recognisable by webhook-id; the deliveries cut
   * off by the kill came again with the same id */
  size_t n = ac_sink_count(sink);
  int seen[EVENTS] = {0};
  for (size_t i = 0; i < n; i++) {
    ac_sink_request r;
    assert_int_equal(ac_sink_request_get(sink, i, &r), AC_OK);
    const char *id = ac_sink_header_get(&r, "webhook-id");
    int matched = 0;
    for (int k = 0; id && k < EVENTS; k++) {
      char want[128];
      snprintf(want, sizeof want, "msg_%s", ids[k]);
      if (strcmp(id, want) == 0) {
        seen[k]++;
        matched = 1;
      }
    }
    if (!matched)
      fail_msg("delivery %zu has webhook-id %s of no event", i, id ? id : "(none)");
    ac_sink_request_free(&r);
  }
  int twice = 0;
  for (int k = 0; k < EVENTS; k++) {
    if (seen[k] < 1)
      fail_msg("event %d was never delivered", k);
    twice += seen[k] > 1;
  }
  assert_true(twice >= 1);
  assert_true((int)n >= EVENTS + twice);
  for (int i = 0; i < EVENTS; i++)
    free(ids[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(killed_instance_loses_nothing),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  return failed || teardown_failed;
}
