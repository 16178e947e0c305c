/* test_api_isolation.c — docs/runtime.md against the real server and PostgreSQL:
 * what a plugin that spins, waits on a slow upstream or sticks in C, or a
 * tenant's leftovers in a Lua state, may cost the others. Each case has
 * its own server (plugins from tests/lua/isolation), so one failure does
 * not hide another. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/crypto.h"
#include "fixtures.h"
#include "hostflow_fixture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)

#define HOOK_TIMEOUT_MS 500
/* docs/api.md: a /query answers within the hook timeout plus 1 s whatever
 * its plugins do (stuck in C included). */
#define ANSWER_BUDGET_MS (HOOK_TIMEOUT_MS + 1000)
/* docs/runtime.md wants /healthz and other namespaces at full speed (about a
 * millisecond on an idle Release build). 200 ms is generous on purpose:
 * it holds for the ASan build on a loaded 2-core machine, and is still far
 * below the hook timeout a request thread held by plugin code would cost. */
#define OTHERS_BUDGET_MS 200
/* A call refused for lack of room fails fast: never past its deadline
 * (plus scheduling slack). */
#define BUSY_BUDGET_MS (HOOK_TIMEOUT_MS + 250)
#define MAX_STUCK 2
/* Threads besides the abandoned ones that the server may start while the
 * stuck-call test runs (a worker replacing an abandoned one, a lazily
 * started pool, a resolver thread). */
#define THREAD_SLACK 4

/* How long a client waits for any answer: past ANSWER_BUDGET_MS an answer
 * is already wrong, and a connection that is never resumed must cost the
 * program seconds, not curl's default 30 s. */
#define CLIENT_TIMEOUT_MS (ANSWER_BUDGET_MS + 2000)

#define NOISY_CLIENTS 8
#define NOISY_ROUNDS 2

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- findings: a case reports every problem it finds, then fails once ---- */

typedef struct findings {
  int n;
} findings;

static void finding(findings *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void finding(findings *fs, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "  FAILED: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fs->n++;
}

static void findings_check(const findings *fs) {
  if (fs->n)
    fail_msg("%d problem(s), listed above", fs->n);
}

/* ---- one server per case -------------------------------------------------------- */

typedef struct fixture {
  ac_test_server srv;
  char *admin;
  ac_sink *sink; /* the slow upstream, when the case has one */
} fixture;

/* Starts a server named name with the isolation plugins, the common test
 * settings and extra (NULL-terminated, may be NULL), and creates namespace
 * calm (opendatabot) in department iso. */
static fixture *fixture_start(const char *name, const char *const *extra) {
  fixture *f = calloc(1, sizeof *f);
  if (!f)
    return NULL;
  char plugins[1200], dirs[1300], timeout[64];
  ac_test_path(plugins, sizeof plugins, "tests/lua/isolation");
  snprintf(dirs, sizeof dirs, "AGENTCORE_PLUGIN_DIRS=%s", plugins);
  snprintf(timeout, sizeof timeout, "AGENTCORE_HOOK_TIMEOUT_MS=%d", HOOK_TIMEOUT_MS);
  const char *env[24] = {timeout,
                         dirs,
                         "AGENTCORE_WORKERS=4",
                         "AGENTCORE_HTTP_ALLOW_CIDRS=127.0.0.0/8",
                         "AGENTCORE_HTTP_RATE=100000",
                         "AGENTCORE_HTTP_BURST=100000"};
  size_t n = 6;
  for (size_t i = 0; extra && extra[i] && n < 23; i++) {
    /* an extra setting replaces the default of the same name */
    size_t name_len = strcspn(extra[i], "=");
    size_t j = 0;
    while (j < n && !(strncmp(env[j], extra[i], name_len) == 0 && env[j][name_len] == '='))
      j++;
    env[j == n ? n++ : j] = extra[i];
  }
  if (ac_test_server_start(&f->srv, name, env) != 0) {
    free(f);
    return NULL;
  }
  f->admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 3600);
  if (!f->admin || ac_hostflow_tenant(&f->srv, f->admin, "iso", "calm") ||
      ac_hostflow_enable(&f->srv, f->admin, "calm", "opendatabot", "{}")) {
    ac_test_server_stop(&f->srv);
    free(f->admin);
    free(f);
    return NULL;
  }
  return f;
}

/* Stops the server (if still running) and frees f. A server that did not
 * exit cleanly (an ASan report included) fails the case. */
static int fixture_stop(void **state) {
  fixture *f = *state;
  if (!f)
    return 0;
  int running = f->srv.pid > 0;
  int rc = ac_test_server_stop(&f->srv);
  ac_sink_stop(f->sink);
  free(f->admin);
  free(f);
  *state = NULL;
  if (running && rc != 0) {
    fprintf(stderr, "agentcore serve exited with status %d\n", rc);
    return -1;
  }
  return 0;
}

/* For a setup that got part way: undoes it and reports the failure. */
static int setup_failed(void **state) {
  fixture_stop(state);
  return -1;
}

/* ---- queries ----------------------------------------------------------------------- */

typedef struct answer {
  long status;
  long long took_ms;
  json_t *body; /* parsed response, or NULL */
  char err[256];
} answer;

/* POSTs {"query": text} to ns's /query, waiting at most timeout_ms. */
static void query_within(const fixture *f, const char *ns, const char *text, long timeout_ms,
                         answer *a) {
  char path[200], body[300];
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/query", ns);
  snprintf(body, sizeof body, "{\"query\":\"%s\"}", text);
  ac_test_request req = {.method = "POST", .path = path, .token = f->admin,
                         .content_type = "application/json", .body = body,
                         .timeout_ms = timeout_ms};
  ac_test_response res;
  long long t0 = now_ms();
  a->status = ac_test_http(&f->srv, &req, &res);
  a->took_ms = now_ms() - t0;
  a->body = res.json ? json_incref(res.json) : NULL;
  snprintf(a->err, sizeof a->err, "%s", res.err[0] ? res.err : (res.body ? res.body : ""));
  ac_test_response_free(&res);
}

