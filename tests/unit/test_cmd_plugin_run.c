/* test_cmd_plugin_run.c — `agentcore plugin run` of the built-in plugins
 * against a live receiver (the in-process HTTP sink): the command builds
 * its HTTP client from AGENTCORE_HTTP_ALLOW_CIDRS and the hook really
 * delivers. A hook runs on the server's call path: its transfers wait on
 * the event loop, under the call's deadline, with the context the server
 * gives (department included). Runs the binary named by AC_BINARY. */
#include "fixtures.h"
#include "http_sink.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int setup(void **state) {
  ac_sink *s = ac_sink_start();
  *state = s;
  return s ? 0 : -1;
}

static int teardown(void **state) {
  ac_sink_stop(*state);
  return 0;
}

/* Runs agentcore with args and the environment plus allow (the value of
 * AGENTCORE_HTTP_ALLOW_CIDRS); stdout into out. Returns the exit code. */
static int run_cli(const char *allow, const char *const args[], char *out, size_t out_size) {
  const char *bin = getenv("AC_BINARY");
  if (!bin)
    fail_msg("AC_BINARY is not set");
  const char *argv[16] = {bin};
  size_t argc = 1;
  for (; args[argc - 1] && argc < 15; argc++)
    argv[argc] = args[argc - 1];
  argv[argc] = NULL;

  size_t n = 0;
  while (environ[n])
    n++;
  char **envp = calloc(n + 4, sizeof *envp);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "AGENTCORE_", 10) != 0)
      envp[k++] = environ[i];
  char allow_env[256];
  snprintf(allow_env, sizeof allow_env, "AGENTCORE_HTTP_ALLOW_CIDRS=%s", allow);
  envp[k++] = allow_env;
  envp[k++] = "AGENTCORE_LOG_LEVEL=error";
  envp[k++] = "AGENTCORE_HOOK_TIMEOUT_MS=3000";

  int fds[2];
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, envp), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  size_t len = 0;
  ssize_t got;
  while ((got = read(fds[0], out + len, out_size - 1 - len)) > 0)
    len += (size_t)got;
  out[len] = '\0';
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  free(envp);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static json_t *parse(const char *out) {
  json_t *doc = json_loads(out, 0, NULL);
  if (!doc)
    fail_msg("not JSON: %s", out);
  return doc;
}

static const char *plugin(char *buf, size_t n, const char *name) {
  return ac_test_path(buf, n, name);
}

static void test_webhook_delivery(void **state) {
  ac_sink *s = *state;
  char path[1024], config[512], out[65536];
  snprintf(config, sizeof config, "{\"url\":\"%s/hook\",\"secret\":\"cli-secret\"}",
           ac_sink_url(s));
  const char *args[] = {"plugin", "run", plugin(path, sizeof path, "plugins/webhooks.lua"),
                        "--hook", "onApprovalCreated", "--event",
                        "{\"id\":\"ev-9\",\"approvalId\":\"a-1\",\"data\":{\"k\":\"v\"}}",
                        "--config", config, "--namespace", "demo", NULL};
  int rc = run_cli("127.0.0.0/8", args, out, sizeof out);
  if (rc != 0)
    fail_msg("exit %d: %s", rc, out);
  json_t *doc = parse(out);
  assert_true(json_is_true(json_object_get(json_object_get(doc, "result"), "delivered")));
  json_decref(doc);

  ac_sink_request req;
  assert_int_equal(ac_sink_request_get(s, 0, &req), AC_OK);
  assert_string_equal(ac_sink_header_get(&req, "webhook-id"), "msg_ev-9");
  json_t *body = json_loads(req.body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(body, "event")), "approval.created");
  assert_string_equal(json_string_value(json_object_get(body, "approvalId")), "a-1");
  assert_string_equal(json_string_value(json_object_get(body, "namespaceId")), "demo");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(body, "data"), "k")), "v");
  assert_non_null(json_string_value(json_object_get(body, "occurredAt")));
  json_decref(body);
  unsigned char md[32];
  unsigned int mdlen = 0;
  HMAC(EVP_sha256(), "cli-secret", 10, (const unsigned char *)req.body, req.body_len, md, &mdlen);
  char want[80] = "sha256=";
  for (int i = 0; i < 32; i++)
    snprintf(want + 7 + 2 * i, 3, "%02x", md[i]);
  assert_string_equal(ac_sink_header_get(&req, "x-agentcore-signature"), want);
  ac_sink_request_free(&req);
}

