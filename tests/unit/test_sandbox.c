/* test_sandbox.c — every hostile plugin under tests/lua/hostile ends with
 * the outcome its header names, in time, and leaves the engine healthy.
 *
 * Header lines of a fixture:
 *   -- stage: load          (default: call onAgentQuery)
 *   -- stage: approval      call onApprovalCreated, context.retry allowed
 *   -- expect: KIND         ok|error|timeout|memory|contract
 *   -- message: TEXT        must appear in the outcome's message
 *   -- result: JSON         the hook's result, compared as JSON
 *   -- log-truncated: yes   one "log truncated" line and a capped log
 *   -- timeout-ms: N        a longer timeout, for work that is slow to fail */
#include "fixtures.h"
#include "core/clock.h"
#include "lua/guard.h"
#include "lua/kv_memory.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

typedef struct fixture {
  char path[1024];
  char stage[16];
  char expect[16];
  char message[256];
  char result[256];
  int log_truncated;
  int timeout_ms;
} fixture;

static void read_header(fixture *f) {
  FILE *fp = fopen(f->path, "r");
  assert_non_null(fp);
  char line[512];
  snprintf(f->stage, sizeof f->stage, "call");
  while (fgets(line, sizeof line, fp) && strncmp(line, "-- ", 3) == 0) {
    line[strcspn(line, "\n")] = '\0';
    char *v = strchr(line + 3, ':');
    if (!v)
      continue;
    *v = '\0';
    v += 2;
    const char *k = line + 3;
    if (!strcmp(k, "stage"))
      snprintf(f->stage, sizeof f->stage, "%s", v);
    else if (!strcmp(k, "expect"))
      snprintf(f->expect, sizeof f->expect, "%s", v);
    else if (!strcmp(k, "message"))
      snprintf(f->message, sizeof f->message, "%s", v);
    else if (!strcmp(k, "result"))
      snprintf(f->result, sizeof f->result, "%s", v);
    else if (!strcmp(k, "timeout-ms"))
      f->timeout_ms = atoi(v);
    else if (!strcmp(k, "log-truncated"))
      f->log_truncated = 1;
  }
  fclose(fp);
}

typedef struct call_job {
  ac_vm *vm;
  ac_kv *kv;
  json_t *query;
  json_t *config;
  ac_call_context ctx;
  json_t *result;
  ac_outcome out;
  int init;
  const char *hook;
} call_job;

static void job_run(void *arg) {
  call_job *j = arg;
  if (j->init) {
    ac_plugin_call(j->vm, AC_HOOK_INIT, NULL, &j->ctx, NULL, &j->out);
    if (j->out.kind != AC_OUTCOME_OK)
      return;
  }
  ac_plugin_call(j->vm, j->hook, j->query, &j->ctx, &j->result, &j->out);
}

static void job_free(void *arg) {
  call_job *j = arg;
  ac_vm_free(j->vm);
  ac_kv_free(j->kv);
  json_decref(j->query);
  json_decref(j->config);
  json_decref(j->result);
  free(j);
}

/* Loads and calls a healthy plugin: the engine still works. */
static void assert_engine_healthy(const ac_plugin_limits *limits) {
  char path[1024];
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load(ac_test_path(path, sizeof path, "tests/lua/good/full.lua"), limits, &p, &out);
  assert_non_null(p);
  call_job j = {0};
  j.vm = ac_plugin_take_state(p);
  j.kv = ac_kv_memory_new();
  j.query = json_pack("{s:s}", "text", "ping");
  j.ctx = (ac_call_context){.namespace_id = "ns", .plugin_id = "full-sample", .kv = j.kv};
  j.init = 1;
  j.hook = AC_HOOK_QUERY;
  job_run(&j);
  assert_int_equal(j.out.kind, AC_OUTCOME_OK);
  const char *title = json_string_value(json_object_get(json_array_get(j.result, 0), "title"));
  assert_string_equal(title, "echo: ping");
  ac_vm_free(j.vm);
  ac_kv_free(j.kv);
  json_decref(j.query);
  json_decref(j.result);
  ac_plugin_free(p);
}