static void query(const fixture *f, const char *ns, const char *text, answer *a) {
  query_within(f, ns, text, CLIENT_TIMEOUT_MS, a);
}

/* The entry of list (results or errors of a query answer) whose pluginId
 * is plugin, or NULL. */
static json_t *entry_of(const json_t *body, const char *list, const char *plugin) {
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(body, list), i, e) {
    const char *p = json_string_value(json_object_get(e, "pluginId"));
    if (p && strcmp(p, plugin) == 0)
      return e;
  }
  return NULL;
}

static const char *error_kind(const json_t *body, const char *plugin) {
  return json_string_value(json_object_get(entry_of(body, "errors", plugin), "kind"));
}

/* Threads that each send rounds queries to ns, keeping every answer. */
typedef struct client {
  const fixture *f;
  const char *ns;
  const char *text;
  int rounds;
  long timeout_ms; /* per query */
  answer answers[NOISY_ROUNDS];
  atomic_int *running;
  pthread_t thread;
} client;

static void *client_main(void *arg) {
  client *c = arg;
  for (int i = 0; i < c->rounds; i++)
    query_within(c->f, c->ns, c->text, c->timeout_ms, &c->answers[i]);
  atomic_fetch_sub(c->running, 1);
  return NULL;
}

/* Starts n clients (rounds <= NOISY_ROUNDS, each query waiting at most
 * timeout_ms); returns how many started. */
static int clients_start(client *cs, int n, const fixture *f, const char *ns, int rounds,
                         long timeout_ms, atomic_int *running) {
  atomic_store(running, n);
  for (int i = 0; i < n; i++) {
    cs[i] = (client){.f = f, .ns = ns, .text = "noise 00032129", .rounds = rounds,
                     .timeout_ms = timeout_ms, .running = running};
    if (pthread_create(&cs[i].thread, NULL, client_main, &cs[i]) != 0) {
      atomic_fetch_sub(running, n - i);
      return i;
    }
  }
  return n;
}

static void clients_join(client *cs, int n) {
  for (int i = 0; i < n; i++)
    pthread_join(cs[i].thread, NULL);
}

static void clients_free(client *cs, int n) {
  for (int i = 0; i < n; i++)
    for (int r = 0; r < cs[i].rounds; r++)
      json_decref(cs[i].answers[r].body);
}

/* ---- probes: /healthz and the calm namespace, timed ------------------------------ */

typedef struct probes {
  int health, calm;       /* samples taken */
  long long worst_health, worst_calm;
  int failures;
  char first_failure[600];
} probes;

static void probe_fail(probes *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void probe_fail(probes *p, const char *fmt, ...) {
  if (p->failures++ == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->first_failure, sizeof p->first_failure, fmt, ap);
    va_end(ap);
  }
}

static void probe_health(const fixture *f, probes *p) {
  ac_test_request req = {.method = "GET", .path = "/healthz", .timeout_ms = CLIENT_TIMEOUT_MS};
  ac_test_response res;
  long long t0 = now_ms();
  long st = ac_test_http(&f->srv, &req, &res);
  long long took = now_ms() - t0;
  ac_test_response_free(&res);
  p->health++;
  if (took > p->worst_health)
    p->worst_health = took;
  if (st != 200 || took > OTHERS_BUDGET_MS)
    probe_fail(p, "GET /healthz answered %ld after %lld ms", st, took);
}

/* A query to calm must answer 200 in time with opendatabot's results and
 * no error. */
static void probe_calm(const fixture *f, probes *p) {
  answer a;
  query(f, "calm", "calm 00032129", &a);
  p->calm++;
  if (a.took_ms > p->worst_calm)
    p->worst_calm = a.took_ms;
  if (a.status != 200 || a.took_ms > OTHERS_BUDGET_MS || !entry_of(a.body, "results", "opendatabot") ||
      json_array_size(json_object_get(a.body, "errors")) != 0)
    probe_fail(p, "calm /query answered %ld after %lld ms: %.300s", a.status, a.took_ms, a.err);
  else if (!ac_test_schema_valid("query-response.json", a.body))
    probe_fail(p, "calm /query answer does not match query-response.json");
  json_decref(a.body);
}

/* Probes every 10 ms while *running > 0 (and for at least min_ms). */
static void probe_while(const fixture *f, atomic_int *running, long long min_ms, probes *p) {
  long long until = now_ms() + min_ms;
  while (atomic_load(running) > 0 || now_ms() < until) {
    probe_health(f, p);
    probe_calm(f, p);
    sleep_ms(10);
  }
}

/* ---- cases 1 and 2: noise in one namespace --------------------------------------- */

/* Floods ns (bad plugin + iso-quick enabled) with NOISY_CLIENTS concurrent
 * clients of NOISY_ROUNDS queries while timing /healthz and calm; checks
 * both sides. */
