/* test_hostflow_isolation.c — failing plugins never hold up the host flow:
 * a webhook receiver that hangs, a hook that raises, a hook that loops
 * forever and one stuck inside Lua's C pattern matcher all end as
 * retrying/error/timeout, while deliveries of other events to a healthy
 * receiver keep arriving promptly (real server, PostgreSQL and receivers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hostflow_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOOK_TIMEOUT_MS 1000
#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)

static const char *const plugins[] = {
    "hf_errors.lua",
    "return { id = \"hf-errors\", capabilities = { PluginCapability.ApprovalHook },\n"
    "  onApprovalCreated = function(event) error(\"deliberate failure for \" .. event.approvalId) end }\n",
    "hf_loops.lua",
    "return { id = \"hf-loops\", capabilities = { PluginCapability.ApprovalHook },\n"
    "  onApprovalCreated = function() while true do end end }\n",
    "hf_stuck.lua",
    "return { id = \"hf-stuck\", capabilities = { PluginCapability.ApprovalHook },\n"
    "  onApprovalCreated = function()\n"
    "    return { string.find(string.rep(\"a\", 400), \".-.-.-.-b\") } end }\n",
    /* table.sort compares strings with strcoll, in C: about 4 s on 8000
     * references to one 2 MiB string, with no count hook firing */
    "hf_sort.lua",
    "local big = string.rep(\"a\", 1 << 21)\n"
    "local t = {}\n"
    "for i = 1, 8000 do t[i] = big end\n"
    "return { id = \"hf-sort\", capabilities = { PluginCapability.ApprovalHook },\n"
    "  onApprovalCreated = function() table.sort(t) end }\n",
    "hf_quick.lua",
    "return { id = \"hf-quick\", capabilities = { PluginCapability.ApprovalHook },\n"
    "  onApprovalCreated = function(event) return { seen = event.approvalId } end }\n",
    "hf_quick2.lua",
    "return { id = \"hf-quick2\", capabilities = { PluginCapability.ApprovalHook },\n"
    "  onApprovalCreated = function() end }\n",
    "hf_quick3.lua",
    "return { id = \"hf-quick3\", capabilities = { PluginCapability.ApprovalHook },\n"
    "  onApprovalCreated = function() end }\n",
    "hf_again.lua",
    "return { id = \"hf-again\", capabilities = { PluginCapability.DocumentHook },\n"
    "  onDocumentReady = function(event, context) context.retry(\"not yet\", 0) end }\n",
    "hf_later.lua",
    "return { id = \"hf-later\", capabilities = { PluginCapability.DocumentHook },\n"
    "  onDocumentReady = function(event, context) context.retry(\"come back later\") end }\n",
    NULL,
};

#define DEAD_EVENTS 40

static ac_test_server srv;
static char *admin;
static char plugin_dir[256];
static ac_sink *hanging, *healthy, *dead;

static int teardown_failed;

