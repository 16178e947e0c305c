/* test_builtin_plugins.c — plugins/opendatabot.lua and plugins/webhooks.lua
 * through the engine's call path, against a real local HTTP sink.
 * Webhook signatures are recomputed here with OpenSSL, independently of the
 * engine's crypto code. */
#include "core/clock.h"
#include "fixtures.h"
#include "http_sink.h"
#include "server_fixture.h"
#include "outbound/http_client.h"
#include "schema/schema.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- fixture ------------------------------------------------------------- */

typedef struct fx {
  ac_sink *sink;
  ac_addr_guard *guard; /* allows 127.0.0.0/8 */
  ac_http_client *client;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  f->sink = ac_sink_start();
  if (!f->sink)
    return -1;
  ac_err err;
  if (ac_addr_guard_new("127.0.0.0/8", &f->guard, &err) != AC_OK)
    return -1;
  ac_http_client_config cfg = {.guard = f->guard};
  if (ac_http_client_new(&cfg, &f->client, &err) != AC_OK)
    return -1;
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

static ac_plugin *load_builtin(const char *file, int timeout_ms) {
  char path[1024];
  ac_plugin_limits limits = ac_test_limits(NULL);
  limits.timeout_ms = timeout_ms;
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load(ac_test_path(path, sizeof path, file), &limits, &p, &out);
  if (!p)
    fail_msg("%s: %s", file, out.message);
  return p;
}

typedef struct call {
  json_t *result;
  ac_outcome out;
  int64_t elapsed_ms;
} call;

/* Calls hook(arg) in a fresh state of p with config (JSON text; defaults
 * applied and validated as the server does) and client c. */
static void call_hook(ac_plugin *p, const char *hook, const json_t *arg, const char *config_text,
                      ac_http_client *c, call *r) {
  const ac_plugin_info *info = ac_plugin_get_info(p);
  json_t *config = json_loads(config_text, 0, NULL);
  assert_non_null(config);
  ac_schema_apply_defaults(info->schema, config);
  json_t *errors = NULL;
  if (ac_schema_validate(info->schema, config, &errors) != AC_OK) {
    char *e = json_dumps(errors, 0);
    fail_msg("config %s invalid: %s", config_text, e);
  }
  json_decref(errors);
  ac_vm *vm = NULL;
  ac_outcome out;
  assert_int_equal(ac_plugin_new_state(p, &vm, &out), AC_OK);
  ac_call_context ctx = {.namespace_id = "ns-1",
                         .plugin_id = info->id,
                         .config = config,
                         .http = c,
                         .allow_retry = strcmp(hook, AC_HOOK_QUERY) != 0};
  memset(r, 0, sizeof *r);
  int64_t start = ac_clock_mono_ms();
  ac_plugin_call(vm, hook, arg, &ctx, &r->result, &r->out);
  r->elapsed_ms = ac_clock_mono_ms() - start;
  ac_vm_free(vm);
  json_decref(config);
}

static void get_request(fx *f, size_t i, ac_sink_request *req) {
  assert_int_equal(ac_sink_wait(f->sink, i + 1, 2000), AC_OK);
  assert_int_equal(ac_sink_request_get(f->sink, i, req), AC_OK);
}

static const char *str_of(const json_t *v, const char *key) {
  const char *s = json_string_value(json_object_get(v, key));
  if (!s)
    fail_msg("no string \"%s\"", key);
  return s;
}

/* ---- opendatabot: codes and checksums ------------------------------------- */

static json_t *query(const char *text) {
  return json_pack("{s:s, s:s, s:s, s:s}", "text", text, "userId", "u-1", "locale", "uk",
                   "namespaceId", "ns-1");
}

static json_t *odb_query(const char *text, const char *config, ac_http_client *c, int timeout_ms,
                         call *r) {
  ac_plugin *p = load_builtin("plugins/opendatabot.lua", timeout_ms);
  json_t *q = query(text);
  call_hook(p, AC_HOOK_QUERY, q, config, c, r);
  json_decref(q);
  ac_plugin_free(p);
  if (r->out.kind != AC_OUTCOME_OK)
    fail_msg("%s: %s", ac_outcome_kind_name(r->out.kind), r->out.message);
  assert_true(json_is_array(r->result));
  return r->result;
}

typedef struct code_case {
  const char *code;
  int valid;
} code_case;

static const code_case CODES[] = {
    {"14360570", 1}, {"00032129", 1}, {"20077720", 1}, {"40075815", 1}, {"21560045", 1},
    {"21673832", 1}, {"14360571", 0}, {"00032128", 0}, {"40075814", 0},
    /* remainder 10: recomputed with weights + 2 (A: 1..7, B: 7,1,...,6) */
    {"10000062", 1}, {"10000061", 0}, {"30000005", 1}, {"30000004", 0},
    /* remainder 10 twice: control digit 0 */
    {"10000640", 1}, {"30000440", 1}, {"30000441", 0},
};

static void test_odb_checksums(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof CODES / sizeof *CODES; i++) {
    char text[128];
    snprintf(text, sizeof text, "Перевір компанію %s, будь ласка", CODES[i].code);
    call r;
    json_t *res = odb_query(text, "{}", NULL, 3000, &r);
    assert_int_equal(json_array_size(res), 1);
    json_t *item = json_array_get(res, 0);
    json_t *data = json_object_get(item, "data");
    assert_string_equal(str_of(item, "type"), "company");
    assert_true(strlen(str_of(item, "title")) > 0);
    assert_true(strlen(str_of(item, "summary")) > 0);
    assert_string_equal(str_of(data, "edrpou"), CODES[i].code);
    if (json_is_true(json_object_get(data, "checksumValid")) != CODES[i].valid)
      fail_msg("%s: checksumValid should be %d", CODES[i].code, CODES[i].valid);
    json_t *src = json_object_get(item, "source");
    char url[64];
    snprintf(url, sizeof url, "https://opendatabot.ua/c/%s", CODES[i].code);
    assert_string_equal(str_of(src, "name"), "Opendatabot");
    assert_string_equal(str_of(src, "url"), url);
    double conf = json_number_value(json_object_get(item, "confidence"));
    assert_true(conf > 0 && conf <= 1);
    /* made-up company data only for codes that can exist */
    assert_int_equal(json_object_get(data, "name") != NULL, CODES[i].valid);
    json_decref(res);
  }
}

