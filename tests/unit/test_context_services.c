/* test_context_services.c — context.http and context.crypto as plugins use
 * them, against a real local HTTP sink: responses, request shapes, the four
 * error kinds, argument checks, deadlines and crypto vectors. */
#include "core/clock.h"
#include "fixtures.h"
#include "http_sink.h"
#include "server_fixture.h"
#include "lua/context.h"
#include "outbound/http_client.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- fixture ------------------------------------------------------------- */

typedef struct fx {
  ac_sink *sink;
  ac_addr_guard *guard;   /* allows 127.0.0.0/8 */
  ac_http_client *client;
} fx;

static ac_addr_guard *guard_with(const char *allow) {
  ac_addr_guard *g = NULL;
  ac_err err;
  if (ac_addr_guard_new(allow, &g, &err) != AC_OK)
    fail_msg("guard: %s", err.msg);
  return g;
}

static ac_http_client *client_with(const ac_addr_guard *g, ac_rate_limiter *rl) {
  ac_http_client_config cfg = {.guard = g, .limiter = rl};
  ac_http_client *c = NULL;
  ac_err err;
  if (ac_http_client_new(&cfg, &c, &err) != AC_OK)
    fail_msg("client: %s", err.msg);
  return c;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  f->sink = ac_sink_start();
  if (!f->sink)
    return -1;
  f->guard = guard_with("127.0.0.0/8");
  f->client = client_with(f->guard, NULL);
  *state = f;
  return 0;
}

/* A loopback port nothing listens on. */
static unsigned closed_port_checked(void) {
  int port = ac_test_free_port();
  assert_true(port > 0);
  return (unsigned)port;
}

static int teardown(void **state) {
  fx *f = *state;
  ac_http_client_free(f->client);
  ac_addr_guard_free(f->guard);
  ac_sink_stop(f->sink);
  free(f);
  return 0;
}

/* ---- running a snippet as a plugin hook --------------------------------- */

typedef struct run {
  json_t *result;
  ac_outcome out;
  int64_t elapsed_ms;
} run;

/* Runs `body` as onAgentQuery(q, context) of a fresh plugin with the sink's
 * base URL in q.url, under timeout_ms, with client c as context.http and
 * config (may be NULL) as context.config. */
static void run_with(fx *f, ac_http_client *c, int timeout_ms, const json_t *config,
                     const char *body, run *r) {
  char src[16384];
  snprintf(src, sizeof src,
           "return { id = 'svc', capabilities = { 'agent_query' },\n"
           "  onAgentQuery = function(q, context)\n%s\n  end }\n",
           body);
  ac_plugin_limits limits = ac_test_limits(NULL);
  limits.timeout_ms = timeout_ms;
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load_source("svc.lua", src, strlen(src), &limits, &p, &out);
  if (!p)
    fail_msg("load: %s", out.message);
  ac_vm *vm = ac_plugin_take_state(p);
  json_t *q = json_pack("{s:s, s:s, s:s}", "text", "x", "namespaceId", "ns", "url",
                        ac_sink_url(f->sink));
  ac_call_context ctx = {.namespace_id = "ns", .plugin_id = "svc", .http = c, .config = config};
  memset(r, 0, sizeof *r);
  int64_t start = ac_clock_mono_ms();
  ac_plugin_call(vm, AC_HOOK_QUERY, q, &ctx, &r->result, &r->out);
  r->elapsed_ms = ac_clock_mono_ms() - start;
  json_decref(q);
  ac_vm_free(vm);
  ac_plugin_free(p);
}

static void run_snippet(fx *f, ac_http_client *c, int timeout_ms, const char *body, run *r) {
  run_with(f, c, timeout_ms, NULL, body, r);
}

static void run_ok(fx *f, const char *body, run *r) {
  run_snippet(f, f->client, 3000, body, r);
  if (r->out.kind != AC_OUTCOME_OK)
    fail_msg("outcome %s: %s", ac_outcome_kind_name(r->out.kind), r->out.message);
}