static int setup(void **state) {
  (void)state;
  hanging = ac_sink_start();
  healthy = ac_sink_start();
  dead = ac_sink_start();
  if (!hanging || !healthy || !dead || ac_hostflow_plugin_dir(plugin_dir, sizeof plugin_dir, plugins))
    return -1;
  /* every request to this receiver hangs */
  for (int i = 0; i < 16; i++)
    ac_sink_push(hanging, (ac_sink_response){.hang = 1});
  for (int i = 0; i < 4 * DEAD_EVENTS; i++)
    ac_sink_push(dead, (ac_sink_response){.hang = 1});
  char dirs[300], timeout[64];
  snprintf(dirs, sizeof dirs, "AGENTCORE_PLUGIN_DIRS=%s", plugin_dir);
  snprintf(timeout, sizeof timeout, "AGENTCORE_HOOK_TIMEOUT_MS=%d", HOOK_TIMEOUT_MS);
  const char *env[] = {timeout, "AGENTCORE_HTTP_ALLOW_CIDRS=127.0.0.0/8", "AGENTCORE_LEASE_S=2",
                       "AGENTCORE_WORKERS=4", dirs, NULL};
  if (ac_test_server_start(&srv, "hostflow_isolation", env) != 0)
    return -1;
  admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 3600);
  if (!admin || ac_hostflow_tenant(&srv, admin, "iso", "iso-bad") ||
      ac_hostflow_tenant(&srv, admin, "iso", "iso-good"))
    return -1;
  char cfg[512];
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/hang\"}", ac_sink_url(hanging));
  if (ac_hostflow_enable(&srv, admin, "iso-bad", "webhooks", cfg) ||
      ac_hostflow_enable(&srv, admin, "iso-bad", "hf-errors", "{}") ||
      ac_hostflow_enable(&srv, admin, "iso-bad", "hf-loops", "{}") ||
      ac_hostflow_enable(&srv, admin, "iso-bad", "hf-stuck", "{}") ||
      ac_hostflow_enable(&srv, admin, "iso-bad", "hf-sort", "{}"))
    return -1;
  if (ac_hostflow_tenant(&srv, admin, "iso", "iso-many") ||
      ac_hostflow_enable(&srv, admin, "iso-many", "hf-quick", "{}") ||
      ac_hostflow_enable(&srv, admin, "iso-many", "hf-quick2", "{}") ||
      ac_hostflow_enable(&srv, admin, "iso-many", "hf-quick3", "{}") ||
      ac_hostflow_tenant(&srv, admin, "iso", "iso-retry") ||
      ac_hostflow_enable(&srv, admin, "iso-retry", "hf-again", "{}") ||
      ac_hostflow_enable(&srv, admin, "iso-retry", "hf-later", "{}"))
    return -1;
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/dead\"}", ac_sink_url(dead));
  if (ac_hostflow_tenant(&srv, admin, "iso", "iso-dead") ||
      ac_hostflow_enable(&srv, admin, "iso-dead", "webhooks", cfg))
    return -1;
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/ok\"}", ac_sink_url(healthy));
  return ac_hostflow_enable(&srv, admin, "iso-good", "webhooks", cfg);
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  int rc = ac_test_server_stop(&srv);
  ac_sink_stop(hanging);
  ac_sink_stop(healthy);
  ac_sink_stop(dead);
  ac_hostflow_plugin_dir_remove(plugin_dir, plugins);
  /* a server that did not exit cleanly (ASan reports included) fails the
   * program: cmocka does not count a failed group teardown */
  teardown_failed = rc != 0;
  if (teardown_failed)
    fprintf(stderr, "agentcore serve exited with status %d\n", rc);
  return teardown_failed ? -1 : 0;
}

static char *emit(const char *ns, const char *body) {
  long st = 0;
  char *id = ac_hostflow_emit(&srv, admin, ns, body, &st);
  if (!id || st != 202)
    fail_msg("POST events of %s: expected 202, got %ld", ns, st);
  return id;
}

/* Emits an event to the healthy namespace and checks its webhook arrives
 * within within_ms and its run ends ok. */
static void healthy_delivery(const char *body, size_t nth, long long within_ms) {
  long long t0 = ac_hostflow_now_ms();
  char *id = emit("iso-good", body);
  assert_int_equal(ac_sink_wait(healthy, nth, (int)within_ms), AC_OK);
  long long took = ac_hostflow_now_ms() - t0;
  if (took > within_ms)
    fail_msg("the healthy delivery took %lld ms", took);
  json_t *st = ac_hostflow_wait_done(&srv, admin, "iso-good", id, 5000);
  json_t *run = ac_hostflow_run(st, "webhooks");
  assert_string_equal(json_string_value(json_object_get(st, "status")), "done");
  assert_string_equal(json_string_value(json_object_get(run, "status")), "ok");
  assert_int_equal(json_integer_value(json_object_get(run, "attempts")), 1);
  json_decref(st);
  free(id);
}

/* 1 when every run except webhooks has a final status and webhooks retries. */
static int settled(const json_t *st) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(st, "runs"), i, r) {
    const char *s = json_string_value(json_object_get(r, "status"));
    if (!s || strcmp(s, "queued") == 0 || strcmp(s, "running") == 0)
      return 0;
  }
  return json_array_size(json_object_get(st, "runs")) == 5;
}