typedef struct text_case {
  const char *text;
  const char *codes; /* comma-separated, in order */
} text_case;

/* Standalone: exactly 8 digits, not part of a longer digit run, not glued
 * to an ASCII letter or "_"; non-ASCII neighbours (Cyrillic, quotes) and
 * punctuation are fine. */
static const text_case TEXTS[] = {
    {"123456789", ""},
    {"1436057", ""},
    {"1436057012", ""},
    {"a14360570b", ""},
    {"INV14360570", ""},
    {"_14360570", ""},
    {"14360570x", ""},
    {"", ""},
    {"14360570", "14360570"},
    {"x 14360570, 00032129.", "14360570,00032129"},
    {"14360570-00032129/20077720", "14360570,00032129,20077720"},
    {"ЄДРПОУ14360570", "14360570"},
    {"«14360570»", "14360570"},
    {"код:14360571!", "14360571"},
    {"14360570 and again 14360570", "14360570"},
    {"(40075815)\n21560045\t21673832", "40075815,21560045,21673832"},
    {"123456789 14360570 1234567", "14360570"},
};

static void test_odb_standalone_codes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof TEXTS / sizeof *TEXTS; i++) {
    call r;
    json_t *res = odb_query(TEXTS[i].text, "{}", NULL, 3000, &r);
    char got[256] = "";
    size_t n = 0;
    json_t *item;
    size_t k;
    json_array_foreach(res, k, item) {
      const char *code = str_of(json_object_get(item, "data"), "edrpou");
      n += (size_t)snprintf(got + n, sizeof got - n, "%s%s", k ? "," : "", code);
    }
    if (strcmp(got, TEXTS[i].codes) != 0)
      fail_msg("\"%s\": codes \"%s\", want \"%s\"", TEXTS[i].text, got, TEXTS[i].codes);
    json_decref(res);
  }
}

static void test_odb_at_most_five(void **state) {
  (void)state;
  call r;
  json_t *res = odb_query("14360570 00032129 20077720 40075815 21560045 21673832 10000062",
                          "{}", NULL, 3000, &r);
  assert_int_equal(json_array_size(res), 5);
  assert_string_equal(str_of(json_object_get(json_array_get(res, 4), "data"), "edrpou"),
                      "21560045");
  json_decref(res);
}

/* The same code gives the same company, run after run, state after state;
 * the scheme is pinned by one known answer. */