static const char *str_at(const json_t *obj, const char *key) {
  const char *s = json_string_value(json_object_get(obj, key));
  if (!s)
    fail_msg("no string \"%s\" in the result", key);
  return s;
}

static void get_request(fx *f, size_t i, ac_sink_request *req) {
  assert_int_equal(ac_sink_wait(f->sink, i + 1, 2000), AC_OK);
  assert_int_equal(ac_sink_request_get(f->sink, i, req), AC_OK);
}

/* ---- responses and request shapes --------------------------------------- */

static void test_request_any_status(void **state) {
  fx *f = *state;
  ac_sink_push(f->sink, (ac_sink_response){.status = 503,
                                           .headers = {"X-Test", "yes", "Retry-After", "7"},
                                           .body = "busy"});
  run r;
  run_ok(f,
         "local res, err = context.http.request{ method = 'put', url = q.url .. '/p/a?x=1',\n"
         "  headers = { ['X-A'] = 'one', ['x-n'] = 42 }, body = 'raw bytes', timeoutMs = 2000 }\n"
         "return { status = res.status, test = res.headers['x-test'],\n"
         "  retry = res.headers['retry-after'], body = res.body, err = tostring(err) }",
         &r);
  assert_int_equal(json_integer_value(json_object_get(r.result, "status")), 503);
  assert_string_equal(str_at(r.result, "test"), "yes");
  assert_string_equal(str_at(r.result, "retry"), "7");
  assert_string_equal(str_at(r.result, "body"), "busy");
  assert_string_equal(str_at(r.result, "err"), "nil");
  ac_sink_request req;
  get_request(f, 0, &req);
  assert_string_equal(req.method, "PUT");
  assert_string_equal(req.target, "/p/a?x=1");
  assert_string_equal(ac_sink_header_get(&req, "x-a"), "one");
  assert_string_equal(ac_sink_header_get(&req, "x-n"), "42");
  assert_string_equal(req.body, "raw bytes");
  assert_null(ac_sink_header_get(&req, "content-type")); /* not made up */
  ac_sink_request_free(&req);
  json_decref(r.result);
}

static void test_get_and_post(void **state) {
  fx *f = *state;
  ac_sink_push(f->sink, (ac_sink_response){.status = 200, .body = "got"});
  ac_sink_push(f->sink, (ac_sink_response){.status = 201, .body = "{\"ok\":true}"});
  ac_sink_push(f->sink, (ac_sink_response){.status = 202});
  ac_sink_push(f->sink, (ac_sink_response){.status = 204});
  run r;
  run_ok(f,
         "local a = context.http.get(q.url .. '/g', { headers = { accept = 'text/plain' } })\n"
         "local b = context.http.post(q.url .. '/j', { name = 'x', list = { 1, 2 } })\n"
         "local c = context.http.post(q.url .. '/t', { a = 1 },\n"
         "  { headers = { ['Content-Type'] = 'application/vnd.x+json' } })\n"
         "local d = context.http.post(q.url .. '/s', 'plain')\n"
         "return { a = a.body, b = context.json.decode(b.body).ok, bs = b.status,\n"
         "  c = c.status, d = d.status }",
         &r);
  assert_string_equal(str_at(r.result, "a"), "got");
  assert_true(json_is_true(json_object_get(r.result, "b")));
  assert_int_equal(json_integer_value(json_object_get(r.result, "bs")), 201);
  assert_int_equal(json_integer_value(json_object_get(r.result, "c")), 202);
  assert_int_equal(json_integer_value(json_object_get(r.result, "d")), 204);

  ac_sink_request req;
  get_request(f, 0, &req);
  assert_string_equal(req.method, "GET");
  assert_string_equal(req.target, "/g");
  assert_string_equal(ac_sink_header_get(&req, "accept"), "text/plain");
  assert_int_equal(req.body_len, 0);
  ac_sink_request_free(&req);

  /* a table body is JSON with content-type: application/json */
  get_request(f, 1, &req);
  assert_string_equal(req.method, "POST");
  assert_string_equal(ac_sink_header_get(&req, "content-type"), "application/json");
  json_t *sent = json_loads(req.body, 0, NULL);
  json_t *want = json_pack("{s:s, s:[i,i]}", "name", "x", "list", 1, 2);
  assert_true(json_equal(sent, want));
  json_decref(sent);
  json_decref(want);
  ac_sink_request_free(&req);

  /* the caller's content-type wins, in any case, and is sent once */
  get_request(f, 2, &req);
  assert_string_equal(ac_sink_header_get(&req, "content-type"), "application/vnd.x+json");
  size_t types = 0;
  for (size_t i = 0; i < req.header_count; i++)
    types += strcmp(req.headers[i].name, "content-type") == 0;
  assert_int_equal(types, 1);
  assert_string_equal(req.body, "{\"a\":1}");
  ac_sink_request_free(&req);

  /* a string body is sent as it is, without a made-up type */
  get_request(f, 3, &req);
  assert_string_equal(req.body, "plain");
  assert_null(ac_sink_header_get(&req, "content-type"));
  ac_sink_request_free(&req);
  json_decref(r.result);
}