static void expect_run(const json_t *st, const char *plugin, const char *status,
                       const char *message_part) {
  json_t *run = ac_hostflow_run(st, plugin);
  if (!run)
    fail_msg("no run of %s", plugin);
  const char *s = json_string_value(json_object_get(run, "status"));
  const char *e = json_string_value(json_object_get(run, "error"));
  if (!s || strcmp(s, status) != 0 || !e || !strstr(e, message_part))
    fail_msg("%s: expected %s with \"%s\", got %s: %s", plugin, status, message_part,
             s ? s : "?", e ? e : "(no error)");
  /* each bad run was attempted once: none was claimed again under a lease */
  assert_int_equal(json_integer_value(json_object_get(run, "attempts")), 1);
  /* even a call stuck in C released its worker within the timeout + 1 s */
  json_int_t ms = json_integer_value(json_object_get(run, "durationMs"));
  if (ms > HOOK_TIMEOUT_MS + 1000)
    fail_msg("%s held its worker for %lld ms", plugin, (long long)ms);
}

/* A receiver that never answers costs its deliveries a socket each, not a
 * thread: with four dispatcher threads and four workers, forty deliveries
 * hanging on it leave another namespace's delivery as quick as ever. */
static void a_dead_receiver_holds_no_thread(void **state) {
  (void)state;
  for (int i = 0; i < DEAD_EVENTS; i++) {
    char body[128];
    snprintf(body, sizeof body, "{\"type\":\"approval.created\",\"approvalId\":\"dead-%d\"}", i);
    free(emit("iso-dead", body));
  }
  /* the dead receiver has them (or they wait for their rate token) */
  assert_int_equal(ac_sink_wait(dead, 10, 3000), AC_OK);
  size_t before = ac_sink_count(healthy);
  healthy_delivery("{\"type\":\"approval.created\",\"approvalId\":\"alive-1\"}", before + 1,
                   1000);
}