static void test_odb_deterministic(void **state) {
  (void)state;
  const char *text = "14360570 00032129 40075815";
  call a, b;
  json_t *first = odb_query(text, "{}", NULL, 3000, &a);
  json_t *second = odb_query(text, "{\"mode\":\"mock\"}", NULL, 3000, &b);
  assert_true(json_equal(first, second));
  json_t *data = json_object_get(json_array_get(first, 0), "data");
  assert_true(json_is_true(json_object_get(data, "mock")));
  assert_string_equal(str_of(data, "name"), "ТОВ \"Поділля Фарм\"");
  assert_string_equal(str_of(data, "director"), "Ірина Лисенко");
  assert_string_equal(str_of(data, "address"), "м. Львів, просп. Незалежності, 4");
  assert_string_equal(str_of(data, "status"), "registered");
  assert_string_equal(str_of(data, "registrationDate"), "2003-10-01");
  assert_string_equal(str_of(json_array_get(first, 0), "title"), "ТОВ \"Поділля Фарм\"");
  /* different codes give different companies */
  assert_false(json_equal(data, json_object_get(json_array_get(first, 1), "data")));
  json_decref(first);
  json_decref(second);
}

typedef struct config_case {
  const char *plugin;
  const char *config;
  int valid;
} config_case;

static const config_case CONFIGS[] = {
    {"plugins/opendatabot.lua", "{}", 1},
    {"plugins/opendatabot.lua", "{\"mode\":\"api\",\"apiKey\":\"k\"}", 1},
    {"plugins/opendatabot.lua", "{\"mode\":\"live\"}", 0},
    {"plugins/opendatabot.lua", "{\"baseUrl\":\"not a uri\"}", 0},
    {"plugins/opendatabot.lua", "{\"apiKey\":5}", 0},
    {"plugins/opendatabot.lua", "{\"other\":1}", 0},
    {"plugins/webhooks.lua", "{}", 0},
    {"plugins/webhooks.lua", "{\"url\":\"https://example.org/hook\"}", 1},
    {"plugins/webhooks.lua", "{\"url\":\"ftp://example.org/hook\"}", 0},
    {"plugins/webhooks.lua", "{\"url\":\"https://example.org\",\"secret\":\"s\",\"events\":"
                             "[\"document.ready\"],\"headers\":{\"x-a\":\"1\"},\"timeoutMs\":"
                             "100}", 1},
    {"plugins/webhooks.lua", "{\"url\":\"https://example.org\",\"events\":[\"x\"]}", 0},
    {"plugins/webhooks.lua", "{\"url\":\"https://example.org\",\"headers\":{\"x-a\":1}}", 0},
    {"plugins/webhooks.lua", "{\"url\":\"https://example.org\",\"timeoutMs\":99}", 0},
    {"plugins/webhooks.lua", "{\"url\":\"https://example.org\",\"timeoutMs\":30001}", 0},
    {"plugins/webhooks.lua", "{\"url\":\"https://example.org\",\"other\":1}", 0},
};

static void test_configs(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof CONFIGS / sizeof *CONFIGS; i++) {
    ac_plugin *p = load_builtin(CONFIGS[i].plugin, 3000);
    const ac_plugin_info *info = ac_plugin_get_info(p);
    json_t *c = json_loads(CONFIGS[i].config, 0, NULL);
    assert_non_null(c);
    ac_schema_apply_defaults(info->schema, c);
    int valid = ac_schema_validate(info->schema, c, NULL) == AC_OK;
    if (valid != CONFIGS[i].valid)
      fail_msg("%s %s: valid %d", CONFIGS[i].plugin, CONFIGS[i].config, valid);
    json_decref(c);
    ac_plugin_free(p);
  }
  /* opendatabot's defaults, and secrets marked writeOnly */
  ac_plugin *p = load_builtin("plugins/opendatabot.lua", 3000);
  const ac_plugin_info *info = ac_plugin_get_info(p);
  json_t *c = json_object();
  ac_schema_apply_defaults(info->schema, c);
  assert_string_equal(str_of(c, "mode"), "mock");
  assert_string_equal(str_of(c, "baseUrl"), "https://opendatabot.com/api/v3");
  json_decref(c);
  json_t *props = json_object_get(info->config_schema, "properties");
  assert_true(json_is_true(json_object_get(json_object_get(props, "apiKey"), "writeOnly")));
  ac_plugin_free(p);
  p = load_builtin("plugins/webhooks.lua", 3000);
  props = json_object_get(ac_plugin_get_info(p)->config_schema, "properties");
  assert_true(json_is_true(json_object_get(json_object_get(props, "secret"), "writeOnly")));
  assert_int_equal(ac_plugin_get_info(p)->caps, AC_CAP_APPROVAL_HOOK | AC_CAP_DOCUMENT_HOOK);
  ac_plugin_free(p);
}

/* ---- opendatabot: api mode -------------------------------------------------- */

