/* test_hostflow_webhooks.c — the host flow against the real server, the real
 * PostgreSQL and a real local receiver: webhooks for both event types with
 * the payload of docs/plugin-authoring.md and signatures checked here with OpenSSL, the events
 * filter, a 503 + Retry-After answer retried with the same webhook-id,
 * idempotency keys, event request errors, and the hook metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hostflow_fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)

/* whsec_ + base64 of 32 bytes 0x00..0x1f */
#define WHSEC "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define PLAIN_SECRET "plain secret: not base64 at all"
#define DATA "{\"amount\":1250,\"currency\":\"UAH\",\"path\":\"a/b\",\"tags\":[\"x\",\"y\"]," \
             "\"nested\":{\"ok\":true,\"n\":null}}"

static ac_test_server srv;
static char *admin;
static ac_sink *signed_sink, *filtered_sink, *retry_sink, *idem_sink, *gone_sink;

static int teardown_failed;

static int setup(void **state) {
  (void)state;
  signed_sink = ac_sink_start();
  filtered_sink = ac_sink_start();
  retry_sink = ac_sink_start();
  idem_sink = ac_sink_start();
  gone_sink = ac_sink_start();
  if (!signed_sink || !filtered_sink || !retry_sink || !idem_sink || !gone_sink)
    return -1;
  const char *env[] = {"AGENTCORE_HOOK_TIMEOUT_MS=2000", "AGENTCORE_HTTP_ALLOW_CIDRS=127.0.0.0/8",
                       "AGENTCORE_LEASE_S=5", NULL};
  if (ac_test_server_start(&srv, "hostflow_webhooks", env) != 0)
    return -1;
  admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 3600);
  if (!admin || ac_hostflow_tenant(&srv, admin, "hf", "hf-signed") ||
      ac_hostflow_tenant(&srv, admin, "hf", "hf-filtered") ||
      ac_hostflow_tenant(&srv, admin, "hf", "hf-retry") ||
      ac_hostflow_tenant(&srv, admin, "hf", "hf-idem") ||
      ac_hostflow_tenant(&srv, admin, "hf", "hf-none") ||
      ac_hostflow_tenant(&srv, admin, "hf", "hf-gone"))
    return -1;
  char cfg[1024];
  snprintf(cfg, sizeof cfg,
           "{\"url\":\"%s/hook?x=1\",\"secret\":\"" WHSEC "\",\"headers\":{\"X-Tenant\":\"acme\","
           "\"webhook-id\":\"forged\"}}",
           ac_sink_url(signed_sink));
  if (ac_hostflow_enable(&srv, admin, "hf-signed", "webhooks", cfg))
    return -1;
  snprintf(cfg, sizeof cfg,
           "{\"url\":\"%s/filtered\",\"secret\":\"" PLAIN_SECRET "\","
           "\"events\":[\"document.ready\"]}",
           ac_sink_url(filtered_sink));
  if (ac_hostflow_enable(&srv, admin, "hf-filtered", "webhooks", cfg))
    return -1;
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/retry\"}", ac_sink_url(retry_sink));
  if (ac_hostflow_enable(&srv, admin, "hf-retry", "webhooks", cfg))
    return -1;
  if (ac_hostflow_enable(&srv, admin, "hf-none", "opendatabot", "{}"))
    return -1;
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/gone\"}", ac_sink_url(gone_sink));
  if (ac_hostflow_enable(&srv, admin, "hf-gone", "webhooks", cfg))
    return -1;
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/idem\"}", ac_sink_url(idem_sink));
  return ac_hostflow_enable(&srv, admin, "hf-idem", "webhooks", cfg);
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  int rc = ac_test_server_stop(&srv);
  ac_sink_stop(signed_sink);
  ac_sink_stop(filtered_sink);
  ac_sink_stop(retry_sink);
  ac_sink_stop(idem_sink);
  ac_sink_stop(gone_sink);
  /* a server that did not exit cleanly (ASan reports included) fails the
   * program: cmocka does not count a failed group teardown */
  teardown_failed = rc != 0;
  if (teardown_failed)
    fprintf(stderr, "agentcore serve exited with status %d\n", rc);
  return teardown_failed ? -1 : 0;
}

static char *emit(const char *ns, const char *body, long want) {
  long st = 0;
  char *id = ac_hostflow_emit(&srv, admin, ns, body, &st);
  if (!id || st != want)
    fail_msg("POST events of %s: expected %ld, got %ld", ns, want, st);
  return id;
}