static void failures_do_not_block_others(void **state) {
  (void)state;
  char *bad = emit("iso-bad", "{\"type\":\"approval.created\",\"approvalId\":\"bad-1\"}");
  /* the bad event's four runs occupy the workers; a later event still goes */
  healthy_delivery("{\"type\":\"approval.created\",\"approvalId\":\"good-1\"}", 1,
                   HOOK_TIMEOUT_MS + 1000);

  json_t *st = NULL;
  long long end = ac_hostflow_now_ms() + 4 * HOOK_TIMEOUT_MS + 3000;
  while (ac_hostflow_now_ms() < end) {
    json_decref(st);
    st = ac_hostflow_event(&srv, admin, "iso-bad", bad, 1);
    if (settled(st))
      break;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  assert_true(settled(st));
  expect_run(st, "hf-errors", "error", "deliberate failure for bad-1");
  expect_run(st, "hf-loops", "timeout", "timeout");
  expect_run(st, "hf-stuck", "timeout", "timeout");
  expect_run(st, "hf-sort", "timeout", "timeout");
  /* the hanging receiver costs a socket, not a worker; whether the hook
   * then still had a worker of its namespace's share to ask for a retry
   * before its deadline (the other runs of this event hold that share)
   * decides between a retry and a timeout */
  const char *wh = json_string_value(json_object_get(ac_hostflow_run(st, "webhooks"), "status"));
  if (wh && strcmp(wh, "timeout") == 0) {
    expect_run(st, "webhooks", "timeout", "timeout");
  } else {
    expect_run(st, "webhooks", "retrying", "timeout");
    assert_true(json_is_string(json_object_get(ac_hostflow_run(st, "webhooks"), "nextAttemptAt")));
    assert_string_equal(json_string_value(json_object_get(st, "status")), "running");
  }
  json_decref(st);
  assert_int_equal(ac_sink_count(hanging), 1);

  /* the stuck call's thread is still busy in C: later events go on */
  healthy_delivery("{\"type\":\"document.ready\",\"documentId\":\"good-2\"}", 2, 1500);
  for (int i = 0; i < 3; i++) {
    char body[128];
    snprintf(body, sizeof body, "{\"type\":\"approval.created\",\"approvalId\":\"good-%d\"}", 3 + i);
    healthy_delivery(body, 3 + (size_t)i, 1500);
  }
  ac_test_response res;
  assert_int_equal(ac_test_call(&srv, "GET", "/readyz", NULL, NULL, &res), 200);
  ac_test_response_free(&res);
  free(bad);
}

/* Runs of one event that finish at the same moment on different workers
 * still leave the event done. */
static void simultaneous_runs_finish_the_event(void **state) {
  (void)state;
  enum { N = 24 };
  char *ids[N];
  for (int i = 0; i < N; i++) {
    char body[128];
    snprintf(body, sizeof body, "{\"type\":\"approval.created\",\"approvalId\":\"m-%d\"}", i);
    ids[i] = emit("iso-many", body);
  }
  for (int i = 0; i < N; i++) {
    json_t *st = ac_hostflow_wait_done(&srv, admin, "iso-many", ids[i], 8000);
    const char *status = json_string_value(json_object_get(st, "status"));
    if (!status || strcmp(status, "done") != 0) {
      char *dump = json_dumps(st, JSON_COMPACT);
      fail_msg("event %d stayed %s: %s", i, status ? status : "?", dump ? dump : "");
    }
    size_t k;
    json_t *run;
    json_array_foreach(json_object_get(st, "runs"), k, run) {
      assert_string_equal(json_string_value(json_object_get(run, "status")), "ok");
      assert_int_equal(json_integer_value(json_object_get(run, "attempts")), 1);
    }
    assert_int_equal(json_array_size(json_object_get(st, "runs")), 3);
    json_decref(st);
    free(ids[i]);
  }
}

/* Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS.mmmZ", or -1. */
static double rfc3339(const char *s) {
  struct tm tm = {0};
  int ms = 0;
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (double)timegm(&tm) + ms / 1000.0;
}

/* context.retry: a plugin's own delay (0) is honoured until the schedule's
 * eight retries are used up; without a delay the schedule's 5 s (+ up to
 * 10 % jitter) applies. */
static void retry_schedule(void **state) {
  (void)state;
  char *id = emit("iso-retry", "{\"type\":\"document.ready\",\"documentId\":\"r-1\"}");
  json_t *st = NULL, *again = NULL;
  long long end = ac_hostflow_now_ms() + 8000;
  while (ac_hostflow_now_ms() < end) {
    json_decref(st);
    st = ac_hostflow_event(&srv, admin, "iso-retry", id, 1);
    again = ac_hostflow_run(st, "hf-again");
    const char *s = json_string_value(json_object_get(again, "status"));
    json_t *later = ac_hostflow_run(st, "hf-later");
    const char *l = json_string_value(json_object_get(later, "status"));
    if (s && strcmp(s, "error") == 0 && l && strcmp(l, "retrying") == 0)
      break;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  assert_non_null(again);
  assert_string_equal(json_string_value(json_object_get(again, "status")), "error");
  assert_int_equal(json_integer_value(json_object_get(again, "attempts")), 9);
  assert_non_null(strstr(json_string_value(json_object_get(again, "error")), "not yet"));
  assert_true(json_is_null(json_object_get(again, "nextAttemptAt")));

  json_t *later = ac_hostflow_run(st, "hf-later");
  assert_string_equal(json_string_value(json_object_get(later, "status")), "retrying");
  assert_int_equal(json_integer_value(json_object_get(later, "attempts")), 1);
  assert_non_null(strstr(json_string_value(json_object_get(later, "error")), "come back later"));
  double created = rfc3339(json_string_value(json_object_get(st, "createdAt")));
  double next = rfc3339(json_string_value(json_object_get(later, "nextAttemptAt")));
  assert_true(created > 0 && next > 0);
  if (next - created < 5.0 || next - created > 5.5 + 2.0)
    fail_msg("the first retry is due %.3f s after the event", next - created);
  assert_string_equal(json_string_value(json_object_get(st, "status")), "running");
  json_decref(st);
  free(id);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_dead_receiver_holds_no_thread),
      cmocka_unit_test(failures_do_not_block_others),
      cmocka_unit_test(simultaneous_runs_finish_the_event),
      cmocka_unit_test(retry_schedule),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  return failed || teardown_failed;
}