static void test_odb_api_mode(void **state) {
  fx *f = *state;
  ac_sink_push(f->sink,
               (ac_sink_response){.status = 200,
                                  .headers = {"Content-Type", "application/json"},
                                  .body = "{\"data\":{\"full_name\":\"ТОВ \\\"Тест\\\"\","
                                          "\"location\":\"м. Київ, вул. Тестова, 1\","
                                          "\"ceo_name\":\"Іван Петренко\","
                                          "\"status\":\"зареєстровано\","
                                          "\"registration_date\":\"1993-02-03\"}}"});
  ac_sink_push(f->sink, (ac_sink_response){.status = 404, .body = "{}"});
  char config[512];
  snprintf(config, sizeof config,
           "{\"mode\":\"api\",\"apiKey\":\"k&y 1\",\"baseUrl\":\"%s/api/v3/\"}",
           ac_sink_url(f->sink));
  call r;
  json_t *res = odb_query("14360570, 14360571 та 00032129", config, f->client, 3000, &r);
  assert_int_equal(json_array_size(res), 3);
  /* only codes with a valid control digit are looked up */
  assert_int_equal(ac_sink_wait(f->sink, 2, 2000), AC_OK);
  ac_clock_sleep_ms(50);
  assert_int_equal(ac_sink_count(f->sink), 2);
  ac_sink_request req;
  get_request(f, 0, &req);
  assert_string_equal(req.method, "GET");
  assert_string_equal(req.target, "/api/v3/company/14360570?apiKey=k%26y%201");
  assert_string_equal(ac_sink_header_get(&req, "accept"), "application/json");
  ac_sink_request_free(&req);
  get_request(f, 1, &req);
  assert_string_equal(req.target, "/api/v3/company/00032129?apiKey=k%26y%201");
  ac_sink_request_free(&req);

  json_t *found = json_array_get(res, 0);
  json_t *data = json_object_get(found, "data");
  assert_string_equal(str_of(found, "title"), "ТОВ \"Тест\"");
  assert_string_equal(str_of(data, "director"), "Іван Петренко");
  assert_string_equal(str_of(data, "address"), "м. Київ, вул. Тестова, 1");
  assert_string_equal(str_of(data, "registrationDate"), "1993-02-03");
  assert_true(json_is_true(json_object_get(data, "checksumValid")));
  assert_true(json_is_false(json_object_get(data, "mock")));
  assert_true(json_is_false(json_object_get(json_object_get(json_array_get(res, 1), "data"),
                                            "checksumValid")));
  json_t *missing = json_object_get(json_array_get(res, 2), "data");
  assert_true(json_is_false(json_object_get(missing, "found")));
  assert_true(json_is_true(json_object_get(missing, "checksumValid")));
  json_decref(res);
}

typedef struct upstream_case {
  const char *name;
  ac_sink_response script;
  int closed;           /* baseUrl on a closed port */
  const char *error;    /* data.lookupError starts with */
} upstream_case;

static const upstream_case UPSTREAM[] = {
    {"5xx", {.status = 500, .body = "oops"}, 0, "HTTP 500"},
    {"401", {.status = 401}, 0, "HTTP 401"},
    {"not JSON", {.status = 200, .body = "<html>"}, 0, "the answer is not a JSON object"},
    {"hangs", {.hang = 1}, 0, "timeout: "},
    {"closed port", {0}, 1, "transport: "},
};

/* An upstream failure never fails the hook: the result carries the
 * checksum verdict and says the lookup failed, within the deadline. */
static void test_odb_api_failures(void **state) {
  fx *f = *state;
  for (size_t i = 0; i < sizeof UPSTREAM / sizeof *UPSTREAM; i++) {
    const upstream_case *u = &UPSTREAM[i];
    print_message("case: %s\n", u->name);
    if (!u->closed)
      ac_sink_push(f->sink, u->script);
    char base[128], config[512];
    if (u->closed)
      snprintf(base, sizeof base, "http://127.0.0.1:%u", closed_port_checked());
    else
      snprintf(base, sizeof base, "%s", ac_sink_url(f->sink));
    snprintf(config, sizeof config, "{\"mode\":\"api\",\"apiKey\":\"k\",\"baseUrl\":\"%s\"}",
             base);
    call r;
    json_t *res = odb_query("ЄДРПОУ 14360570", config, f->client, 1000, &r);
    assert_true(r.elapsed_ms < 1000);
    assert_int_equal(json_array_size(res), 1);
    json_t *item = json_array_get(res, 0);
    json_t *data = json_object_get(item, "data");
    assert_true(json_is_true(json_object_get(data, "checksumValid")));
    const char *why = str_of(data, "lookupError");
    if (strncmp(why, u->error, strlen(u->error)) != 0)
      fail_msg("%s: lookupError \"%s\"", u->name, why);
    assert_non_null(strstr(str_of(item, "summary"), "lookup failed"));
    json_decref(res);
  }
}

