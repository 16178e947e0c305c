/* hostflow_fixture.c — plugin directories, tenants, events, a second
 * server instance and webhook signature checks for the host-flow tests. */
#include "hostflow_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>



long long ac_hostflow_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- plugins on disk --------------------------------------------------------- */

int ac_hostflow_plugin_dir(char *dir, size_t size, const char *const *files) {
  snprintf(dir, size, "/tmp/agentcore-hostflow-XXXXXX");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "hostflow: mkdtemp: %s\n", strerror(errno));
    return -1;
  }
  for (size_t i = 0; files && files[i]; i += 2) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    FILE *f = fopen(path, "w");
    if (!f || fputs(files[i + 1], f) < 0 || fclose(f) != 0) {
      fprintf(stderr, "hostflow: cannot write %s\n", path);
      return -1;
    }
  }
  return 0;
}

void ac_hostflow_plugin_dir_remove(const char *dir, const char *const *files) {
  if (!dir[0])
    return;
  for (size_t i = 0; files && files[i]; i += 2) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* ---- tenants and configs ------------------------------------------------------ */

/* POSTs body to path; 0 when the answer is want, else prints it. */
static int post_expect(const ac_test_server *s, const char *token, const char *path,
                       const char *body, long want) {
  ac_test_response res;
  long st = ac_test_call(s, "POST", path, token, body, &res);
  if (st != want)
    fprintf(stderr, "hostflow: POST %s %s answered %ld (%s): %.1000s\n", path, body, st, res.err,
            res.body ? res.body : "");
  ac_test_response_free(&res);
  return st == want ? 0 : -1;
}

int ac_hostflow_tenant(const ac_test_server *s, const char *token, const char *dept,
                       const char *ns) {
  char body[512];
  snprintf(body, sizeof body, "{\"id\":\"%s\",\"name\":\"Department %s\"}", dept, dept);
  ac_test_response res;
  long st = ac_test_call(s, "POST", "/api/v1/departments", token, body, &res);
  ac_test_response_free(&res);
  if (st != 201 && st != 409) {
    fprintf(stderr, "hostflow: POST /api/v1/departments answered %ld\n", st);
    return -1;
  }
  snprintf(body, sizeof body, "{\"id\":\"%s\",\"name\":\"Namespace %s\",\"departmentId\":\"%s\"}",
           ns, ns, dept);
  return post_expect(s, token, "/api/v1/namespaces", body, 201);
}

int ac_hostflow_enable(const ac_test_server *s, const char *token, const char *ns,
                       const char *plugin, const char *config) {
  char path[256];
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/plugins/%s", ns, plugin);
  size_t n = strlen(config) + 32;
  char *body = malloc(n);
  if (!body)
    return -1;
  snprintf(body, n, "{\"config\":%s}", config);
  int rc = post_expect(s, token, path, body, 201);
  free(body);
  return rc;
}

/* ---- events ---------------------------------------------------------------------- */

char *ac_hostflow_emit(const ac_test_server *s, const char *token, const char *ns,
                       const char *body, long *status) {
  char path[256];
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/events", ns);
  ac_test_response res;
  *status = ac_test_call(s, "POST", path, token, body, &res);
  const char *id = json_string_value(json_object_get(res.json, "eventId"));
  char *out = NULL;
  if ((*status == 202 || *status == 200) && id &&
      ac_test_expect(&res, *status, "event-accepted.json"))
    out = strdup(id);
  else
    fprintf(stderr, "hostflow: POST %s answered %ld: %.1000s\n", path, *status,
            res.body ? res.body : "");
  ac_test_response_free(&res);
  return out;
}

json_t *ac_hostflow_event(const ac_test_server *s, const char *token, const char *ns,
                          const char *event_id, int check) {
  char path[512];
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/events/%s", ns, event_id);
  ac_test_response res;
  ac_test_call(s, "GET", path, token, NULL, &res);
  json_t *out = NULL;
  if (res.status == 200 && res.json && (!check || ac_test_expect(&res, 200, "event-status.json")))
    out = json_incref(res.json);
  else if (res.status != 200)
    fprintf(stderr, "hostflow: GET %s answered %ld: %.1000s\n", path, res.status,
            res.body ? res.body : "");
  ac_test_response_free(&res);
  return out;
}

json_t *ac_hostflow_wait_done(const ac_test_server *s, const char *token, const char *ns,
                              const char *event_id, int timeout_ms) {
  long long end = ac_hostflow_now_ms() + timeout_ms;
  json_t *st = NULL;
  for (;;) {
    json_decref(st);
    st = ac_hostflow_event(s, token, ns, event_id, 0);
    const char *v = json_string_value(json_object_get(st, "status"));
    if ((v && strcmp(v, "done") == 0) || ac_hostflow_now_ms() >= end)
      return st;
    pause_ms(50);
  }
}

json_t *ac_hostflow_run(const json_t *status, const char *plugin) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(status, "runs"), i, r) {
    const char *id = json_string_value(json_object_get(r, "pluginId"));
    if (id && strcmp(id, plugin) == 0)
      return r;
  }
  return NULL;
}