/* Read-only views (context.config and its tables) work as arguments. */
static void test_views_as_arguments(void **state) {
  fx *f = *state;
  char url[256];
  snprintf(url, sizeof url, "%s/req", ac_sink_url(f->sink));
  json_t *config = json_pack("{s:{s:s}, s:{s:i, s:{s:s}}, s:{s:s, s:s, s:{s:s}, s:{s:i}}}",
                             "hdrs", "x-view", "v", "opts", "timeoutMs", 1000, "headers", "x-o",
                             "o", "req", "method", "POST", "url", url, "headers", "x-r", "r",
                             "body", "n", 1);
  run r;
  run_with(f, f->client, 3000, config,
           "local a = context.http.get(q.url .. '/a', { headers = context.config.hdrs })\n"
           "local b = context.http.get(q.url .. '/b', context.config.opts)\n"
           "local c = context.http.request(context.config.req)\n"
           "return { a.status, b.status, c.status }",
           &r);
  if (r.out.kind != AC_OUTCOME_OK)
    fail_msg("outcome %s", r.out.message);
  ac_sink_request req;
  get_request(f, 0, &req);
  assert_string_equal(ac_sink_header_get(&req, "x-view"), "v");
  ac_sink_request_free(&req);
  get_request(f, 1, &req);
  assert_string_equal(ac_sink_header_get(&req, "x-o"), "o");
  ac_sink_request_free(&req);
  get_request(f, 2, &req);
  assert_string_equal(req.method, "POST");
  assert_string_equal(req.target, "/req");
  assert_string_equal(ac_sink_header_get(&req, "x-r"), "r");
  assert_string_equal(ac_sink_header_get(&req, "content-type"), "application/json");
  assert_string_equal(req.body, "{\"n\":1}");
  ac_sink_request_free(&req);
  json_decref(r.result);
  json_decref(config);
}

/* ---- error kinds ---------------------------------------------------------- */

typedef enum { CLIENT_LOOPBACK, CLIENT_NO_ALLOW, CLIENT_RATE_ONE } client_kind;

typedef struct err_case {
  const char *name;
  client_kind client;
  ac_sink_response script; /* pushed before the snippet runs */
  const char *url_expr;    /* Lua expression; `closed` is a closed-port base URL */
  const char *opts;        /* Lua table for http.get */
  int calls;               /* how many gets; the last one is checked */
  const char *prefix;      /* what err starts with */
  int max_ms;
} err_case;