static void run_fixture(const fixture *f, ac_test_log *log) {
  ac_plugin_limits limits = ac_test_limits(log->logger);
  if (f->timeout_ms)
    limits.timeout_ms = f->timeout_ms;
  ac_test_log_reset(log);
  int64_t start = ac_clock_mono_ms();
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load(f->path, &limits, &p, &out);
  if (!strcmp(f->stage, "load")) {
    assert_null(p);
  } else {
    if (!p)
      fail_msg("%s: failed to load: %s", f->path, out.message);
    call_job *j = calloc(1, sizeof *j);
    j->vm = ac_plugin_take_state(p);
    j->kv = ac_kv_memory_new();
    j->query = json_pack("{s:s, s:s}", "text", "hostile", "namespaceId", "ns");
    j->config = json_pack("{s:s}", "url", "https://example.org");
    j->ctx = (ac_call_context){.namespace_id = "ns", .plugin_id = ac_plugin_get_info(p)->id,
                               .config = j->config, .kv = j->kv};
    j->init = ac_plugin_get_info(p)->has_init;
    j->hook = AC_HOOK_QUERY;
    if (!strcmp(f->stage, "approval")) {
      j->hook = AC_HOOK_APPROVAL;
      j->ctx.allow_retry = 1;
    }
    ac_guard_job gj = {job_run, job_free, j};
    int64_t call_start = ac_clock_mono_ms();
    /* a call may outlive its timeout by at most a second, the sandbox's
     * promise; the guard takes over past that */
    int rc = ac_guard_run(&gj, call_start + limits.timeout_ms + 1000);
    if (ac_clock_mono_ms() - call_start > limits.timeout_ms + 1000)
      fail_msg("%s: the call held its caller %lld ms", f->path,
               (long long)(ac_clock_mono_ms() - call_start));
    if (rc == AC_ERR_TIMEOUT) {
      /* stuck in C past the deadline: the guard released the caller, but
       * every path a plugin reaches must keep to the deadline itself */
      fail_msg("%s: the call was abandoned stuck in C", f->path);
    } else {
      assert_int_equal(rc, AC_OK);
      out = j->out;
      if (f->result[0]) {
        json_t *want = json_loads(f->result, JSON_DECODE_ANY, NULL);
        assert_non_null(want);
        if (!json_equal(want, j->result)) {
          char *got = json_dumps(j->result, JSON_ENCODE_ANY);
          fail_msg("%s: result %s, want %s", f->path, got, f->result);
        }
        json_decref(want);
      }
      job_free(j);
    }
    ac_plugin_free(p);
  }
  int64_t elapsed = ac_clock_mono_ms() - start;
  if (strcmp(ac_outcome_kind_name(out.kind), f->expect) != 0)
    fail_msg("%s: outcome %s (%s), want %s", f->path, ac_outcome_kind_name(out.kind), out.message,
             f->expect);
  if (f->message[0] && !strstr(out.message, f->message))
    fail_msg("%s: message \"%s\" lacks \"%s\"", f->path, out.message, f->message);
  assert_true(strlen(out.message) < AC_OUTCOME_MSG_MAX);
  /* released within the timeout plus one second (load and call each) */
  if (elapsed > 2 * limits.timeout_ms + 1000)
    fail_msg("%s: took %lld ms", f->path, (long long)elapsed);
  if (f->log_truncated) {
    assert_int_equal(ac_test_log_count(log, "\"log truncated\""), 1);
    assert_true(log->bytes < (1u << 20) + 64 * 1024);
  }
  assert_engine_healthy(&limits);
}

static void test_hostile_suite(void **state) {
  (void)state;
  char dir[1024];
  ac_test_path(dir, sizeof dir, "tests/lua/hostile");
  DIR *d = opendir(dir);
  assert_non_null(d);
  ac_test_log log;
  ac_test_log_init(&log);
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0)
      continue;
    fixture f = {0};
    snprintf(f.path, sizeof f.path, "%s/%s", dir, e->d_name);
    read_header(&f);
    assert_true(f.expect[0] != '\0');
    print_message("hostile: %s\n", e->d_name);
    run_fixture(&f, &log);
    count++;
  }
  closedir(d);
  ac_test_log_free(&log);
  assert_true(count >= 25);
}

/* Contract fixtures: each fails to load with kind contract and the exact
 * message fragment of its header. */
static void test_contract_suite(void **state) {
  (void)state;
  char dir[1024];
  ac_test_path(dir, sizeof dir, "tests/lua/contract");
  DIR *d = opendir(dir);
  assert_non_null(d);
  ac_plugin_limits limits = ac_test_limits(NULL);
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0)
      continue;
    fixture f = {0};
    snprintf(f.path, sizeof f.path, "%s/%s", dir, e->d_name);
    if (strcmp(e->d_name, "bytecode.lua") == 0)
      snprintf(f.message, sizeof f.message, "attempt to load a binary chunk");
    else
      read_header(&f);
    ac_plugin *p = NULL;
    ac_outcome out;
    ac_plugin_load(f.path, &limits, &p, &out);
    assert_null(p);
    if (out.kind != AC_OUTCOME_CONTRACT || !strstr(out.message, f.message))
      fail_msg("%s: %s \"%s\", want contract \"%s\"", e->d_name, ac_outcome_kind_name(out.kind),
               out.message, f.message);
    count++;
  }
  closedir(d);
  assert_true(count >= 10);
}