static void noise_case(fixture *f, const char *ns, const char *bad) {
  answer warm;
  query(f, "calm", "warm-up 00032129", &warm); /* the first call builds states */
  assert_int_equal(warm.status, 200);
  json_decref(warm.body);

  client cs[NOISY_CLIENTS];
  atomic_int running;
  int started = clients_start(cs, NOISY_CLIENTS, f, ns, NOISY_ROUNDS, CLIENT_TIMEOUT_MS, &running);
  probes p = {0};
  if (started == NOISY_CLIENTS) {
    sleep_ms(100); /* the noise is in flight */
    probe_while(f, &running, 0, &p);
  }
  clients_join(cs, started);

  /* every noisy answer: 200 in time, the bad plugin as timeout or busy, the
   * good one's result present */
  int timeouts = 0, bad_answers = 0;
  char why[700] = "";
  for (int i = 0; i < started; i++)
    for (int r = 0; r < NOISY_ROUNDS; r++) {
      const answer *a = &cs[i].answers[r];
      const char *kind = error_kind(a->body, bad);
      timeouts += kind && strcmp(kind, "timeout") == 0;
      int ok = a->status == 200 && a->took_ms <= ANSWER_BUDGET_MS && kind &&
               (strcmp(kind, "timeout") == 0 || strcmp(kind, "busy") == 0) &&
               entry_of(a->body, "results", "iso-quick") && !entry_of(a->body, "errors", "iso-quick") &&
               ac_test_schema_valid("query-response.json", a->body);
      if (!ok && bad_answers++ == 0)
        snprintf(why, sizeof why, "%s query %d.%d: status %ld after %lld ms (budget %d), %s kind %s: %.400s",
                 ns, i, r, a->status, a->took_ms, ANSWER_BUDGET_MS, bad, kind ? kind : "(none)", a->err);
    }
  clients_free(cs, started);
  fprintf(stderr, "  %s: %d probes of /healthz (worst %lld ms), %d of calm /query (worst %lld ms); "
          "%d of %d noisy answers timed out\n",
          ns, p.health, p.worst_health, p.calm, p.worst_calm, timeouts, started * NOISY_ROUNDS);
  assert_int_equal(started, NOISY_CLIENTS);
  findings fs = {0};
  if (bad_answers)
    finding(&fs, "%d of %d noisy answers were wrong; first: %s", bad_answers, started * NOISY_ROUNDS, why);
  /* the first calls are not refused: the deadline really ended some */
  if (timeouts == 0)
    finding(&fs, "no %s call ended as a timeout", bad);
  /* the noise was measured against: probes ran while it was in flight */
  if (p.health < 3 || p.calm < 3)
    finding(&fs, "only %d /healthz and %d calm probes ran during the noise", p.health, p.calm);
  if (p.failures)
    finding(&fs, "%d of %d probes during the noise failed (budget %d ms); first: %s", p.failures,
            p.health + p.calm, OTHERS_BUDGET_MS, p.first_failure);
  findings_check(&fs);
}

static int spin_setup(void **state) {
  fixture *f = fixture_start("api_iso_spin", NULL);
  *state = f;
  if (!f || ac_hostflow_tenant(&f->srv, f->admin, "iso", "noisy") ||
      ac_hostflow_enable(&f->srv, f->admin, "noisy", "iso-spin", "{}") ||
      ac_hostflow_enable(&f->srv, f->admin, "noisy", "iso-quick", "{}"))
    return setup_failed(state);
  return 0;
}

static void spinning_plugin_costs_others_nothing(void **state) {
  noise_case(*state, "noisy", "iso-spin");
}

static int slow_setup(void **state) {
  fixture *f = fixture_start("api_iso_slow", NULL);
  *state = f;
  if (!f || !(f->sink = ac_sink_start()))
    return setup_failed(state);
  /* every upstream answer comes at twice the hook timeout (plenty queued:
   * a sink with none left answers at once) */
  for (int i = 0; i < 16 * NOISY_CLIENTS * NOISY_ROUNDS; i++)
    ac_sink_push(f->sink, (ac_sink_response){.delay_ms = 2 * HOOK_TIMEOUT_MS, .body = "late"});
  char cfg[300];
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/slow\"}", ac_sink_url(f->sink));
  if (ac_hostflow_tenant(&f->srv, f->admin, "iso", "slowns") ||
      ac_hostflow_enable(&f->srv, f->admin, "slowns", "iso-slow", cfg) ||
      ac_hostflow_enable(&f->srv, f->admin, "slowns", "iso-quick", "{}"))
    return setup_failed(state);
  return 0;
}

static void slow_upstream_costs_others_nothing(void **state) {
  fixture *f = *state;
  noise_case(f, "slowns", "iso-slow");
  /* the plugin did wait on the upstream */
  assert_true(ac_sink_count(f->sink) >= 1);
}

/* ---- waiting on the network holds no thread ------------------------------------ */

#define WAIT_CLIENTS 24
#define WAIT_UPSTREAM_MS 300
#define WAIT_TIMEOUT_MS 2000 /* room after the wait to spin or grow */

static int wait_setup(void **state) {
  /* two workers: if each waiting call held one, 24 calls would take
   * 12 x 300 ms one after the other */
  const char *extra[] = {"AGENTCORE_WORKERS=2", "AGENTCORE_HOOK_TIMEOUT_MS=2000", NULL};
  fixture *f = fixture_start("api_iso_wait", extra);
  *state = f;
  if (!f || !(f->sink = ac_sink_start()))
    return setup_failed(state);
  for (int i = 0; i < 4 * WAIT_CLIENTS; i++)
    ac_sink_push(f->sink, (ac_sink_response){.delay_ms = WAIT_UPSTREAM_MS, .body = "ok"});
  char cfg[300];
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/wait\"}", ac_sink_url(f->sink));
  if (ac_hostflow_tenant(&f->srv, f->admin, "iso", "waitns") ||
      ac_hostflow_enable(&f->srv, f->admin, "waitns", "iso-wait", cfg))
    return setup_failed(state);
  return 0;
}

typedef struct waiter_client {
  const fixture *f;
  const char *text;
  answer a;
  pthread_t thread;
} waiter_client;

static void *waiter_main(void *arg) {
  waiter_client *w = arg;
  query_within(w->f, "waitns", w->text, CLIENT_TIMEOUT_MS, &w->a);
  return NULL;
}