/* Waits for the event to finish and checks it ran webhooks once, ok. */
static json_t *expect_delivered_once(const char *ns, const char *id) {
  json_t *st = ac_hostflow_wait_done(&srv, admin, ns, id, 10000);
  assert_non_null(st);
  assert_string_equal(json_string_value(json_object_get(st, "status")), "done");
  json_decref(st);
  st = ac_hostflow_event(&srv, admin, ns, id, 1); /* checked against the schema */
  assert_non_null(st);
  assert_string_equal(json_string_value(json_object_get(st, "eventId")), id);
  assert_int_equal(json_array_size(json_object_get(st, "runs")), 1);
  json_t *run = ac_hostflow_run(st, "webhooks");
  assert_non_null(run);
  assert_string_equal(json_string_value(json_object_get(run, "status")), "ok");
  assert_int_equal(json_integer_value(json_object_get(run, "attempts")), 1);
  assert_true(json_is_integer(json_object_get(run, "durationMs")));
  assert_true(json_is_null(json_object_get(run, "error")));
  assert_true(json_is_null(json_object_get(run, "nextAttemptAt")));
  return st;
}

/* The received body is exactly the payload of docs/plugin-authoring.md: members in order,
 * occurredAt the event's createdAt, data as sent. */
static void expect_payload(const ac_sink_request *r, const char *type, const char *ref,
                           const char *ref_value, const char *ns, const char *occurred) {
  char prefix[1024];
  int n = snprintf(prefix, sizeof prefix,
                   "{\"event\":\"%s\",\"%s\":\"%s\",\"namespaceId\":\"%s\",\"occurredAt\":\"%s\","
                   "\"data\":",
                   type, ref, ref_value, ns, occurred);
  if (r->body_len <= (size_t)n || memcmp(r->body, prefix, (size_t)n) != 0 ||
      r->body[r->body_len - 1] != '}')
    fail_msg("payload %.*s does not start with %s", (int)r->body_len, r->body, prefix);
  json_t *data = json_loadb(r->body + n, r->body_len - (size_t)n - 1, JSON_REJECT_DUPLICATES, NULL);
  json_t *sent = json_loads(DATA, 0, NULL);
  assert_non_null(data);
  assert_true(json_equal(data, sent));
  json_decref(data);
  json_decref(sent);
  json_t *doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
  assert_non_null(doc);
  assert_int_equal(json_object_size(doc), 5);
  assert_true(ac_test_schema_valid(strcmp(type, "approval.created") == 0
                                       ? "webhook-approval-created.json"
                                       : "webhook-document-ready.json",
                                   doc));
  json_decref(doc);
}

/* The request of sink whose body names event type (at most one). */
static int find_request(ac_sink *sink, const char *type, ac_sink_request *out) {
  char needle[64];
  snprintf(needle, sizeof needle, "{\"event\":\"%s\"", type);
  int found = 0;
  for (size_t i = 0; i < ac_sink_count(sink); i++) {
    ac_sink_request r;
    assert_int_equal(ac_sink_request_get(sink, i, &r), AC_OK);
    if (strncmp(r.body, needle, strlen(needle)) == 0) {
      if (found++)
        ac_sink_request_free(out);
      *out = r;
    } else {
      ac_sink_request_free(&r);
    }
  }
  return found;
}

static void check_delivery(ac_sink *sink, const char *type, const char *ref, const char *ref_value,
                           const char *ns, const json_t *status, const char *secret,
                           const char *target) {
  ac_sink_request r;
  assert_int_equal(find_request(sink, type, &r), 1);
  assert_string_equal(r.method, "POST");
  assert_string_equal(r.target, target);
  assert_string_equal(ac_sink_header_get(&r, "content-type"), "application/json");
  const char *event_id = json_string_value(json_object_get(status, "eventId"));
  char want_id[128];
  snprintf(want_id, sizeof want_id, "msg_%s", event_id);
  assert_string_equal(ac_sink_header_get(&r, "webhook-id"), want_id);
  long long ts = strtoll(ac_sink_header_get(&r, "webhook-timestamp"), NULL, 10);
  assert_true(llabs(ts - (long long)time(NULL)) < 300);
  expect_payload(&r, type, ref, ref_value, ns,
                 json_string_value(json_object_get(status, "createdAt")));
  assert_true(ac_hostflow_signed_ok(&r, secret));
  ac_sink_request_free(&r);
}