/* ---- webhooks --------------------------------------------------------------- */

static json_t *approval_event(void) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i}}", "id", "ev-1", "type",
                   "approval.created", "namespaceId", "ns-1", "occurredAt",
                   "2024-05-01T10:00:00Z", "approvalId", "ap-1", "data", "amount", 5);
}

static json_t *document_event(void) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "id", "ev-2", "type", "document.ready",
                   "namespaceId", "ns-1", "occurredAt", "2024-05-02T11:30:00Z", "documentId",
                   "doc-9", "data", "name", "a.pdf");
}

static void wh_call(fx *f, const char *hook, const json_t *event, const char *config,
                    ac_http_client *c, int timeout_ms, call *r) {
  (void)f;
  ac_plugin *p = load_builtin("plugins/webhooks.lua", timeout_ms);
  call_hook(p, hook, event, config, c, r);
  ac_plugin_free(p);
}

static void hmac_sha256(const void *key, size_t key_len, const char *msg, size_t len,
                        unsigned char md[32]) {
  unsigned int n = 0;
  assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, len, md, &n));
  assert_int_equal(n, 32);
}

/* Checks both signature headers of a received request independently. */
static void verify_signatures(const ac_sink_request *req, const char *secret, const void *key,
                              size_t key_len) {
  unsigned char md[32];
  hmac_sha256(secret, strlen(secret), req->body, req->body_len, md);
  char want[80] = "sha256=";
  for (int i = 0; i < 32; i++)
    snprintf(want + 7 + 2 * i, 3, "%02x", md[i]);
  assert_string_equal(ac_sink_header_get(req, "x-agentcore-signature"), want);

  const char *id = ac_sink_header_get(req, "webhook-id");
  const char *ts = ac_sink_header_get(req, "webhook-timestamp");
  assert_non_null(id);
  assert_non_null(ts);
  size_t n = strlen(id) + strlen(ts) + req->body_len + 3;
  char *signed_text = malloc(n);
  int k = snprintf(signed_text, n, "%s.%s.", id, ts);
  memcpy(signed_text + k, req->body, req->body_len);
  hmac_sha256(key, key_len, signed_text, (size_t)k + req->body_len, md);
  free(signed_text);
  unsigned char b64[64];
  EVP_EncodeBlock(b64, md, 32);
  char sig[80];
  snprintf(sig, sizeof sig, "v1,%s", (const char *)b64);
  assert_string_equal(ac_sink_header_get(req, "webhook-signature"), sig);
}

static size_t header_count(const ac_sink_request *req, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < req->header_count; i++)
    n += strcmp(req->headers[i].name, name) == 0;
  return n;
}

static void test_webhook_approval_signed(void **state) {
  fx *f = *state;
  char config[512];
  snprintf(config, sizeof config,
           "{\"url\":\"%s/hook?t=1\",\"secret\":\"s3cret-key\",\"headers\":{\"X-Extra\":\"1\","
           "\"Content-Type\":\"text/plain\",\"Webhook-Id\":\"forged\"}}",
           ac_sink_url(f->sink));
  json_t *ev = approval_event();
  call r;
  int64_t now = time(NULL);
  wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
  if (r.out.kind != AC_OUTCOME_OK)
    fail_msg("%s: %s", ac_outcome_kind_name(r.out.kind), r.out.message);
  assert_true(json_is_true(json_object_get(r.result, "delivered")));
  assert_int_equal(json_integer_value(json_object_get(r.result, "status")), 200);
  ac_sink_request req;
  get_request(f, 0, &req);
  assert_string_equal(req.method, "POST");
  assert_string_equal(req.target, "/hook?t=1");
  assert_string_equal(req.body, "{\"event\":\"approval.created\",\"approvalId\":\"ap-1\","
                                "\"namespaceId\":\"ns-1\",\"occurredAt\":\"2024-05-01T10:00:00Z\","
                                "\"data\":{\"amount\":5}}");
  assert_int_equal(header_count(&req, "content-type"), 1);
  assert_string_equal(ac_sink_header_get(&req, "content-type"), "application/json");
  assert_string_equal(ac_sink_header_get(&req, "x-extra"), "1");
  assert_int_equal(header_count(&req, "webhook-id"), 1);
  assert_string_equal(ac_sink_header_get(&req, "webhook-id"), "msg_ev-1");
  long long ts = atoll(ac_sink_header_get(&req, "webhook-timestamp"));
  assert_true(ts >= now - 5 && ts <= now + 5);
  verify_signatures(&req, "s3cret-key", "s3cret-key", 10);
  ac_sink_request_free(&req);
  json_decref(r.result);
  json_decref(ev);
}