static void waiting_calls_hold_no_thread(void **state) {
  fixture *f = *state;
  findings fs = {0};
  waiter_client ws[WAIT_CLIENTS];
  long long t0 = now_ms();
  for (int i = 0; i < WAIT_CLIENTS; i++) {
    ws[i] = (waiter_client){.f = f, .text = "answer"};
    assert_int_equal(pthread_create(&ws[i].thread, NULL, waiter_main, &ws[i]), 0);
  }
  for (int i = 0; i < WAIT_CLIENTS; i++)
    pthread_join(ws[i].thread, NULL);
  long long all = now_ms() - t0;
  for (int i = 0; i < WAIT_CLIENTS; i++) {
    const answer *a = &ws[i].a;
    json_t *r = json_array_get(json_object_get(a->body, "results"), 0);
    if (a->status != 200 || !r || strcmp(json_string_value(json_object_get(r, "title")), "status 200"))
      finding(&fs, "waiting query %d: status %ld, %s", i, a->status, a->err);
    json_decref(a->body);
  }
  /* together, not in series: one upstream delay plus scheduling, far
   * below the 3.6 s two threads would need one call at a time */
  if (all > 4 * WAIT_UPSTREAM_MS)
    finding(&fs, "%d waiting queries took %lld ms in all (upstream answers in %d ms)",
            WAIT_CLIENTS, all, WAIT_UPSTREAM_MS);
  fprintf(stderr, "  %d queries waiting %d ms each on the upstream ended together in %lld ms\n",
          WAIT_CLIENTS, WAIT_UPSTREAM_MS, all);

  /* the deadline and the memory cap still hold after the call was parked */
  answer a;
  query_within(f, "waitns", "spin", CLIENT_TIMEOUT_MS, &a);
  const char *kind = error_kind(a.body, "iso-wait");
  if (a.status != 200 || !kind || strcmp(kind, "timeout") != 0 ||
      a.took_ms > WAIT_TIMEOUT_MS + 1000)
    finding(&fs, "spin after a wait: status %ld, kind %s, %lld ms", a.status,
            kind ? kind : "(none)", a.took_ms);
  json_decref(a.body);
  query_within(f, "waitns", "grow", CLIENT_TIMEOUT_MS, &a);
  kind = error_kind(a.body, "iso-wait");
  if (a.status != 200 || !kind || strcmp(kind, "memory") != 0)
    finding(&fs, "growing after a wait: status %ld, kind %s", a.status, kind ? kind : "(none)");
  json_decref(a.body);
  findings_check(&fs);
}

/* ---- the event loop keeps the limits of context.http -------------------------- */

#define LOOP_TIMEOUT_MS 1500
#define SHUTDOWN_BUDGET_MS 5000 /* a server stopping with calls in flight */

static double metric(const fixture *f, const char *name, const char *label_part, int *described,
                     long long *took_ms);

static int loop_setup(void **state) {
  /* one worker: two calls that held it while they waited for rate tokens
   * would take twice as long as two that are parked */
  const char *extra[] = {"AGENTCORE_WORKERS=1", "AGENTCORE_HOOK_TIMEOUT_MS=1500",
                         "AGENTCORE_HTTP_RATE=2", "AGENTCORE_HTTP_BURST=1", NULL};
  fixture *f = fixture_start("api_iso_loop", extra);
  *state = f;
  if (!f || !(f->sink = ac_sink_start()))
    return setup_failed(state);
  char cfg[300];
  snprintf(cfg, sizeof cfg, "{\"url\":\"%s/loop\"}", ac_sink_url(f->sink));
  const char *const namespaces[] = {"loop-a", "loop-b"};
  for (int i = 0; i < 2; i++)
    if (ac_hostflow_tenant(&f->srv, f->admin, "iso", namespaces[i]) ||
        ac_hostflow_enable(&f->srv, f->admin, namespaces[i], "iso-loop", cfg))
      return setup_failed(state);
  return 0;
}

typedef struct loop_client {
  const fixture *f;
  const char *ns;
  answer a;
  pthread_t thread;
} loop_client;

static void *loop_client_main(void *arg) {
  loop_client *c = arg;
  query(c->f, c->ns, "three", &c->a);
  return NULL;
}

static const char *result_title(const answer *a, const char *plugin) {
  return json_string_value(json_object_get(entry_of(a->body, "results", plugin), "title"));
}

static void loop_keeps_the_limits(void **state) {
  fixture *f = *state;
  findings fs = {0};
  /* the rate limit (2 a second, a burst of 1, per namespace): three
   * requests take about a second, spent parked; two namespaces at once
   * on one worker still take about a second in all */
  loop_client cs[2] = {{.f = f, .ns = "loop-a"}, {.f = f, .ns = "loop-b"}};
  long long t0 = now_ms();
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&cs[i].thread, NULL, loop_client_main, &cs[i]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(cs[i].thread, NULL);
  long long all = now_ms() - t0;
  for (int i = 0; i < 2; i++) {
    const char *title = result_title(&cs[i].a, "iso-loop");
    if (cs[i].a.status != 200 || !title || strcmp(title, "200,200,200") != 0)
      finding(&fs, "%s: status %ld, %.300s", cs[i].ns, cs[i].a.status, cs[i].a.err);
    if (cs[i].a.took_ms < 900)
      finding(&fs, "%s: three requests at 2 a second took only %lld ms", cs[i].ns,
              cs[i].a.took_ms);
    json_decref(cs[i].a.body);
  }
  if (all > 1900)
    finding(&fs, "two namespaces waiting for rate tokens on one worker took %lld ms", all);
  fprintf(stderr, "  two rate-limited calls on one worker ended together in %lld ms\n", all);

  /* the address guard */
  answer a;
  query(f, "loop-a", "guard", &a);
  const char *title = result_title(&a, "iso-loop");
  if (a.status != 200 || !title || strncmp(title, "denied:", 7) != 0)
    finding(&fs, "a link-local address: status %ld, result %s", a.status, title ? title : "(none)");
  json_decref(a.body);

  /* a receiver that never answers: the call ends at its deadline as a
   * timeout, its transfer is cancelled and its socket closed */
  ac_sink_push(f->sink, (ac_sink_response){.hang = 1});
  size_t released = ac_sink_hangs_abandoned(f->sink);
  query(f, "loop-b", "hang", &a);
  const char *kind = error_kind(a.body, "iso-loop");
  if (a.status != 200 || !kind || strcmp(kind, "timeout") != 0 ||
      a.took_ms > LOOP_TIMEOUT_MS + 1000)
    finding(&fs, "a hanging receiver: status %ld, kind %s, %lld ms", a.status,
            kind ? kind : "(none)", a.took_ms);
  json_decref(a.body);
  long long until = now_ms() + 2000;
  while (ac_sink_hangs_abandoned(f->sink) == released && now_ms() < until)
    sleep_ms(20);
  if (ac_sink_hangs_abandoned(f->sink) == released)
    finding(&fs, "the hanging request's connection was still open 2 s after the call ended");
  double in_flight = metric(f, "agentcore_http_in_flight", NULL, NULL, NULL);
  if (in_flight != 0)
    finding(&fs, "agentcore_http_in_flight is %g after every call ended", in_flight);
  findings_check(&fs);
}