static void webhooks_for_both_event_types(void **state) {
  (void)state;
  const char *approval = "{\"type\":\"approval.created\",\"approvalId\":\"appr-1\",\"data\":" DATA "}";
  const char *document = "{\"type\":\"document.ready\",\"documentId\":\"doc-7\",\"data\":" DATA "}";
  char *a1 = emit("hf-signed", approval, 202), *d1 = emit("hf-signed", document, 202);
  char *a2 = emit("hf-filtered", approval, 202), *d2 = emit("hf-filtered", document, 202);
  json_t *sa1 = expect_delivered_once("hf-signed", a1);
  json_t *sd1 = expect_delivered_once("hf-signed", d1);
  json_t *sa2 = expect_delivered_once("hf-filtered", a2); /* ok: filtered out, not an error */
  json_t *sd2 = expect_delivered_once("hf-filtered", d2);
  assert_string_equal(json_string_value(json_object_get(sa1, "type")), "approval.created");
  assert_string_equal(json_string_value(json_object_get(sd1, "type")), "document.ready");

  assert_int_equal(ac_sink_wait(signed_sink, 2, 5000), AC_OK);
  assert_int_equal(ac_sink_count(signed_sink), 2);
  check_delivery(signed_sink, "approval.created", "approvalId", "appr-1", "hf-signed", sa1, WHSEC,
                 "/hook?x=1");
  check_delivery(signed_sink, "document.ready", "documentId", "doc-7", "hf-signed", sd1, WHSEC,
                 "/hook?x=1");
  /* extra headers pass; the plugin's own names cannot be overridden */
  ac_sink_request r;
  assert_int_equal(ac_sink_request_get(signed_sink, 0, &r), AC_OK);
  assert_string_equal(ac_sink_header_get(&r, "x-tenant"), "acme");
  assert_string_not_equal(ac_sink_header_get(&r, "webhook-id"), "forged");
  ac_sink_request_free(&r);

  /* events filter: only document.ready reaches the second receiver */
  assert_int_equal(ac_sink_wait(filtered_sink, 1, 5000), AC_OK);
  assert_int_equal(ac_sink_count(filtered_sink), 1);
  check_delivery(filtered_sink, "document.ready", "documentId", "doc-7", "hf-filtered", sd2,
                 PLAIN_SECRET, "/filtered");
  json_decref(sa1);
  json_decref(sd1);
  json_decref(sa2);
  json_decref(sd2);
  free(a1);
  free(d1);
  free(a2);
  free(d2);
}