static void test_webhook_document_unsigned(void **state) {
  fx *f = *state;
  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"%s/doc\"}", ac_sink_url(f->sink));
  json_t *ev = document_event();
  call r;
  wh_call(f, AC_HOOK_DOCUMENT, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_OK);
  ac_sink_request req;
  get_request(f, 0, &req);
  assert_string_equal(req.body, "{\"event\":\"document.ready\",\"documentId\":\"doc-9\","
                                "\"namespaceId\":\"ns-1\",\"occurredAt\":\"2024-05-02T11:30:00Z\","
                                "\"data\":{\"name\":\"a.pdf\"}}");
  assert_string_equal(ac_sink_header_get(&req, "webhook-id"), "msg_ev-2");
  assert_non_null(ac_sink_header_get(&req, "webhook-timestamp"));
  assert_null(ac_sink_header_get(&req, "webhook-signature"));
  assert_null(ac_sink_header_get(&req, "x-agentcore-signature"));
  ac_sink_request_free(&req);
  json_decref(r.result);
  json_decref(ev);
}

/* A whsec_ secret: Standard Webhooks signs with the decoded bytes, the
 * sha256= header with the secret as written. */
static void test_webhook_whsec_secret(void **state) {
  fx *f = *state;
  const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"%s/w\",\"secret\":\"%s\"}", ac_sink_url(f->sink),
           secret);
  json_t *ev = approval_event();
  call r;
  wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_OK);
  unsigned char key[64];
  int n = EVP_DecodeBlock(key, (const unsigned char *)secret + 6, (int)strlen(secret + 6));
  assert_int_equal(n, 24); /* 32 base64 chars, no padding */
  ac_sink_request req;
  get_request(f, 0, &req);
  verify_signatures(&req, secret, key, (size_t)n);
  ac_sink_request_free(&req);
  json_decref(r.result);
  json_decref(ev);

  /* a whsec_ secret that is not base64 fails the delivery (not retried) */
  snprintf(config, sizeof config, "{\"url\":\"%s/w\",\"secret\":\"whsec_!!!\"}",
           ac_sink_url(f->sink));
  ev = approval_event();
  wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_ERROR);
  assert_non_null(strstr(r.out.message, "whsec_"));
  assert_int_equal(ac_sink_count(f->sink), 1);
  json_decref(ev);
}

/* The Standard Webhooks published vector, through the very function the
 * plugin signs with (exported as signatureHeaders), loaded from the file. */
static void test_standard_webhooks_vector(void **state) {
  (void)state;
  char path[1024];
  FILE *fp = fopen(ac_test_path(path, sizeof path, "plugins/webhooks.lua"), "rb");
  assert_non_null(fp);
  static char src[256 * 1024];
  size_t n = fread(src, 1, sizeof src - 1, fp);
  fclose(fp);
  src[n] = '\0';
  const char *wrapper =
      "return { id = 'wh-vector', capabilities = { 'agent_query' },\n"
      "  onAgentQuery = function(q, context)\n"
      "    local wh = load(context.config.src, '=webhooks.lua')()\n"
      "    local h = wh.signatureHeaders(context.crypto, q.secret, q.id, q.ts, q.body)\n"
      "    return { sig = h['webhook-signature'], legacy = h['x-agentcore-signature'] } end }";
  ac_plugin_limits limits = ac_test_limits(NULL);
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load_source("wrapper.lua", wrapper, strlen(wrapper), &limits, &p, &out);
  assert_non_null(p);
  ac_vm *vm = ac_plugin_take_state(p);
  json_t *config = json_pack("{s:s}", "src", src);
  const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const char *body = "{\"test\": 2432232314}";
  json_t *q = json_pack("{s:s, s:s, s:s, s:s}", "secret", secret, "id",
                        "msg_p5jXN8AQM9LWM0D4loKWxJek", "ts", "1614265330", "body", body);
  ac_call_context ctx = {.namespace_id = "ns", .plugin_id = "wh-vector", .config = config};
  json_t *res = NULL;
  ac_plugin_call(vm, AC_HOOK_QUERY, q, &ctx, &res, &out);
  if (out.kind != AC_OUTCOME_OK)
    fail_msg("%s", out.message);
  assert_string_equal(str_of(res, "sig"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  unsigned char md[32];
  hmac_sha256(secret, strlen(secret), body, strlen(body), md);
  char want[80] = "sha256=";
  for (int i = 0; i < 32; i++)
    snprintf(want + 7 + 2 * i, 3, "%02x", md[i]);
  assert_string_equal(str_of(res, "legacy"), want);
  json_decref(res);
  json_decref(q);
  json_decref(config);
  ac_vm_free(vm);
  ac_plugin_free(p);
}

static void test_webhook_events_filter(void **state) {
  fx *f = *state;
  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"%s/f\",\"events\":[\"document.ready\"]}",
           ac_sink_url(f->sink));
  json_t *ev = approval_event();
  call r;
  wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_OK);
  assert_true(json_is_false(json_object_get(r.result, "delivered")));
  json_decref(r.result);
  json_decref(ev);
  ac_clock_sleep_ms(50);
  assert_int_equal(ac_sink_count(f->sink), 0);
  ev = document_event();
  wh_call(f, AC_HOOK_DOCUMENT, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_OK);
  assert_true(json_is_true(json_object_get(r.result, "delivered")));
  assert_int_equal(ac_sink_wait(f->sink, 1, 2000), AC_OK);
  json_decref(r.result);
  json_decref(ev);
}