static const err_case ERR_CASES[] = {
    {"denied: loopback without an allow list", CLIENT_NO_ALLOW, {0}, "q.url .. '/x'", "nil", 1,
     "denied: ", 2000},
    {"denied: scheme", CLIENT_LOOPBACK, {0}, "'ftp://127.0.0.1/x'", "nil", 1, "denied: ", 2000},
    {"denied: not a URL", CLIENT_LOOPBACK, {0}, "'http://exa mple.org/'", "nil", 1, "denied: ",
     2000},
    {"transport: closed port", CLIENT_LOOPBACK, {0}, "closed .. '/x'", "nil", 1, "transport: ",
     2000},
    {"transport: response over 1 MiB", CLIENT_LOOPBACK, {.huge_body = (2u << 20)},
     "q.url .. '/big'", "nil", 1, "transport: response body exceeds", 3000},
    {"timeout: hanging receiver, timeoutMs", CLIENT_LOOPBACK, {.hang = 1}, "q.url .. '/hang'",
     "{ timeoutMs = 200 }", 1, "timeout: ", 1500},
    {"rate_limited: no token before the deadline", CLIENT_RATE_ONE, {0}, "q.url .. '/r'", "nil",
     2, "rate_limited: ", 1500},
};

static void test_error_kinds(void **state) {
  fx *f = *state;
  ac_addr_guard *none = guard_with(NULL);
  ac_rate_limiter *rl = NULL;
  assert_int_equal(ac_rate_limiter_new(0.001, 1, 0, &rl, NULL), AC_OK);
  ac_http_client *no_allow = client_with(none, NULL);
  ac_http_client *rate_one = client_with(f->guard, rl);
  unsigned port = closed_port_checked();
  for (size_t i = 0; i < sizeof ERR_CASES / sizeof *ERR_CASES; i++) {
    const err_case *c = &ERR_CASES[i];
    print_message("case: %s\n", c->name);
    ac_sink_response script = c->script;
    if (script.hang || script.huge_body)
      ac_sink_push(f->sink, script);
    char body[2048];
    snprintf(body, sizeof body,
             "local closed = 'http://127.0.0.1:%u'\n"
             "local res, err\n"
             "for i = 1, %d do res, err = context.http.get(%s, %s) end\n"
             "return { res = res == nil, err = err }",
             port, c->calls, c->url_expr, c->opts);
    ac_http_client *client = c->client == CLIENT_NO_ALLOW   ? no_allow
                             : c->client == CLIENT_RATE_ONE ? rate_one
                                                            : f->client;
    run r;
    run_snippet(f, client, 3000, body, &r);
    if (r.out.kind != AC_OUTCOME_OK)
      fail_msg("%s: outcome %s: %s", c->name, ac_outcome_kind_name(r.out.kind), r.out.message);
    assert_true(json_is_true(json_object_get(r.result, "res")));
    const char *err = str_at(r.result, "err");
    if (strncmp(err, c->prefix, strlen(c->prefix)) != 0)
      fail_msg("%s: err \"%s\" does not start with \"%s\"", c->name, err, c->prefix);
    if (r.elapsed_ms > c->max_ms)
      fail_msg("%s: took %lld ms", c->name, (long long)r.elapsed_ms);
    json_decref(r.result);
  }
  ac_http_client_free(no_allow);
  ac_http_client_free(rate_one);
  ac_rate_limiter_free(rl);
  ac_addr_guard_free(none);
}

/* A request to a hanging receiver ends at the call's deadline: the client
 * gives up when the call has no time left, and the call ends as a timeout
 * within the hook timeout plus a margin. */
static void test_deadline_bounds_request(void **state) {
  fx *f = *state;
  ac_sink_push(f->sink, (ac_sink_response){.hang = 1});
  run r;
  run_snippet(f, f->client, 300,
              "local res, err = context.http.get(q.url .. '/hang')\n"
              "return { err = err }",
              &r);
  /* the watchdog stops the call at its next instruction, unless the two
   * remaining instructions finish first: then err says timeout */
  if (r.out.kind == AC_OUTCOME_OK) {
    const char *err = str_at(r.result, "err");
    if (strncmp(err, "timeout: ", 9) != 0)
      fail_msg("err \"%s\"", err);
    json_decref(r.result);
  } else {
    assert_int_equal(r.out.kind, AC_OUTCOME_TIMEOUT);
    assert_null(r.result);
  }
  assert_true(r.elapsed_ms >= 250);
  assert_true(r.elapsed_ms < 1300);
}

/* ---- a request made after the deadline fails at once ---------------------- */

typedef struct late {
  const char *url;
  int64_t call_ms;
  int got_nil;
  char err[256];
} late;