static void retry_after_then_ok(void **state) {
  (void)state;
  ac_sink_push(retry_sink, (ac_sink_response){.status = 503,
                                              .headers = {"Retry-After", "1"},
                                              .body = "busy"});
  char *id = emit("hf-retry", "{\"type\":\"approval.created\",\"approvalId\":\"r-1\"}", 202);
  assert_int_equal(ac_sink_wait(retry_sink, 1, 5000), AC_OK);
  long long first = ac_hostflow_now_ms();

  /* between the attempts the run is retrying, with its next attempt time */
  json_t *st = NULL, *run = NULL;
  long long end = ac_hostflow_now_ms() + 3000;
  while (ac_hostflow_now_ms() < end) {
    json_decref(st);
    st = ac_hostflow_event(&srv, admin, "hf-retry", id, 1);
    run = ac_hostflow_run(st, "webhooks");
    const char *s = json_string_value(json_object_get(run, "status"));
    if (s && strcmp(s, "running") != 0 && strcmp(s, "queued") != 0)
      break;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
  assert_non_null(run);
  assert_string_equal(json_string_value(json_object_get(run, "status")), "retrying");
  assert_string_equal(json_string_value(json_object_get(st, "status")), "running");
  assert_int_equal(json_integer_value(json_object_get(run, "attempts")), 1);
  assert_non_null(strstr(json_string_value(json_object_get(run, "error")), "HTTP 503"));
  assert_true(json_is_string(json_object_get(run, "nextAttemptAt")));
  json_decref(st);

  assert_int_equal(ac_sink_wait(retry_sink, 2, 8000), AC_OK);
  long long gap = ac_hostflow_now_ms() - first;
  /* Retry-After: 1 is honoured instead of the 5 s first step of the schedule */
  assert_true(gap >= 800);
  assert_true(gap < 4000);
  st = ac_hostflow_wait_done(&srv, admin, "hf-retry", id, 5000);
  run = ac_hostflow_run(st, "webhooks");
  assert_string_equal(json_string_value(json_object_get(st, "status")), "done");
  assert_string_equal(json_string_value(json_object_get(run, "status")), "ok");
  assert_int_equal(json_integer_value(json_object_get(run, "attempts")), 2);
  assert_true(json_is_null(json_object_get(run, "error")));
  json_decref(st);

  ac_sink_request r0, r1;
  assert_int_equal(ac_sink_request_get(retry_sink, 0, &r0), AC_OK);
  assert_int_equal(ac_sink_request_get(retry_sink, 1, &r1), AC_OK);
  assert_non_null(ac_sink_header_get(&r0, "webhook-id"));
  assert_string_equal(ac_sink_header_get(&r0, "webhook-id"), ac_sink_header_get(&r1, "webhook-id"));
  assert_int_equal(r0.body_len, r1.body_len);
  assert_memory_equal(r0.body, r1.body, r0.body_len);
  assert_null(ac_sink_header_get(&r0, "webhook-signature")); /* no secret, no signature */
  ac_sink_request_free(&r0);
  ac_sink_request_free(&r1);
  free(id);
}

static void idempotency_key(void **state) {
  (void)state;
  const char *k1 = "{\"type\":\"document.ready\",\"documentId\":\"d-1\",\"idempotencyKey\":\"k-1\"}";
  const char *k2 = "{\"type\":\"document.ready\",\"documentId\":\"d-1\",\"idempotencyKey\":\"k-2\"}";
  char *first = emit("hf-idem", k1, 202);
  char *again = emit("hf-idem", k1, 200);
  char *other = emit("hf-idem", k2, 202);
  assert_string_equal(first, again);
  assert_string_not_equal(first, other);
  json_decref(expect_delivered_once("hf-idem", first));
  json_decref(expect_delivered_once("hf-idem", other));
  /* after the first event ran, the key still answers it (200, status done) */
  long st = 0;
  char *late = ac_hostflow_emit(&srv, admin, "hf-idem", k1, &st);
  assert_int_equal(st, 200);
  assert_string_equal(late, first);
  struct timespec ts = {0, 600 * 1000000L};
  nanosleep(&ts, NULL); /* a duplicate delivery would show by now */
  assert_int_equal(ac_sink_count(idem_sink), 2);
  char want[2][128];
  snprintf(want[0], sizeof want[0], "msg_%s", first);
  snprintf(want[1], sizeof want[1], "msg_%s", other);
  int seen[2] = {0, 0};
  for (size_t i = 0; i < 2; i++) {
    ac_sink_request r;
    assert_int_equal(ac_sink_request_get(idem_sink, i, &r), AC_OK);
    for (int k = 0; k < 2; k++)
      seen[k] += strcmp(ac_sink_header_get(&r, "webhook-id"), want[k]) == 0;
    ac_sink_request_free(&r);
  }
  assert_int_equal(seen[0], 1);
  assert_int_equal(seen[1], 1);
  free(first);
  free(again);
  free(other);
  free(late);
}

/* With no plugin for the event (opendatabot has no event hook), it is done
 * at once, with no runs. Its status is read with canManagePlugins alone,
 * and only under its own namespace. */
static void event_without_plugins(void **state) {
  (void)state;
  char *id = emit("hf-none", "{\"type\":\"document.ready\",\"documentId\":\"n-1\"}", 202);
  json_t *st = ac_hostflow_wait_done(&srv, admin, "hf-none", id, 3000);
  assert_non_null(st);
  assert_string_equal(json_string_value(json_object_get(st, "status")), "done");
  assert_int_equal(json_array_size(json_object_get(st, "runs")), 0);
  json_decref(st);
  char *manager = ac_test_token("manager", AC_PERM_MANAGE_PLUGINS, 1, NULL, 600);
  json_decref(st = ac_hostflow_event(&srv, manager, "hf-none", id, 1));
  assert_non_null(st);
  char path[256];
  snprintf(path, sizeof path, "/api/v1/namespaces/hf-idem/events/%s", id);
  ac_test_response res;
  ac_test_call(&srv, "GET", path, admin, NULL, &res);
  assert_true(ac_test_expect(&res, 404, NULL));
  ac_test_response_free(&res);
  free(manager);
  free(id);
}

typedef struct racer {
  pthread_t thread;
  long status;
  char *id;
} racer;

static void *race(void *arg) {
  racer *r = arg;
  r->id = ac_hostflow_emit(&srv, admin, "hf-none",
                           "{\"type\":\"approval.created\",\"approvalId\":\"race\","
                           "\"idempotencyKey\":\"race-key\"}",
                           &r->status);
  return NULL;
}

/* Concurrent requests with one key: exactly one creates the event. */
static void idempotency_key_race(void **state) {
  (void)state;
  enum { N = 8 };
  racer r[N];
  memset(r, 0, sizeof r);
  for (int i = 0; i < N; i++)
    assert_int_equal(pthread_create(&r[i].thread, NULL, race, &r[i]), 0);
  int created = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(r[i].thread, NULL);
    assert_non_null(r[i].id);
    created += r[i].status == 202;
    assert_true(r[i].status == 202 || r[i].status == 200);
    assert_string_equal(r[i].id, r[0].id);
  }
  assert_int_equal(created, 1);
  for (int i = 0; i < N; i++)
    free(r[i].id);
}