/* Stopping the server while calls wait on transfers that never end: the
 * transfers are cancelled, the calls end, the process exits cleanly (no
 * ASan report) and promptly, and every waiting client is let go. */
#define LOOP_SHUTDOWN_CLIENTS 2 /* per namespace: within the rate limit's first second */

static void shutdown_with_transfers_in_flight_is_clean(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 2 * LOOP_SHUTDOWN_CLIENTS; i++)
    ac_sink_push(f->sink, (ac_sink_response){.hang = 1});
  client cs[2 * LOOP_SHUTDOWN_CLIENTS];
  atomic_int running_a, running_b;
  int n = clients_start(cs, LOOP_SHUTDOWN_CLIENTS, f, "loop-a", 1, 4 * LOOP_TIMEOUT_MS, &running_a);
  n += clients_start(cs + n, LOOP_SHUTDOWN_CLIENTS, f, "loop-b", 1, 4 * LOOP_TIMEOUT_MS,
                     &running_b);
  assert_int_equal(n, 2 * LOOP_SHUTDOWN_CLIENTS);
  /* every transfer has reached the receiver: they are all in flight */
  assert_int_equal(ac_sink_wait(f->sink, 2 * LOOP_SHUTDOWN_CLIENTS, LOOP_TIMEOUT_MS), AC_OK);
  long long t0 = now_ms();
  int status = ac_test_server_stop(&f->srv);
  long long took = now_ms() - t0;
  clients_join(cs, n);
  long long released = now_ms() - t0;
  clients_free(cs, n);
  fprintf(stderr, "  serve exited with status %d after %lld ms, transfers in flight; clients released after %lld ms\n",
          status, took, released);
  findings fs = {0};
  if (status != 0)
    finding(&fs, "serve exited with status %d", status);
  if (took > SHUTDOWN_BUDGET_MS)
    finding(&fs, "serve took %lld ms to stop (budget %d ms)", took, SHUTDOWN_BUDGET_MS);
  if (released > SHUTDOWN_BUDGET_MS + 1000)
    finding(&fs, "clients waiting on transfers were held %lld ms after the signal", released);
  findings_check(&fs);
}

/* ---- case 3: tenant state --------------------------------------------------------- */

#define TENANT_ROUNDS 40 /* sequential A,B pairs */
#define TENANT_THREADS 4 /* then concurrently: two per tenant */
#define TENANT_THREAD_QUERIES 20

typedef struct tenant {
  const char *ns;
  const char *secret;
  char fp[2 * AC_CRYPTO_SHA256_LEN + 1]; /* hex SHA-256 of secret */
} tenant;

static tenant tenants[2] = {
    {.ns = "tenant-a", .secret = "secret-of-tenant-a-7f3e9c21"},
    {.ns = "tenant-b", .secret = "secret-of-tenant-b-0d84a6b5"},
};

/* Checks one iso-tenant answer for t. Returns 1 if fine, else 0 with why
 * filled; *remembered is set when the state held this tenant's own secret
 * from an earlier call. */
static int tenant_answer_ok(const tenant *t, const answer *a, int *remembered, char *why,
                            size_t size) {
  json_t *r = entry_of(a->body, "results", "iso-tenant");
  if (a->status != 200 || !r) {
    snprintf(why, size, "%s: status %ld, no iso-tenant result: %.300s", t->ns, a->status, a->err);
    return 0;
  }
  const char *title = json_string_value(json_object_get(r, "title"));
  if (!title || strcmp(title, t->fp) != 0) {
    snprintf(why, size, "%s: the call ran with another tenant's config (%s)", t->ns,
             title ? title : "?");
    return 0;
  }
  const json_t *data = json_object_get(r, "data");
  static const char *const fields[] = {"seenGlobal", "seenLocal", "seenCache"};
  *remembered = 0;
  for (size_t i = 0; i < 3; i++) {
    const char *v = json_string_value(json_object_get(data, fields[i]));
    if (!v || (*v && strcmp(v, t->fp) != 0)) {
      snprintf(why, size, "%s: %s held another tenant's secret (fingerprint %.80s)", t->ns,
               fields[i], v ? v : "(missing)");
      return 0;
    }
    *remembered |= *v != '\0';
  }
  return 1;
}

typedef struct tenant_client {
  fixture *f;
  const tenant *t;
  int bad, remembered;
  char why[500];
  pthread_t thread;
} tenant_client;

static void *tenant_client_main(void *arg) {
  tenant_client *c = arg;
  for (int i = 0; i < TENANT_THREAD_QUERIES; i++) {
    answer a;
    query(c->f, c->t->ns, "who am i", &a);
    int rem = 0;
    if (!tenant_answer_ok(c->t, &a, &rem, c->why, sizeof c->why))
      c->bad++;
    c->remembered += rem;
    json_decref(a.body);
  }
  return NULL;
}

static int tenant_setup(void **state) {
  fixture *f = fixture_start("api_iso_tenant", NULL);
  *state = f;
  if (!f)
    return setup_failed(state);
  for (int i = 0; i < 2; i++) {
    unsigned char md[AC_CRYPTO_SHA256_LEN];
    char cfg[200];
    ac_crypto_sha256(tenants[i].secret, strlen(tenants[i].secret), md);
    ac_crypto_hex(md, sizeof md, tenants[i].fp, sizeof tenants[i].fp);
    snprintf(cfg, sizeof cfg, "{\"token\":\"%s\"}", tenants[i].secret);
    if (ac_hostflow_tenant(&f->srv, f->admin, "iso", tenants[i].ns) ||
        ac_hostflow_enable(&f->srv, f->admin, tenants[i].ns, "iso-tenant", cfg))
      return setup_failed(state);
  }
  return 0;
}