static void test_good_plugin_contract(void **state) {
  (void)state;
  char path[1024];
  ac_plugin_limits limits = ac_test_limits(NULL);
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load(ac_test_path(path, sizeof path, "tests/lua/good/full.lua"), &limits, &p, &out);
  assert_non_null(p);
  const ac_plugin_info *info = ac_plugin_get_info(p);
  assert_string_equal(info->id, "full-sample");
  assert_string_equal(info->name, "Full sample");
  assert_string_equal(info->category, "test");
  assert_string_equal(info->version, "1.2.3-beta.1+build.5");
  assert_int_equal(info->caps, AC_CAP_AGENT_QUERY | AC_CAP_APPROVAL_HOOK | AC_CAP_DOCUMENT_HOOK |
                                   AC_CAP_TOOLS);
  assert_true(info->has_init);
  assert_int_equal(json_array_size(info->tools), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(info->tools, 0), "name")),
                      "lookup");
  ac_plugin_free(p);
}

/* After a timeout the state is broken and a new one is built from the
 * plugin's source; the new one serves. */
static void test_rebuild_after_timeout(void **state) {
  (void)state;
  const char *src = "local n = 0\n"
                    "return { id = 'flaky', capabilities = {'agent_query'},\n"
                    "  onAgentQuery = function(q) n = n + 1\n"
                    "    if q.text == 'spin' then while true do end end\n"
                    "    return { { type = 'n', title = tostring(n) } } end }\n";
  ac_plugin_limits limits = ac_test_limits(NULL);
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load_source("flaky.lua", src, strlen(src), &limits, &p, &out);
  assert_non_null(p);
  ac_vm *vm = ac_plugin_take_state(p);
  ac_call_context ctx = {.namespace_id = "ns", .plugin_id = "flaky"};
  json_t *spin = json_pack("{s:s}", "text", "spin");
  json_t *ok = json_pack("{s:s}", "text", "ok");
  json_t *result = NULL;
  ac_plugin_call(vm, AC_HOOK_QUERY, ok, &ctx, &result, &out);
  assert_int_equal(out.kind, AC_OUTCOME_OK);
  json_decref(result);
  ac_plugin_call(vm, AC_HOOK_QUERY, spin, &ctx, &result, &out);
  assert_int_equal(out.kind, AC_OUTCOME_TIMEOUT);
  assert_null(result);
  assert_false(ac_vm_usable(vm));
  ac_plugin_call(vm, AC_HOOK_QUERY, ok, &ctx, &result, &out);
  assert_int_equal(out.kind, AC_OUTCOME_ERROR); /* refused: must be rebuilt */
  ac_vm_free(vm);
  assert_int_equal(ac_plugin_new_state(p, &vm, &out), AC_OK);
  ac_plugin_call(vm, AC_HOOK_QUERY, ok, &ctx, &result, &out);
  assert_int_equal(out.kind, AC_OUTCOME_OK);
  /* a fresh state: its counter started again */
  assert_string_equal(json_string_value(json_object_get(json_array_get(result, 0), "title")), "1");
  json_decref(result);
  json_decref(spin);
  json_decref(ok);
  ac_vm_free(vm);
  ac_plugin_free(p);
}

/* The hook is not armed while a call runs within its deadline: the
 * plugin's own code runs at full speed, and a long but finite loop under
 * the deadline completes. */
static void test_finite_work_completes(void **state) {
  (void)state;
  const char *src = "return { id = 'work', capabilities = {'agent_query'},\n"
                    "  onAgentQuery = function() local s = 0\n"
                    "    for i = 1, 2000000 do s = s + i end\n"
                    "    return { { type = 'sum', title = tostring(s) } } end }\n";
  ac_plugin_limits limits = ac_test_limits(NULL);
  limits.timeout_ms = 5000;
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load_source("work.lua", src, strlen(src), &limits, &p, &out);
  assert_non_null(p);
  ac_vm *vm = ac_plugin_take_state(p);
  ac_call_context ctx = {.namespace_id = "ns", .plugin_id = "work"};
  json_t *q = json_pack("{s:s}", "text", "x");
  json_t *result = NULL;
  ac_plugin_call(vm, AC_HOOK_QUERY, q, &ctx, &result, &out);
  assert_int_equal(out.kind, AC_OUTCOME_OK);
  assert_string_equal(json_string_value(json_object_get(json_array_get(result, 0), "title")),
                      "2000001000000");
  json_decref(result);
  json_decref(q);
  ac_vm_free(vm);
  ac_plugin_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_plugin_contract),
      cmocka_unit_test(test_contract_suite),
      cmocka_unit_test(test_rebuild_after_timeout),
      cmocka_unit_test(test_finite_work_completes),
      cmocka_unit_test(test_hostile_suite),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