/* A plugin disabled while its run waits for a retry: the run is skipped. */
static void disabled_while_retrying(void **state) {
  (void)state;
  ac_sink_push(gone_sink, (ac_sink_response){.status = 429, .headers = {"Retry-After", "1"}});
  char *id = emit("hf-gone", "{\"type\":\"approval.created\",\"approvalId\":\"g-1\"}", 202);
  assert_int_equal(ac_sink_wait(gone_sink, 1, 5000), AC_OK);
  ac_test_response res;
  assert_int_equal(
      ac_test_call(&srv, "DELETE", "/api/v1/namespaces/hf-gone/plugins/webhooks", admin, NULL, &res),
      204);
  ac_test_response_free(&res);
  json_t *st = ac_hostflow_wait_done(&srv, admin, "hf-gone", id, 6000);
  json_t *run = ac_hostflow_run(st, "webhooks");
  assert_string_equal(json_string_value(json_object_get(st, "status")), "done");
  assert_string_equal(json_string_value(json_object_get(run, "status")), "skipped");
  assert_non_null(strstr(json_string_value(json_object_get(run, "error")), "no longer enabled"));
  assert_int_equal(ac_sink_count(gone_sink), 1);
  json_decref(st);
  free(id);
}

/* A run claimed more often than any retry schedule allows (its instances
 * stopped mid-call, or its outcome could not be stored) ends as an error
 * instead of coming back at every lease expiry. */
static void runs_claimed_too_often_end(void **state) {
  (void)state;
  ac_sink_push(retry_sink, (ac_sink_response){.status = 429, .headers = {"Retry-After", "60"}});
  size_t before = ac_sink_count(retry_sink);
  char *id = emit("hf-retry", "{\"type\":\"approval.created\",\"approvalId\":\"cap-1\"}", 202);
  assert_int_equal(ac_sink_wait(retry_sink, before + 1, 5000), AC_OK);
  const char *params[] = {id};
  char *done = NULL;
  for (int i = 0; i < 50; i++) { /* until the first attempt is recorded as retrying */
    free(done);
    done = ac_test_server_query(&srv, 0,
                                "UPDATE event_runs SET attempts = 30, next_attempt_at = now() "
                                "WHERE event_id = $1::uuid AND status = 'retrying' RETURNING 1",
                                1, params);
    if (done && *done)
      break;
    usleep(100 * 1000);
  }
  assert_non_null(done);
  assert_string_equal(done, "1");
  free(done);
  json_t *st = ac_hostflow_wait_done(&srv, admin, "hf-retry", id, 6000);
  json_t *run = ac_hostflow_run(st, "webhooks");
  assert_non_null(run);
  assert_string_equal(json_string_value(json_object_get(run, "status")), "error");
  assert_non_null(strstr(json_string_value(json_object_get(run, "error")), "gave up after 30 attempts"));
  assert_int_equal(ac_sink_count(retry_sink), before + 1); /* not delivered again */
  json_decref(st);
  free(id);
}