static void tenant_state_stays_in_its_namespace(void **state) {
  fixture *f = *state;
  int bad = 0, remembered = 0, total = 0;
  char why[500] = "";
  /* alternating A, B, A, B, ... */
  for (int i = 0; i < 2 * TENANT_ROUNDS; i++) {
    const tenant *t = &tenants[i % 2];
    answer a;
    query(f, t->ns, "who am i", &a);
    int rem = 0;
    char w[500];
    if (!tenant_answer_ok(t, &a, &rem, w, sizeof w) && bad++ == 0)
      snprintf(why, sizeof why, "call %d: %s", i, w);
    remembered += rem;
    total++;
    json_decref(a.body);
  }
  /* and both tenants at once */
  tenant_client cs[TENANT_THREADS];
  int started = 0;
  for (; started < TENANT_THREADS; started++) {
    cs[started] = (tenant_client){.f = f, .t = &tenants[started % 2]};
    if (pthread_create(&cs[started].thread, NULL, tenant_client_main, &cs[started]) != 0)
      break;
  }
  for (int i = 0; i < started; i++) {
    pthread_join(cs[i].thread, NULL);
    if (cs[i].bad && bad == 0)
      snprintf(why, sizeof why, "concurrent: %s", cs[i].why);
    bad += cs[i].bad;
    remembered += cs[i].remembered;
    total += TENANT_THREAD_QUERIES;
  }
  fprintf(stderr, "  %d of %d calls found their own tenant's secret from an earlier call\n",
          remembered, total);
  assert_int_equal(started, TENANT_THREADS);
  if (bad)
    fail_msg("%d of %d calls failed the check (another tenant's state, config or no answer); first: %s",
             bad, total, why);
}

/* ---- /metrics and threads ----------------------------------------------------------- */

/* The sum of the samples of metric name (lines "name value" or
 * "name{labels} value"; with label_part, only lines containing it) in the
 * current /metrics, or -1 when there is none. *described is set when a
 * "# TYPE name" line is present; *took_ms (may be NULL) is how long
 * /metrics took to answer, -1 if it did not answer 200. */
static double metric(const fixture *f, const char *name, const char *label_part, int *described,
                     long long *took_ms) {
  ac_test_response res;
  ac_test_request req = {.method = "GET", .path = "/metrics", .timeout_ms = CLIENT_TIMEOUT_MS};
  double sum = -1;
  int desc = 0;
  size_t n = strlen(name);
  char type_line[200];
  snprintf(type_line, sizeof type_line, "# TYPE %s ", name);
  long long t0 = now_ms();
  long st = ac_test_http(&f->srv, &req, &res);
  if (took_ms)
    *took_ms = st == 200 ? now_ms() - t0 : -1;
  if (st == 200 && res.body) {
    for (char *line = res.body; line && *line;) {
      char *eol = strchr(line, '\n');
      if (eol)
        *eol = '\0';
      if (strncmp(line, type_line, strlen(type_line)) == 0)
        desc = 1;
      else if (strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '{') &&
               (!label_part || strstr(line, label_part))) {
        const char *v = strrchr(line, ' ');
        sum = (sum < 0 ? 0 : sum) + strtod(v ? v + 1 : "0", NULL);
      }
      line = eol ? eol + 1 : NULL;
    }
  }
  ac_test_response_free(&res);
  if (described)
    *described = desc;
  return sum;
}

/* The server process's thread count (/proc), or -1. */
static int server_threads(const fixture *f) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)f->srv.pid);
  FILE *fp = fopen(path, "r");
  int n = -1;
  while (fp && fgets(line, sizeof line, fp))
    if (sscanf(line, "Threads: %d", &n) == 1)
      break;
  if (fp)
    fclose(fp);
  return n;
}

/* ---- case 4: the abandoned-call cap ------------------------------------------------- */

#define STUCK_WAVE1 12
#define STUCK_WAVE2 6

typedef struct watch {
  double max_abandoned; /* highest agentcore_calls_abandoned seen, -1: never present */
  int max_threads;
  int health, health_bad;
  long long worst_health;
  int metrics, metrics_bad;
  long long worst_metrics;
} watch;

/* Samples /metrics, the thread count and /healthz every 50 ms while
 * *running > 0 or until min_ms passed; /metrics and /healthz are timed. */
static void watch_while(const fixture *f, atomic_int *running, long long min_ms, watch *w) {
  long long until = now_ms() + min_ms;
  while (atomic_load(running) > 0 || now_ms() < until) {
    long long took = 0;
    double a = metric(f, "agentcore_calls_abandoned", NULL, NULL, &took);
    w->metrics++;
    w->metrics_bad += took < 0 || took > OTHERS_BUDGET_MS;
    if (took > w->worst_metrics)
      w->worst_metrics = took;
    if (a > w->max_abandoned)
      w->max_abandoned = a;
    int t = server_threads(f);
    if (t > w->max_threads)
      w->max_threads = t;
    probes p = {0};
    probe_health(f, &p);
    w->health++;
    w->health_bad += p.failures;
    if (p.worst_health > w->worst_health)
      w->worst_health = p.worst_health;
    sleep_ms(50);
  }
}

/* Checks a wave of answers whose plugin must end as a timeout or busy,
 * within the answer budget; counts the busy ones. */
static int wave_answers_ok(client *cs, int n, const char *plugin, int *busy, char *why,
                           size_t size) {
  int bad = 0;
  for (int i = 0; i < n; i++) {
    const answer *a = &cs[i].answers[0];
    const char *kind = error_kind(a->body, plugin);
    int is_busy = kind && strcmp(kind, "busy") == 0;
    *busy += is_busy;
    int ok = a->status == 200 && a->took_ms <= ANSWER_BUDGET_MS && kind &&
             (is_busy || strcmp(kind, "timeout") == 0) && (!is_busy || a->took_ms <= BUSY_BUDGET_MS);
    if (!ok && bad++ == 0)
      snprintf(why, size, "status %ld after %lld ms (budget %d, busy %d), kind %s: %.300s", a->status,
               a->took_ms, ANSWER_BUDGET_MS, BUSY_BUDGET_MS, kind ? kind : "(none)", a->err);
  }
  return bad;
}

/* One query to the calm namespace, so its states exist; then the server's
 * thread count at rest. */
static int warm_up(fixture *f) {
  answer warm;
  query(f, "calm", "warm-up 00032129", &warm);
  assert_int_equal(warm.status, 200);
  json_decref(warm.body);
  sleep_ms(200);
  return server_threads(f);
}