/* Runs in C inside the call: waits past the deadline without executing Lua
 * (so the deadline hook cannot fire), then calls context.http.get. */
static void late_body(lua_State *L, void *ud) {
  late *l = ud;
  ac_context_push(L);
  lua_getfield(L, -1, "http");
  lua_getfield(L, -1, "get");
  while (ac_vm_time_left_ms(L) > 0)
    ac_clock_sleep_ms(5);
  ac_clock_sleep_ms(20);
  lua_pushstring(L, l->url);
  int64_t start = ac_clock_mono_ms();
  lua_call(L, 1, 2);
  l->call_ms = ac_clock_mono_ms() - start;
  l->got_nil = lua_isnil(L, -2);
  snprintf(l->err, sizeof l->err, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
}

static void test_after_deadline_fails_at_once(void **state) {
  fx *f = *state;
  const char *src = "return { id = 'late', capabilities = { 'agent_query' },\n"
                    "  onAgentQuery = function() return {} end }";
  ac_plugin_limits limits = ac_test_limits(NULL);
  limits.timeout_ms = 100;
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load_source("late.lua", src, strlen(src), &limits, &p, &out);
  assert_non_null(p);
  ac_vm *vm = ac_plugin_take_state(p);
  ac_call_context ctx = {.namespace_id = "ns", .plugin_id = "late", .http = f->client};
  char url[256];
  snprintf(url, sizeof url, "%s/late", ac_sink_url(f->sink));
  late l = {.url = url};
  ac_vm_set_call_data(vm, &ctx);
  ac_vm_run(vm, "ns", late_body, &l, &out);
  assert_true(l.got_nil);
  if (strncmp(l.err, "timeout: ", 9) != 0)
    fail_msg("err \"%s\"", l.err);
  assert_true(l.call_ms < 50);
  ac_clock_sleep_ms(100);
  assert_int_equal(ac_sink_count(f->sink), 0); /* nothing was sent */
  ac_vm_free(vm);
  ac_plugin_free(p);
}

/* ---- argument checks ------------------------------------------------------ */

/* Header content that could inject or desync is refused as `denied`
 * (nil, err: the value may come from data), before any byte is sent. */
static void test_header_injection_refused(void **state) {
  fx *f = *state;
  static const char *const headers[] = {
      "{ ['x-a'] = 'v\\r\\nInjected: 1' }",
      "{ ['x-a'] = 'v\\nx' }",
      "{ ['x-a'] = 'v\\0x' }",
      "{ ['bad name'] = 'v' }",
      "{ ['x-a\\r\\nInjected'] = 'v' }",
      "{ [''] = 'v' }",
      "{ ['Content-Length'] = '5' }",
      "{ ['transfer-encoding'] = 'chunked' }",
  };
  for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
    char body[1024];
    snprintf(body, sizeof body,
             "local res, err = context.http.request{ url = q.url .. '/h', headers = %s }\n"
             "return { res = res == nil, err = err }",
             headers[i]);
    run r;
    run_ok(f, body, &r);
    assert_true(json_is_true(json_object_get(r.result, "res")));
    const char *err = str_at(r.result, "err");
    if (strncmp(err, "denied: ", 8) != 0)
      fail_msg("headers %s: err \"%s\"", headers[i], err);
    json_decref(r.result);
  }
  ac_clock_sleep_ms(50);
  assert_int_equal(ac_sink_count(f->sink), 0);
}

typedef struct raise_case {
  const char *call;
  const char *message;
} raise_case;