static void event_request_errors(void **state) {
  (void)state;
  char *no_emit = ac_test_token("reader", AC_PERM_MANAGE_NAMESPACES, 1, NULL, 600);
  const char *other_dept[] = {"elsewhere", NULL};
  char *out_of_scope = ac_test_token("stranger", AC_PERM_EMIT_EVENTS, 0, other_dept, 600);
  static const struct {
    const char *ns, *body;
    int token; /* 0 admin, 1 without canEmitEvents, 2 out of scope */
    long status;
  } cases[] = {
      {"hf-idem", "{\"type\":\"approval.deleted\",\"approvalId\":\"x\"}", 0, 400},
      {"hf-idem", "{\"type\":\"approval.created\"}", 0, 400},
      {"hf-idem", "{\"type\":\"document.ready\",\"documentId\":\"\"}", 0, 400},
      {"hf-idem", "{\"type\":\"document.ready\",\"documentId\":\"d\",\"data\":[1]}", 0, 400},
      {"hf-idem", "{\"type\":\"document.ready\",\"documentId\":\"d\",\"idempotencyKey\":7}", 0, 400},
      {"hf-idem", "{\"type\":", 0, 400},
      {"no-such-ns", "{\"type\":\"document.ready\",\"documentId\":\"d\"}", 0, 404},
      {"hf-idem", "{\"type\":\"document.ready\",\"documentId\":\"d\"}", 1, 403},
      {"hf-idem", "{\"type\":\"document.ready\",\"documentId\":\"d\"}", 2, 404},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *tok = cases[i].token == 0 ? admin : cases[i].token == 1 ? no_emit : out_of_scope;
    char path[128];
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/events", cases[i].ns);
    ac_test_response res;
    ac_test_call(&srv, "POST", path, tok, cases[i].body, &res);
    if (!ac_test_expect(&res, cases[i].status, NULL))
      fail_msg("case %zu (%s): expected %ld", i, cases[i].body, cases[i].status);
    ac_test_response_free(&res);
  }
  /* data nested past what the pipeline can always deliver is refused at
   * intake, one level less is accepted */
  for (int depth = 64; depth <= 65; depth++) {
    char body[512];
    int n = snprintf(body, sizeof body, "{\"type\":\"document.ready\",\"documentId\":\"deep\",\"data\":");
    for (int i = 0; i < depth; i++)
      n += snprintf(body + n, sizeof body - (size_t)n, "{\"a\":");
    n += snprintf(body + n, sizeof body - (size_t)n, "1");
    for (int i = 0; i <= depth; i++)
      n += snprintf(body + n, sizeof body - (size_t)n, "}");
    ac_test_response res;
    ac_test_call(&srv, "POST", "/api/v1/namespaces/hf-none/events", admin, body, &res);
    if (res.status != (depth == 64 ? 202 : 400))
      fail_msg("data %d levels deep: status %ld", depth, res.status);
    ac_test_response_free(&res);
  }
  /* unknown event id and an id that is not a UUID: 404 */
  const char *paths[] = {"/api/v1/namespaces/hf-idem/events/6f1c2e4a-3b5d-4c6e-8f70-1a2b3c4d5e6f",
                         "/api/v1/namespaces/hf-idem/events/not-a-uuid"};
  for (size_t i = 0; i < 2; i++) {
    ac_test_response res;
    ac_test_call(&srv, "GET", paths[i], admin, NULL, &res);
    assert_true(ac_test_expect(&res, 404, NULL));
    ac_test_response_free(&res);
  }
  free(no_emit);
  free(out_of_scope);
}

static void hook_metrics(void **state) {
  (void)state;
  ac_test_response res;
  assert_int_equal(ac_test_call(&srv, "GET", "/metrics", NULL, NULL, &res), 200);
  const char *want[] = {
      "agentcore_hook_calls_total{plugin=\"webhooks\",hook=\"onApprovalCreated\",outcome=\"ok\"} ",
      "agentcore_hook_calls_total{plugin=\"webhooks\",hook=\"onDocumentReady\",outcome=\"ok\"} ",
      /* one retry each in retry_after_then_ok, disabled_while_retrying and
       * runs_claimed_too_often_end */
      "agentcore_hook_calls_total{plugin=\"webhooks\",hook=\"onApprovalCreated\",outcome=\"retry\"} 3",
      "\nagentcore_events_queued 0",
      "\nagentcore_events_running 0",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!res.body || !strstr(res.body, want[i]))
      fail_msg("/metrics lacks %s:\n%.3000s", want[i], res.body ? res.body : "");
  ac_test_response_free(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(webhooks_for_both_event_types),
      cmocka_unit_test(retry_after_then_ok),
      cmocka_unit_test(idempotency_key),
      cmocka_unit_test(event_without_plugins),
      cmocka_unit_test(idempotency_key_race),
      cmocka_unit_test(disabled_while_retrying),
      cmocka_unit_test(runs_claimed_too_often_end),
      cmocka_unit_test(event_request_errors),
      cmocka_unit_test(hook_metrics),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  return failed || teardown_failed;
}