static int stuck_setup(void **state) {
  char cap[64];
  snprintf(cap, sizeof cap, "AGENTCORE_MAX_STUCK_CALLS=%d", MAX_STUCK);
  const char *env[] = {cap, NULL};
  fixture *f = fixture_start("api_iso_stuck", env);
  *state = f;
  if (!f || ac_hostflow_tenant(&f->srv, f->admin, "iso", "stuck") ||
      ac_hostflow_enable(&f->srv, f->admin, "stuck", "iso-stuck", "{}"))
    return setup_failed(state);
  return 0;
}

static void stuck_calls_are_capped(void **state) {
  fixture *f = *state;
  int base_threads = warm_up(f);
  assert_true(base_threads > 0);
  int described = 0;
  double before = metric(f, "agentcore_calls_abandoned", NULL, &described, NULL);

  watch w = {.max_abandoned = -1, .max_threads = base_threads};
  client wave1[STUCK_WAVE1], wave2[STUCK_WAVE2];
  atomic_int running;
  int n1 = clients_start(wave1, STUCK_WAVE1, f, "stuck", 1, CLIENT_TIMEOUT_MS, &running);
  /* the wave, then a while longer: the abandoned calls sort on for seconds */
  watch_while(f, &running, ANSWER_BUDGET_MS + 1000, &w);
  clients_join(wave1, n1);
  /* a second wave while the first one's calls are still stuck */
  int n2 = clients_start(wave2, STUCK_WAVE2, f, "stuck", 1, CLIENT_TIMEOUT_MS, &running);
  watch_while(f, &running, 0, &w);
  clients_join(wave2, n2);

  int busy = 0;
  char why1[500] = "", why2[500] = "";
  int bad1 = wave_answers_ok(wave1, n1, "iso-stuck", &busy, why1, sizeof why1);
  int bad2 = wave_answers_ok(wave2, n2, "iso-stuck", &busy, why2, sizeof why2);
  clients_free(wave1, n1);
  clients_free(wave2, n2);
  int busy_described = 0;
  double busy_total = metric(f, "agentcore_calls_busy_total", "plugin=\"iso-stuck\"", &busy_described, NULL);
  fprintf(stderr, "  abandoned gauge before %g, max %g (cap %d); threads %d at rest, max %d; "
          "%d busy answers, agentcore_calls_busy_total for iso-stuck %g; /healthz %d probes, worst %lld ms; "
          "/metrics %d probes, worst %lld ms\n",
          before, w.max_abandoned, MAX_STUCK, base_threads, w.max_threads, busy, busy_total, w.health,
          w.worst_health, w.metrics, w.worst_metrics);

  assert_int_equal(n1, STUCK_WAVE1);
  assert_int_equal(n2, STUCK_WAVE2);
  findings fs = {0};
  if (bad1)
    finding(&fs, "%d of %d first-wave answers were wrong; first: %s", bad1, n1, why1);
  if (bad2)
    finding(&fs, "%d of %d second-wave answers were wrong; first: %s", bad2, n2, why2);
  if (w.health_bad)
    finding(&fs, "%d of %d /healthz probes failed or took over %d ms (worst %lld ms)", w.health_bad,
            w.health, OTHERS_BUDGET_MS, w.worst_health);
  if (w.metrics_bad)
    finding(&fs, "%d of %d /metrics probes failed or took over %d ms (worst %lld ms)", w.metrics_bad,
            w.metrics, OTHERS_BUDGET_MS, w.worst_metrics);
  /* the figures are on /metrics */
  if (!described || before < 0)
    finding(&fs, "/metrics has no agentcore_calls_abandoned gauge");
  if (w.max_abandoned > MAX_STUCK)
    finding(&fs, "%g calls were abandoned at once, the cap is %d", w.max_abandoned, MAX_STUCK);
  /* iso-stuck stays in C for seconds (see tests/lua/isolation/c_stuck.lua):
   * its calls were abandoned, and the gauge must have shown it */
  if (w.max_abandoned < 1)
    finding(&fs, "agentcore_calls_abandoned never rose above %g while calls were stuck",
            w.max_abandoned);
  if (!busy_described)
    finding(&fs, "/metrics does not describe agentcore_calls_busy_total");
  if (busy > 0 && busy_total < busy)
    finding(&fs, "%d busy answers but agentcore_calls_busy_total{plugin=\"iso-stuck\"} is %g", busy,
            busy_total);
  /* the cap holds for threads too, whatever the gauge says */
  if (w.max_threads > base_threads + MAX_STUCK + THREAD_SLACK)
    finding(&fs, "the server went from %d to %d threads: more than %d abandoned calls kept one",
            base_threads, w.max_threads, MAX_STUCK);
  findings_check(&fs);
}

/* ---- case 4b: C functions keep to the deadline ------------------------------------- */

#define CSTALL_CLIENTS 20

static int cstall_setup(void **state) {
  fixture *f = fixture_start("api_iso_cstall", NULL);
  *state = f;
  if (!f || ac_hostflow_tenant(&f->srv, f->admin, "iso", "cstall") ||
      ac_hostflow_enable(&f->srv, f->admin, "cstall", "iso-cstall", "{}"))
    return setup_failed(state);
  return 0;
}

/* 20 concurrent calls of standard functions that once stalled in C for
 * years (tests/lua/isolation/c_stalls.lua): each ends as a timeout, none is
 * abandoned, and timeout + 1 s after the last answer no worker is busy. */