/* Programming errors raise (outcome error with the binding's message). */
static const raise_case RAISE_CASES[] = {
    {"context.http.request('http://x/')", "bad argument #1"},
    {"context.http.request{ }", "http.request: url must be a string, got nil"},
    {"context.http.request{ url = q.url, method = 1 }", "http.request: method must be a string"},
    {"context.http.request{ url = q.url, headers = 'x' }", "http.request: headers must be a table"},
    {"context.http.request{ url = q.url, headers = { [1] = 'v' } }",
     "header names must be strings"},
    {"context.http.request{ url = q.url, headers = { x = true } }",
     "header \"x\" must be a string, got boolean"},
    {"context.http.request{ url = q.url, body = true }",
     "body must be a string or a table, got boolean"},
    {"context.http.request{ url = q.url, timeoutMs = 'soon' }", "timeoutMs must be a number"},
    {"context.http.request{ url = q.url, timeoutMs = 0 }", "timeoutMs must be from 1"},
    {"context.http.get(42)", "http.get: url must be a string, got number"},
    {"context.http.get(q.url, 5)", "http.get: opts must be a table"},
    {"context.http.post(q.url, { f = print })", "Cannot serialise function"},
    {"context.crypto.hmac_sha256('k')", "bad argument #2"},
    {"context.crypto.sha256({})", "bad argument #1"},
    {"context.http.get = nil", "context.http is read-only"},
};

static void test_programming_errors_raise(void **state) {
  fx *f = *state;
  for (size_t i = 0; i < sizeof RAISE_CASES / sizeof *RAISE_CASES; i++) {
    char body[1024];
    snprintf(body, sizeof body, "%s\nreturn {}", RAISE_CASES[i].call);
    run r;
    run_snippet(f, f->client, 3000, body, &r);
    if (r.out.kind != AC_OUTCOME_ERROR || !strstr(r.out.message, RAISE_CASES[i].message))
      fail_msg("%s: %s \"%s\", want error \"%s\"", RAISE_CASES[i].call,
               ac_outcome_kind_name(r.out.kind), r.out.message, RAISE_CASES[i].message);
  }
  assert_int_equal(ac_sink_count(f->sink), 0);
}

static void test_limits_and_availability(void **state) {
  fx *f = *state;
  run r;
  /* a body over 1 MiB is refused before sending */
  run_ok(f,
         "local res, err = context.http.post(q.url .. '/b', string.rep('x', 1048577))\n"
         "local ok = context.http.post(q.url .. '/b', string.rep('x', 1048576))\n"
         "return { err = err, ok = ok.status }",
         &r);
  assert_true(strncmp(str_at(r.result, "err"), "denied: request body", 20) == 0);
  assert_int_equal(json_integer_value(json_object_get(r.result, "ok")), 200);
  json_decref(r.result);
  ac_sink_request req;
  get_request(f, 0, &req);
  assert_int_equal(req.body_len, 1048576);
  ac_sink_request_free(&req);

  /* without a client: nil, transport */
  run_snippet(f, NULL, 3000,
              "local res, err = context.http.get(q.url)\nreturn { err = err }", &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_OK);
  assert_string_equal(str_at(r.result, "err"), "transport: HTTP is not available here");
  json_decref(r.result);
}

/* A context kept from an earlier call acts on the call running now: its
 * functions reach the current call's services, and it is the same
 * namespace's (states never serve another namespace). With a config serial
 * the table itself is built once per state and config. */
static void test_kept_context_acts_on_current_call(void **state) {
  fx *f = *state;
  const char *src = "local kept\n"
                    "return { id = 'kept', capabilities = { 'agent_query' },\n"
                    "  onAgentQuery = function(q, context)\n"
                    "    local same = kept == context\n"
                    "    if not kept then kept = context return {} end\n"
                    "    if q.text == 'http' then kept.http.get(q.url) end\n"
                    "    return { { type = 'k', title = kept.crypto.random_id(),\n"
                    "               data = { same = same, ns = kept.namespaceId } } } end }";
  ac_plugin_limits limits = ac_test_limits(NULL);
  ac_outcome out;
  for (int serial = 0; serial <= 7; serial += 7) {
    ac_plugin *p = NULL;
    ac_plugin_load_source("kept.lua", src, strlen(src), &limits, &p, &out);
    assert_non_null(p);
    ac_vm *vm = ac_plugin_take_state(p);
    ac_call_context ctx = {.namespace_id = "ns", .plugin_id = "kept", .http = f->client,
                           .config_serial = (uint64_t)serial};
    const char *texts[] = {"first", "http", "crypto"};
    for (int i = 0; i < 3; i++) {
      json_t *q = json_pack("{s:s, s:s}", "text", texts[i], "url", ac_sink_url(f->sink));
      json_t *res = NULL;
      ac_plugin_call(vm, AC_HOOK_QUERY, q, &ctx, &res, &out);
      assert_int_equal(out.kind, AC_OUTCOME_OK);
      if (i > 0) {
        json_t *data = json_object_get(json_array_get(res, 0), "data");
        assert_string_equal(json_string_value(json_object_get(data, "ns")), "ns");
        /* one table per (state, serial); a new one per call without */
        assert_true(json_is_boolean(json_object_get(data, "same")));
        if (i > 0)
          assert_int_equal(json_is_true(json_object_get(data, "same")), serial != 0);
      }
      json_decref(res);
      json_decref(q);
    }
    ac_vm_free(vm);
    ac_plugin_free(p);
  }
  assert_int_equal(ac_sink_count(f->sink), 2); /* one http call per round */
}