typedef struct outcome_case {
  unsigned status;
  const char *retry_after; /* "+N": an HTTP date N seconds ahead */
  ac_outcome_kind kind;
  int delay_min, delay_max; /* retry delay range; -1: the schedule's */
  const char *message;
} outcome_case;

static const outcome_case OUTCOMES[] = {
    {200, NULL, AC_OUTCOME_OK, 0, 0, NULL},
    {204, NULL, AC_OUTCOME_OK, 0, 0, NULL},
    {503, NULL, AC_OUTCOME_RETRY, -1, -1, "HTTP 503"},
    {500, NULL, AC_OUTCOME_RETRY, -1, -1, "HTTP 500"},
    {408, NULL, AC_OUTCOME_RETRY, -1, -1, "HTTP 408"},
    {429, "7", AC_OUTCOME_RETRY, 7, 7, "HTTP 429"},
    {503, "0", AC_OUTCOME_RETRY, 0, 0, "HTTP 503"},
    {503, "99999999", AC_OUTCOME_RETRY, 3600, 3600, "HTTP 503"},
    {503, "+120", AC_OUTCOME_RETRY, 115, 121, "HTTP 503"},
    {503, "Sun, 06 Nov 1994 08:49:37 GMT", AC_OUTCOME_RETRY, 0, 0, "HTTP 503"},
    {503, "soon", AC_OUTCOME_RETRY, -1, -1, "HTTP 503"},
    {404, NULL, AC_OUTCOME_ERROR, 0, 0, "HTTP 404 (not retried)"},
    {400, "5", AC_OUTCOME_ERROR, 0, 0, "HTTP 400"},
    {410, NULL, AC_OUTCOME_ERROR, 0, 0, "HTTP 410"},
    {302, NULL, AC_OUTCOME_ERROR, 0, 0, "HTTP 302"},
};

static void test_webhook_outcomes(void **state) {
  fx *f = *state;
  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"%s/o\",\"secret\":\"k\"}", ac_sink_url(f->sink));
  for (size_t i = 0; i < sizeof OUTCOMES / sizeof *OUTCOMES; i++) {
    const outcome_case *c = &OUTCOMES[i];
    char date[64];
    const char *ra = c->retry_after;
    if (ra && ra[0] == '+') {
      time_t at = time(NULL) + atoi(ra + 1);
      struct tm tm;
      gmtime_r(&at, &tm);
      strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      ra = date;
    }
    ac_sink_response resp = {.status = c->status};
    if (ra) {
      resp.headers[0] = "Retry-After";
      resp.headers[1] = ra;
    }
    ac_sink_push(f->sink, resp);
    json_t *ev = approval_event();
    call r;
    wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
    if (r.out.kind != c->kind)
      fail_msg("HTTP %u: %s (%s)", c->status, ac_outcome_kind_name(r.out.kind), r.out.message);
    if (c->kind == AC_OUTCOME_RETRY &&
        (r.out.retry_delay_s < c->delay_min || r.out.retry_delay_s > c->delay_max))
      fail_msg("HTTP %u Retry-After %s: delay %d", c->status, ra ? ra : "-", r.out.retry_delay_s);
    if (c->message && !strstr(r.out.message, c->message))
      fail_msg("HTTP %u: message \"%s\"", c->status, r.out.message);
    json_decref(r.result);
    json_decref(ev);
  }
  assert_int_equal(ac_sink_count(f->sink), sizeof OUTCOMES / sizeof *OUTCOMES);
}

/* One delivery retried: the same webhook-id and body, a fresh signature
 * over each attempt's timestamp. */
