/* test_cmd_token.c — `agentcore token`: usage, secret checks, and that the
 * printed token verifies with the claims asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/jwt.h"
#include "cli/commands.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECRET "test-secret-0123456789abcdef-0123456789"

typedef struct {
  int rc;
  char out[16384];
  char err[4096];
} run_result;

static void read_back(int fd, char *buf, size_t size) {
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, size - 1);
  buf[n > 0 ? n : 0] = '\0';
}

/* Runs ac_cmd_token with stdout and stderr captured into temp files. */
static void run(run_result *r, int argc, char **argv) {
  char out_path[] = "/tmp/ac-token-out-XXXXXX", err_path[] = "/tmp/ac-token-err-XXXXXX";
  int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
  assert_true(out_fd >= 0 && err_fd >= 0);
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  r->rc = ac_cmd_token(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  read_back(out_fd, r->out, sizeof r->out);
  read_back(err_fd, r->err, sizeof r->err);
  close(out_fd);
  close(err_fd);
  unlink(out_path);
  unlink(err_path);
}

#define RUN(r, ...)                                                                        \
  do {                                                                                     \
    char *argv_[] = {"token", __VA_ARGS__, NULL};                                          \
    run((r), (int)(sizeof argv_ / sizeof argv_[0]) - 1, argv_);                            \
  } while (0)

static int setup(void **state) {
  (void)state;
  setenv("AGENTCORE_JWT_SECRET", SECRET, 1);
  unsetenv("AGENTCORE_JWT_ISSUER");
  unsetenv("AGENTCORE_JWT_AUDIENCE");
  return 0;
}

/* Verifies the printed token (one line) and returns its claims. */
static json_t *verify_output(const run_result *r, const char *iss, const char *aud) {
  size_t n = strlen(r->out);
  assert_true(n > 0 && r->out[n - 1] == '\n');
  assert_ptr_equal(strchr(r->out, '\n'), r->out + n - 1); /* one line */
  char token[16384];
  memcpy(token, r->out, n - 1);
  token[n - 1] = '\0';
  assert_null(strchr(token, '\n'));
  ac_jwt_options o = {.alg = "HS256",
                      .secret = SECRET,
                      .secret_len = strlen(SECRET),
                      .leeway_s = 0,
                      .issuer = iss,
                      .audience = aud};
  ac_jwt_verifier *v = NULL;
  ac_err err = {0};
  assert_int_equal(ac_jwt_verifier_new(&o, &v, &err), AC_OK);
  json_t *claims = NULL;
  if (ac_jwt_verify(v, token, &claims, &err))
    fail_msg("printed token does not verify: %s", err.msg);
  ac_jwt_verifier_free(v);
  return claims;
}

static void test_help(void **state) {
  (void)state;
  run_result r;
  RUN(&r, "--help");
  assert_int_equal(r.rc, 0);
  assert_non_null(strstr(r.out, "usage: agentcore token --sub ID"));
  assert_non_null(strstr(r.out, "AGENTCORE_JWT_SECRET"));
  /* --help wins even without a secret. */
  unsetenv("AGENTCORE_JWT_SECRET");
  RUN(&r, "--sub", "x", "--help");
  assert_int_equal(r.rc, 0);
  setenv("AGENTCORE_JWT_SECRET", SECRET, 1);
}

static void test_full_token(void **state) {
  (void)state;
  run_result r;
  time_t before = time(NULL);
  RUN(&r, "--sub", "alice", "--permissions", "canManagePlugins,canEmitEvents", "--global",
      "--departments", "d1,d2", "--ttl", "120");
  if (r.rc != 0)
    fail_msg("rc %d: %s", r.rc, r.err);
  assert_string_equal(r.err, "");
  json_t *claims = verify_output(&r, NULL, NULL);
  json_int_t iat = json_integer_value(json_object_get(claims, "iat"));
  json_int_t exp = json_integer_value(json_object_get(claims, "exp"));
  assert_true(iat >= (json_int_t)before && iat <= (json_int_t)time(NULL));
  assert_int_equal(exp - iat, 120);
  assert_null(json_object_get(claims, "iss"));
  assert_null(json_object_get(claims, "aud"));

  ac_principal p;
  ac_err err = {0};
  assert_int_equal(ac_jwt_principal(claims, &p, &err), AC_OK);
  assert_string_equal(p.sub, "alice");
  assert_int_equal(p.permissions, AC_PERM_MANAGE_PLUGINS | AC_PERM_EMIT_EVENTS);
  assert_true(p.global);
  assert_int_equal(p.department_count, 2);
  assert_string_equal(p.department_ids[0], "d1");
  assert_string_equal(p.department_ids[1], "d2");
  ac_principal_clear(&p);
  json_decref(claims);
}

static void test_minimal_token_and_env_claims(void **state) {
  (void)state;
  run_result r;
  setenv("AGENTCORE_JWT_ISSUER", "https://issuer.example", 1);
  setenv("AGENTCORE_JWT_AUDIENCE", "agentcore", 1);
  RUN(&r, "--sub=bob");
  unsetenv("AGENTCORE_JWT_ISSUER");
  unsetenv("AGENTCORE_JWT_AUDIENCE");
  if (r.rc != 0)
    fail_msg("rc %d: %s", r.rc, r.err);
  json_t *claims = verify_output(&r, "https://issuer.example", "agentcore");
  assert_string_equal(json_string_value(json_object_get(claims, "sub")), "bob");
  assert_int_equal(json_integer_value(json_object_get(claims, "exp")) -
                       json_integer_value(json_object_get(claims, "iat")),
                   3600);
  assert_null(json_object_get(claims, "permissions"));
  assert_null(json_object_get(claims, "global"));
  assert_null(json_object_get(claims, "departmentIds"));
  json_decref(claims);
}

static void test_secret_checks(void **state) {
  (void)state;
  static const struct {
    const char *secret; /* NULL: unset */
  } cases[] = {{NULL}, {""}, {"short"}, {"0123456789abcdef0123456789abcde"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (cases[i].secret)
      setenv("AGENTCORE_JWT_SECRET", cases[i].secret, 1);
    else
      unsetenv("AGENTCORE_JWT_SECRET");
    run_result r;
    RUN(&r, "--sub", "alice");
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "AGENTCORE_JWT_SECRET"));
    /* One line. */
    assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
  }
  /* Exactly 32 bytes is enough. */
  setenv("AGENTCORE_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
  run_result r;
  RUN(&r, "--sub", "alice");
  assert_int_equal(r.rc, 0);
  setenv("AGENTCORE_JWT_SECRET", SECRET, 1);
}

static void test_usage_errors(void **state) {
  (void)state;
  static const struct {
    const char *args[4];
    const char *why;
  } cases[] = {
      {{NULL}, "--sub ID is required"},
      {{"--sub", NULL}, "--sub needs"},
      {{"--sub", "", NULL}, "--sub needs"},
      {{"--sub", "a", "--permissions", "canFly"}, "unknown permission \"canFly\""},
      {{"--sub", "a", "--permissions", "canEmitEvents,canemitevents"}, "unknown permission"},
      {{"--sub", "a", "--permissions", "canEmitEvents,,canQueryPlugins"}, "empty item"},
      {{"--sub", "a", "--permissions", NULL}, "--permissions needs"},
      {{"--sub", "a", "--departments", "d1,"}, "empty item"},
      {{"--sub", "a", "--ttl", "0"}, "--ttl must be"},
      {{"--sub", "a", "--ttl", "-5"}, "--ttl must be"},
      {{"--sub", "a", "--ttl", "12x"}, "--ttl must be"},
      {{"--sub", "a", "--ttl", "31536001"}, "--ttl must be"},
      {{"--sub", "a", "--ttl", ""}, "--ttl must be"},
      {{"--sub", "a", "--verbose"}, "unknown argument \"--verbose\""},
      {{"--sub", "a", "extra"}, "unknown argument \"extra\""},
      {{"--subject", "a"}, "unknown argument"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *argv[6] = {"token"};
    int argc = 1;
    for (int k = 0; k < 4 && cases[i].args[k]; k++)
      argv[argc++] = (char *)cases[i].args[k];
    run_result r;
    run(&r, argc, argv);
    if (r.rc != 2)
      fail_msg("case %zu: rc %d, want 2", i, r.rc);
    assert_string_equal(r.out, "");
    if (!strstr(r.err, cases[i].why))
      fail_msg("case %zu: stderr \"%s\" lacks \"%s\"", i, r.err, cases[i].why);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_help, setup),
      cmocka_unit_test_setup(test_full_token, setup),
      cmocka_unit_test_setup(test_minimal_token_and_env_claims, setup),
      cmocka_unit_test_setup(test_secret_checks, setup),
      cmocka_unit_test_setup(test_usage_errors, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