/* ---- crypto --------------------------------------------------------------- */

typedef struct vector {
  const char *expr; /* Lua expression giving a string */
  const char *want;
} vector;

static const vector VECTORS[] = {
    {"c.hex(c.sha256('abc'))", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"c.hex(c.sha256(''))", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"tostring(#c.sha256('abc'))", "32"},
    /* RFC 4231 test case 2 */
    {"c.hex(c.hmac_sha256('Jefe', 'what do ya want for nothing?'))",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"c.hex(c.hmac_sha256('key', 'The quick brown fox jumps over the lazy dog'))",
     "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"},
    /* RFC 4231 test case 6: a key longer than the block size */
    {"c.hex(c.hmac_sha256(string.rep('\\170', 131), "
     "'Test Using Larger Than Block-Size Key - Hash Key First'))",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"tostring(#c.hmac_sha256('', ''))", "32"},
    {"c.hex('\\0\\1\\127\\255')", "00017fff"},
    {"c.hex('')", ""},
    {"c.base64('')", ""},
    {"c.base64('f')", "Zg=="},
    {"c.base64('fo')", "Zm8="},
    {"c.base64('foobar')", "Zm9vYmFy"},
    {"c.base64('\\255\\254\\253')", "//79"},
    {"c.base64_decode('Zm9vYg==')", "foob"},
    {"c.base64_decode('')", ""},
    {"c.hex(c.base64_decode('//79'))", "fffefd"},
    {"select(2, c.base64_decode('Zm9v!'))", "invalid base64: "},
    {"select(2, c.base64_decode('Zg'))", "invalid base64: "},
    {"tostring(#c.random_id())", "32"},
    {"tostring(c.random_id():find('^[0-9a-f]+$') ~= nil)", "true"},
    {"tostring(c.random_id() ~= c.random_id())", "true"},
};

static void test_crypto_vectors(void **state) {
  fx *f = *state;
  for (size_t i = 0; i < sizeof VECTORS / sizeof *VECTORS; i++) {
    char body[1024];
    snprintf(body, sizeof body, "local c = context.crypto\nreturn { v = %s }", VECTORS[i].expr);
    run r;
    run_ok(f, body, &r);
    const char *got = str_at(r.result, "v");
    const char *want = VECTORS[i].want;
    /* messages are checked by prefix, values exactly */
    int ok = strncmp(want, "invalid", 7) == 0 ? strncmp(got, want, strlen(want)) == 0
                                              : strcmp(got, want) == 0;
    if (!ok)
      fail_msg("%s = \"%s\", want \"%s\"", VECTORS[i].expr, got, want);
    json_decref(r.result);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_request_any_status, setup, teardown),
      cmocka_unit_test_setup_teardown(test_get_and_post, setup, teardown),
      cmocka_unit_test_setup_teardown(test_views_as_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_kinds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline_bounds_request, setup, teardown),
      cmocka_unit_test_setup_teardown(test_after_deadline_fails_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_header_injection_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_programming_errors_raise, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limits_and_availability, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kept_context_acts_on_current_call, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crypto_vectors, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