/* ---- a second instance on the same database ----------------------------------------- */

int ac_hostflow_spawn(const ac_test_server *base, const char *const *env, ac_test_server *out) {
  return ac_test_server_start_on(base, env, out);
}

void ac_hostflow_kill(ac_test_server *s) {
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  s->pid = 0;
}

/* ---- webhook checks ----------------------------------------------------------------- */

static int hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char out[32]) {
  unsigned len = 0;
  return HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &len) && len == 32;
}

int ac_hostflow_signed_ok(const ac_sink_request *r, const char *secret) {
  const char *sig = ac_sink_header_get(r, "x-agentcore-signature");
  const char *id = ac_sink_header_get(r, "webhook-id");
  const char *ts = ac_sink_header_get(r, "webhook-timestamp");
  const char *wsig = ac_sink_header_get(r, "webhook-signature");
  if (!sig || !id || !ts || !wsig) {
    fprintf(stderr, "hostflow: signature headers missing\n");
    return 0;
  }
  unsigned char mac[32];
  if (!hmac_sha256(secret, strlen(secret), r->body, r->body_len, mac))
    return 0;
  char hex[7 + 65] = "sha256=";
  for (int i = 0; i < 32; i++)
    snprintf(hex + 7 + 2 * i, 3, "%02x", mac[i]);
  if (strcmp(sig, hex) != 0) {
    fprintf(stderr, "hostflow: x-agentcore-signature %s, expected %s\n", sig, hex);
    return 0;
  }

  /* Standard Webhooks: the key is the secret, or the bytes a whsec_ holds */
  unsigned char key[256];
  size_t key_len;
  if (strncmp(secret, "whsec_", 6) == 0) {
    const char *b64 = secret + 6;
    size_t n = strlen(b64);
    if (n > 4 * (sizeof key / 3) || n % 4)
      return 0;
    int got = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)n);
    if (got < 0)
      return 0;
    key_len = (size_t)got - (n >= 1 && b64[n - 1] == '=') - (n >= 2 && b64[n - 2] == '=');
  } else {
    key_len = strlen(secret);
    if (key_len > sizeof key)
      return 0;
    memcpy(key, secret, key_len);
  }
  size_t signed_len = strlen(id) + 1 + strlen(ts) + 1 + r->body_len;
  char *msg = malloc(signed_len + 1);
  if (!msg)
    return 0;
  int n = snprintf(msg, signed_len + 1, "%s.%s.", id, ts);
  memcpy(msg + n, r->body, r->body_len);
  int ok = hmac_sha256(key, key_len, msg, signed_len, mac);
  free(msg);
  unsigned char b64[64];
  EVP_EncodeBlock(b64, mac, 32);
  char want[80];
  snprintf(want, sizeof want, "v1,%s", (const char *)b64);
  /* the header may carry several space-separated signatures */
  int found = 0;
  for (const char *p = wsig; ok && *p && !found;) {
    size_t len = strcspn(p, " ");
    found = len == strlen(want) && strncmp(p, want, len) == 0;
    p += len;
    p += strspn(p, " ");
  }
  if (!found)
    fprintf(stderr, "hostflow: webhook-signature %s, expected %s\n", wsig, want);
  return found;
}