static void test_webhook_id_stable(void **state) {
  fx *f = *state;
  ac_sink_push(f->sink, (ac_sink_response){.status = 503});
  ac_sink_push(f->sink, (ac_sink_response){.status = 200});
  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"%s/r\",\"secret\":\"s3cret\"}",
           ac_sink_url(f->sink));
  json_t *ev = approval_event();
  call r;
  wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_RETRY);
  wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_OK);
  json_decref(r.result);
  ac_sink_request a, b;
  get_request(f, 0, &a);
  get_request(f, 1, &b);
  assert_string_equal(ac_sink_header_get(&a, "webhook-id"), "msg_ev-1");
  assert_string_equal(ac_sink_header_get(&a, "webhook-id"), ac_sink_header_get(&b, "webhook-id"));
  assert_string_equal(a.body, b.body);
  verify_signatures(&a, "s3cret", "s3cret", 6);
  verify_signatures(&b, "s3cret", "s3cret", 6);
  ac_sink_request_free(&a);
  ac_sink_request_free(&b);
  json_decref(ev);
}

/* A receiver that never answers: the request ends early enough for the
 * hook to ask for a retry, within the hook's deadline. */
static void test_webhook_hanging_receiver(void **state) {
  fx *f = *state;
  struct {
    const char *extra;
    int hook_ms;
    int max_ms;
  } cases[] = {
      {"", 1000, 1000},                    /* bounded by the deadline's reserve */
      {",\"timeoutMs\":200", 3000, 900},   /* bounded by config.timeoutMs */
  };
  for (size_t i = 0; i < 2; i++) {
    ac_sink_push(f->sink, (ac_sink_response){.hang = 1});
    char config[512];
    snprintf(config, sizeof config, "{\"url\":\"%s/h\"%s}", ac_sink_url(f->sink),
             cases[i].extra);
    json_t *ev = approval_event();
    call r;
    wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, cases[i].hook_ms, &r);
    if (r.out.kind != AC_OUTCOME_RETRY)
      fail_msg("case %zu: %s (%s)", i, ac_outcome_kind_name(r.out.kind), r.out.message);
    assert_non_null(strstr(r.out.message, "timeout"));
    if (r.elapsed_ms > cases[i].max_ms)
      fail_msg("case %zu: took %lld ms", i, (long long)r.elapsed_ms);
    json_decref(ev);
  }
}

static void test_webhook_transport_and_denied(void **state) {
  fx *f = *state;
  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"http://127.0.0.1:%u/x\"}", closed_port_checked());
  json_t *ev = approval_event();
  call r;
  wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_RETRY);
  assert_non_null(strstr(r.out.message, "transport: "));

  /* an address the guard refuses is not retried */
  ac_addr_guard *none = NULL;
  assert_int_equal(ac_addr_guard_new(NULL, &none, NULL), AC_OK);
  ac_http_client_config cfg = {.guard = none};
  ac_http_client *c = NULL;
  assert_int_equal(ac_http_client_new(&cfg, &c, NULL), AC_OK);
  snprintf(config, sizeof config, "{\"url\":\"%s/x\"}", ac_sink_url(f->sink));
  wh_call(f, AC_HOOK_APPROVAL, ev, config, c, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_ERROR);
  assert_non_null(strstr(r.out.message, "webhook delivery refused: denied: "));
  assert_int_equal(ac_sink_count(f->sink), 0);

  /* a header value the client refuses is a configuration error too */
  snprintf(config, sizeof config, "{\"url\":\"%s/x\",\"headers\":{\"x-a\":\"1\\r\\nx-b: 2\"}}",
           ac_sink_url(f->sink));
  wh_call(f, AC_HOOK_APPROVAL, ev, config, f->client, 3000, &r);
  assert_int_equal(r.out.kind, AC_OUTCOME_ERROR);
  assert_non_null(strstr(r.out.message, "denied: "));
  ac_clock_sleep_ms(50);
  assert_int_equal(ac_sink_count(f->sink), 0);
  ac_http_client_free(c);
  ac_addr_guard_free(none);
  json_decref(ev);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_odb_checksums),
      cmocka_unit_test(test_odb_standalone_codes),
      cmocka_unit_test(test_odb_at_most_five),
      cmocka_unit_test(test_odb_deterministic),
      cmocka_unit_test(test_configs),
      cmocka_unit_test_setup_teardown(test_odb_api_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_odb_api_failures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_approval_signed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_document_unsigned, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_whsec_secret, setup, teardown),
      cmocka_unit_test(test_standard_webhooks_vector),
      cmocka_unit_test_setup_teardown(test_webhook_events_filter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_outcomes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_id_stable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_hanging_receiver, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_transport_and_denied, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