static void c_stalls_end_at_their_deadline(void **state) {
  fixture *f = *state;
  int base_threads = warm_up(f);
  watch w = {.max_abandoned = -1, .max_threads = base_threads};
  client cs[CSTALL_CLIENTS];
  atomic_int running;
  int n = clients_start(cs, CSTALL_CLIENTS, f, "cstall", 1, CLIENT_TIMEOUT_MS, &running);
  watch_while(f, &running, 0, &w);
  clients_join(cs, n);
  int busy = 0;
  char why[500] = "";
  int bad = wave_answers_ok(cs, n, "iso-cstall", &busy, why, sizeof why);
  int timeouts = n - busy - bad;
  clients_free(cs, n);
  sleep_ms(HOOK_TIMEOUT_MS + 1000);
  double busy_workers = metric(f, "agentcore_workers_busy", NULL, NULL, NULL);
  double abandoned = metric(f, "agentcore_calls_abandoned_total", NULL, NULL, NULL);
  int threads = server_threads(f);
  answer calm;
  query(f, "calm", "after 00032129", &calm);
  fprintf(stderr, "  %d timeouts of %d; then workers busy %g, abandoned in all %g, threads %d "
          "(at rest %d); /healthz worst %lld ms\n",
          timeouts, n, busy_workers, abandoned, threads, base_threads, w.worst_health);

  assert_int_equal(n, CSTALL_CLIENTS);
  findings fs = {0};
  if (bad)
    finding(&fs, "%d of %d answers were wrong; first: %s", bad, n, why);
  if (timeouts == 0)
    finding(&fs, "no call ended as a timeout");
  if (abandoned != 0)
    finding(&fs, "%g calls were abandoned stuck in C", abandoned);
  if (w.max_abandoned > 0)
    finding(&fs, "the abandoned gauge rose to %g", w.max_abandoned);
  if (busy_workers != 0)
    finding(&fs, "%g workers still busy %d ms after the last answer", busy_workers,
            HOOK_TIMEOUT_MS + 1000);
  if (threads > base_threads + THREAD_SLACK)
    finding(&fs, "the server went from %d to %d threads", base_threads, threads);
  if (w.health_bad)
    finding(&fs, "%d of %d /healthz probes failed or took over %d ms (worst %lld ms)", w.health_bad,
            w.health, OTHERS_BUDGET_MS, w.worst_health);
  if (calm.status != 200 || error_kind(calm.body, "opendatabot"))
    finding(&fs, "another namespace's query afterwards answered %ld", calm.status);
  json_decref(calm.body);
  findings_check(&fs);
}

/* ---- case 5: shutdown with abandoned calls ------------------------------------------ */

#define SHUTDOWN_ABANDONED 3
/* more than the request threads, so some wait behind others */
#define SHUTDOWN_IN_FLIGHT 16

static int shutdown_setup(void **state) {
  fixture *f = fixture_start("api_iso_shutdown", NULL);
  *state = f;
  if (!f || ac_hostflow_tenant(&f->srv, f->admin, "iso", "stuck") ||
      ac_hostflow_enable(&f->srv, f->admin, "stuck", "iso-stuck", "{}"))
    return setup_failed(state);
  return 0;
}

static void shutdown_with_abandoned_calls_is_clean(void **state) {
  fixture *f = *state;
  client first[SHUTDOWN_ABANDONED], late[SHUTDOWN_IN_FLIGHT];
  atomic_int running;
  /* these calls are abandoned: their answers came, their threads sort on */
  int n1 = clients_start(first, SHUTDOWN_ABANDONED, f, "stuck", 1, CLIENT_TIMEOUT_MS, &running);
  clients_join(first, n1);
  int answered = 0;
  for (int i = 0; i < n1; i++) {
    const char *kind = error_kind(first[i].answers[0].body, "iso-stuck");
    answered += first[i].answers[0].status == 200 && kind &&
                (strcmp(kind, "timeout") == 0 || strcmp(kind, "busy") == 0);
  }
  clients_free(first, n1);
  /* these are in flight (connections waiting) when the signal comes; they
   * wait longer than the shutdown may take, to see when they are let go */
  int n2 = clients_start(late, SHUTDOWN_IN_FLIGHT, f, "stuck", 1, 2 * SHUTDOWN_BUDGET_MS, &running);
  sleep_ms(150);
  long long t0 = now_ms();
  int status = ac_test_server_stop(&f->srv);
  long long took = now_ms() - t0;
  clients_join(late, n2);
  long long released = now_ms() - t0; /* every waiting client got an answer or a close */
  clients_free(late, n2);
  fprintf(stderr, "  serve exited with status %d after %lld ms; its clients were released after %lld ms\n",
          status, took, released);

  assert_int_equal(n1, SHUTDOWN_ABANDONED);
  assert_int_equal(n2, SHUTDOWN_IN_FLIGHT);
  findings fs = {0};
  if (answered != SHUTDOWN_ABANDONED)
    finding(&fs, "%d of %d stuck queries answered 200 with a timeout or busy before the shutdown",
            answered, SHUTDOWN_ABANDONED);
  if (took > SHUTDOWN_BUDGET_MS)
    finding(&fs, "serve took %lld ms to stop (budget %d ms)", took, SHUTDOWN_BUDGET_MS);
  if (released > SHUTDOWN_BUDGET_MS + 1000)
    finding(&fs, "clients in flight were held %lld ms after the signal", released);
  /* 0: a clean exit, no ASan report, not killed by the fixture's SIGKILL */
  if (status != 0)
    finding(&fs, "serve exited with status %d", status);
  findings_check(&fs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(spinning_plugin_costs_others_nothing, spin_setup, fixture_stop),
      cmocka_unit_test_setup_teardown(slow_upstream_costs_others_nothing, slow_setup, fixture_stop),
      cmocka_unit_test_setup_teardown(waiting_calls_hold_no_thread, wait_setup, fixture_stop),
      cmocka_unit_test_setup_teardown(loop_keeps_the_limits, loop_setup, fixture_stop),
      cmocka_unit_test_setup_teardown(shutdown_with_transfers_in_flight_is_clean, loop_setup,
                                      fixture_stop),
      cmocka_unit_test_setup_teardown(tenant_state_stays_in_its_namespace, tenant_setup, fixture_stop),
      cmocka_unit_test_setup_teardown(stuck_calls_are_capped, stuck_setup, fixture_stop),
      cmocka_unit_test_setup_teardown(c_stalls_end_at_their_deadline, cstall_setup, fixture_stop),
      cmocka_unit_test_setup_teardown(shutdown_with_abandoned_calls_is_clean, shutdown_setup,
                                      fixture_stop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