static void test_webhook_retry_and_denied(void **state) {
  ac_sink *s = *state;
  char path[1024], config[512], out[65536];
  snprintf(config, sizeof config, "{\"url\":\"%s/hook\"}", ac_sink_url(s));
  const char *args[] = {"plugin", "run", plugin(path, sizeof path, "plugins/webhooks.lua"),
                        "--hook", "onDocumentReady", "--event", "{\"documentId\":\"d-1\"}",
                        "--config", config, NULL};
  ac_sink_push(s, (ac_sink_response){.status = 503, .headers = {"Retry-After", "9"}});
  assert_int_equal(run_cli("127.0.0.0/8", args, out, sizeof out), 1);
  json_t *doc = parse(out);
  json_t *err = json_object_get(doc, "error");
  assert_string_equal(json_string_value(json_object_get(err, "kind")), "retry");
  assert_int_equal(json_integer_value(json_object_get(err, "delaySeconds")), 9);
  json_decref(doc);

  /* no allow list: loopback is refused, nothing reaches the sink */
  assert_int_equal(run_cli("", args, out, sizeof out), 1);
  doc = parse(out);
  err = json_object_get(doc, "error");
  assert_string_equal(json_string_value(json_object_get(err, "kind")), "error");
  assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "denied: "));
  json_decref(doc);
  assert_int_equal(ac_sink_count(s), 1);

  /* a bad allow list is a usage error */
  assert_int_equal(run_cli("not-a-cidr", args, out, sizeof out), 2);
}

static void test_opendatabot_api(void **state) {
  ac_sink *s = *state;
  ac_sink_push(s, (ac_sink_response){.status = 200,
                                     .body = "{\"full_name\":\"ПрАТ \\\"Приклад\\\"\","
                                             "\"ceo_name\":\"Олег Іваненко\"}"});
  char path[1024], config[512], out[65536];
  snprintf(config, sizeof config, "{\"mode\":\"api\",\"apiKey\":\"key-1\",\"baseUrl\":\"%s\"}",
           ac_sink_url(s));
  const char *args[] = {"plugin", "run", plugin(path, sizeof path, "plugins/opendatabot.lua"),
                        "--hook", "onAgentQuery", "--event", "{\"text\":\"код 21560045\"}",
                        "--config", config, NULL};
  int rc = run_cli("127.0.0.0/8", args, out, sizeof out);
  if (rc != 0)
    fail_msg("exit %d: %s", rc, out);
  json_t *doc = parse(out);
  json_t *item = json_array_get(json_object_get(doc, "result"), 0);
  assert_string_equal(json_string_value(json_object_get(item, "title")), "ПрАТ \"Приклад\"");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(item, "data"), "director")),
      "Олег Іваненко");
  json_decref(doc);
  ac_sink_request req;
  assert_int_equal(ac_sink_request_get(s, 0, &req), AC_OK);
  assert_string_equal(req.target, "/company/21560045?apiKey=key-1");
  ac_sink_request_free(&req);
}

/* A hook whose first request is never answered gets a timeout at its
 * request's timeoutMs, goes on, makes a second request that answers late,
 * and returns what it saw; --department reaches context.departmentId. */
static void test_waits_through_the_loop(void **state) {
  ac_sink *s = *state;
  ac_sink_push(s, (ac_sink_response){.hang = 1});
  ac_sink_push(s, (ac_sink_response){.status = 200, .body = "late", .delay_ms = 200});
  char file[] = "/tmp/ac-run-wait-XXXXXX.lua", out[65536];
  int fd = mkstemps(file, 4);
  assert_true(fd >= 0);
  dprintf(fd,
          "return { id = 'waiter', capabilities = { 'agent_query' },\n"
          "  onAgentQuery = function(q, context)\n"
          "    local _, err = context.http.request{ url = '%s/hang', timeoutMs = 300 }\n"
          "    local res = assert(context.http.get('%s/late'))\n"
          "    return { { type = 't', title = err }, { type = 't', title = res.body },\n"
          "             { type = 't', title = context.departmentId } }\n"
          "  end }\n",
          ac_sink_url(s), ac_sink_url(s));
  close(fd);
  const char *args[] = {"plugin", "run", file, "--hook", "onAgentQuery", "--event",
                        "{\"query\":\"x\"}", "--department", "d-7", NULL};
  int rc = run_cli("127.0.0.0/8", args, out, sizeof out);
  unlink(file);
  if (rc != 0)
    fail_msg("exit %d: %s", rc, out);
  json_t *doc = parse(out);
  json_t *results = json_object_get(doc, "result");
  const char *timed_out = json_string_value(json_object_get(json_array_get(results, 0), "title"));
  if (!timed_out || strncmp(timed_out, "timeout", 7) != 0)
    fail_msg("the hanging request ended as %s", timed_out ? timed_out : "(nothing)");
  assert_string_equal(json_string_value(json_object_get(json_array_get(results, 1), "title")),
                      "late");
  assert_string_equal(json_string_value(json_object_get(json_array_get(results, 2), "title")),
                      "d-7");
  json_int_t ms = json_integer_value(json_object_get(doc, "durationMs"));
  if (ms < 450 || ms > 2500)
    fail_msg("the hook took %lld ms: 300 ms of timeout and 200 ms of delay expected",
             (long long)ms);
  json_decref(doc);
  assert_int_equal(ac_sink_count(s), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_webhook_delivery, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_retry_and_denied, setup, teardown),
      cmocka_unit_test_setup_teardown(test_opendatabot_api, setup, teardown),
      cmocka_unit_test_setup_teardown(test_waits_through_the_loop, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
