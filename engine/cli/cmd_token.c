/* cmd_token.c — `agentcore token`: prints an HS256 dev token signed with
 * AGENTCORE_JWT_SECRET. */
#include "auth/jwt.h"
#include "cli/commands.h"
#include "core/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TTL_DEFAULT 3600
#define TTL_MAX 31536000 /* one year: these are dev tokens */

static const char usage[] =
    "usage: agentcore token --sub ID [--permissions a,b] [--global]\n"
    "                       [--departments a,b] [--ttl SECONDS]\n"
    "\n"
    "Prints an HS256 token signed with AGENTCORE_JWT_SECRET (at least 32 bytes).\n"
    "  --sub ID            subject (required)\n"
    "  --permissions LIST  comma-separated: canManagePlugins, canManageNamespaces,\n"
    "                      canEmitEvents, canQueryPlugins\n"
    "  --global            the token sees every namespace\n"
    "  --departments LIST  comma-separated department ids\n"
    "  --ttl SECONDS       lifetime, 1 to 31536000 (default 3600)\n"
    "iss and aud are added from AGENTCORE_JWT_ISSUER and AGENTCORE_JWT_AUDIENCE.\n";

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("agentcore token: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n(see agentcore token --help)\n", stderr);
  return 2;
}

/* Appends each comma-separated item of list to arr as a string. For
 * permissions (check set) every item must be a known name. */
static int split_list(const char *list, int check, json_t *arr) {
  const char *p = list;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    if (n == 0)
      return usage_error("empty item in list \"%s\"", list);
    char *item = strndup(p, n);
    if (!item)
      return usage_error("%s", "out of memory");
    if (check && !ac_jwt_permission_bit(item)) {
      int rc = usage_error("unknown permission \"%s\" (known: canManagePlugins, "
                           "canManageNamespaces, canEmitEvents, canQueryPlugins)",
                           item);
      free(item);
      return rc;
    }
    int bad = json_array_append_new(arr, json_string(item));
    free(item);
    if (bad)
      return usage_error("%s", "out of memory or invalid UTF-8 in list");
    if (!comma)
      return 0;
    p = comma + 1;
  }
}

/* Matches "--name VALUE" or "--name=VALUE"; advances *i past the value. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **val) {
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) != 0)
    return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  if (a[n] != '\0')
    return 0;
  if (*i + 1 >= argc) {
    *val = NULL;
    return 1;
  }
  *val = argv[++*i];
  return 1;
}

static int build_claims(int argc, char **argv, json_t *claims, long *ttl) {
  const char *sub = NULL, *val = NULL;
  json_t *perms = json_array(), *depts = json_array();
  int rc = perms && depts ? 0 : usage_error("%s", "out of memory");
  int global = 0, have_perms = 0, have_depts = 0;
  for (int i = 1; i < argc && rc == 0; i++) {
    if (strcmp(argv[i], "--global") == 0) {
      global = 1;
    } else if (option_value(argc, argv, &i, "--sub", &val)) {
      if (!val || !*val)
        rc = usage_error("%s", "--sub needs a non-empty ID");
      sub = val;
    } else if (option_value(argc, argv, &i, "--permissions", &val)) {
      rc = val ? split_list(val, 1, perms) : usage_error("%s", "--permissions needs a list");
      have_perms = 1;
    } else if (option_value(argc, argv, &i, "--departments", &val)) {
      rc = val ? split_list(val, 0, depts) : usage_error("%s", "--departments needs a list");
      have_depts = 1;
    } else if (option_value(argc, argv, &i, "--ttl", &val)) {
      char *end = NULL;
      errno = 0;
      *ttl = val ? strtol(val, &end, 10) : 0;
      if (!val || !*val || errno || *end || *ttl < 1 || *ttl > TTL_MAX)
        rc = usage_error("--ttl must be an integer from 1 to 31536000, got \"%s\"",
                         val ? val : "");
    } else {
      rc = usage_error("unknown argument \"%s\"", argv[i]);
    }
  }
  if (rc == 0 && !sub)
    rc = usage_error("%s", "--sub ID is required");
  if (rc == 0 && (json_object_set_new(claims, "sub", json_string(sub)) ||
                  (have_perms && json_object_set(claims, "permissions", perms)) ||
                  (global && json_object_set_new(claims, "global", json_true())) ||
                  (have_depts && json_object_set(claims, "departmentIds", depts))))
    rc = usage_error("%s", "--sub must be valid UTF-8");
  json_decref(perms);
  json_decref(depts);
  return rc;
}

int ac_cmd_token(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage, stdout);
      return 0;
    }
  }
  ac_config cfg;
  ac_err err;
  if (ac_config_from_env(&cfg, &err)) {
    fprintf(stderr, "agentcore token: %s\n", err.msg);
    return 2;
  }
  json_t *claims = json_object();
  if (!claims) {
    fputs("agentcore token: out of memory\n", stderr);
    return 1;
  }
  long ttl = TTL_DEFAULT;
  int rc = build_claims(argc, argv, claims, &ttl);
  if (rc) {
    json_decref(claims);
    return rc;
  }
  size_t secret_len = strlen(cfg.jwt_secret);
  if (secret_len < AC_JWT_MIN_SECRET) {
    fprintf(stderr, "agentcore token: AGENTCORE_JWT_SECRET must be set to at least %d bytes%s\n",
            AC_JWT_MIN_SECRET, secret_len ? "" : " (it is not set)");
    json_decref(claims);
    return 2;
  }
  json_int_t now = (json_int_t)time(NULL);
  if (json_object_set_new(claims, "iat", json_integer(now)) ||
      json_object_set_new(claims, "exp", json_integer(now + ttl)) ||
      (cfg.jwt_issuer[0] && json_object_set_new(claims, "iss", json_string(cfg.jwt_issuer))) ||
      (cfg.jwt_audience[0] &&
       json_object_set_new(claims, "aud", json_string(cfg.jwt_audience)))) {
    fputs("agentcore token: cannot build claims (issuer/audience must be UTF-8)\n", stderr);
    json_decref(claims);
    return 2;
  }
  char *token = NULL;
  rc = ac_jwt_sign_hs256(cfg.jwt_secret, secret_len, claims, &token, &err);
  json_decref(claims);
  if (rc) {
    fprintf(stderr, "agentcore token: %s\n", err.msg);
    return rc == AC_ERR_LIMIT ? 2 : 1;
  }
  printf("%s\n", token);
  free(token);
  return fflush(stdout) == 0 ? 0 : 1;
}
