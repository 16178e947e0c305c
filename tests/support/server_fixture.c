/* server_fixture.c — a real `agentcore serve` per test program, HTTP calls
 * through libcurl, dev tokens and schema checks for integration tests. */
#include "server_fixture.h"
#include "fixtures.h"

#include "auth/jwt.h"
#include "core/buf.h"
#include "schema/schema.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define START_WAIT_MS 15000
#define STOP_WAIT_MS 5000
#define RESPONSE_MAX (8u << 20)

static int fail(ac_test_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ac_test_server *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof s->err, fmt, ap);
  va_end(ap);
  fprintf(stderr, "server_fixture: %s\n", s->err);
  return -1;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- database --------------------------------------------------------------- */

/* Appends key='value' (libpq quoting: backslash and quote escaped). */
static void conninfo_add(ac_buf *b, const char *key, const char *value) {
  ac_buf_printf(b, "%s%s='", b->len ? " " : "", key);
  for (const char *p = value; *p; p++) {
    if (*p == '\\' || *p == '\'')
      ac_buf_append(b, "\\", 1);
    ac_buf_append(b, p, 1);
  }
  ac_buf_append(b, "'", 1);
}

/* url's settings as a key=value string with dbname replaced. */
static int conninfo_with_db(ac_test_server *s, const char *url, const char *dbname, char *out,
                            size_t size) {
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(url, &perr);
  if (!opts) {
    int rc = fail(s, "AGENTCORE_TEST_DATABASE_URL does not parse: %s", perr ? perr : "?");
    PQfreemem(perr);
    return rc;
  }
  ac_buf b = AC_BUF_INIT(size - 1);
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (o->val && *o->val && strcmp(o->keyword, "dbname") != 0)
      conninfo_add(&b, o->keyword, o->val);
  conninfo_add(&b, "dbname", dbname);
  PQconninfoFree(opts);
  if (!b.data || b.len >= size) {
    ac_buf_free(&b);
    return fail(s, "conninfo too long");
  }
  memcpy(out, b.data, b.len + 1);
  ac_buf_free(&b);
  return 0;
}

static void quiet_notice(void *ud, const char *message) {
  (void)ud;
  (void)message; /* "does not exist, skipping" is expected */
}

PGconn *ac_test_server_db(ac_test_server *s, int admin) {
  PGconn *c = PQconnectdb(admin ? s->admin_conninfo : s->conninfo);
  PQsetNoticeProcessor(c, quiet_notice, NULL);
  if (PQstatus(c) != CONNECTION_OK) {
    fail(s, "cannot connect to the %s database: %s", admin ? "admin" : "test", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  return c;
}

char *ac_test_server_query(ac_test_server *s, int admin, const char *sql, int nparams,
                           const char *const *params) {
  PGconn *c = ac_test_server_db(s, admin);
  if (!c)
    return NULL;
  PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
  char *out = NULL;
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_TUPLES_OK)
    out = strdup(PQntuples(r) && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
  else if (st == PGRES_COMMAND_OK)
    out = strdup("");
  else
    fail(s, "query failed: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return out;
}

/* Runs a statement with an identifier (CREATE/DROP DATABASE cannot take
 * parameters), quoted by libpq, on the admin connection. */
static int admin_ddl(ac_test_server *s, const char *before, const char *ident, const char *after) {
  PGconn *c = ac_test_server_db(s, 1);
  if (!c)
    return -1;
  char *q = PQescapeIdentifier(c, ident, strlen(ident));
  char sql[512];
  snprintf(sql, sizeof sql, "%s%s%s", before, q ? q : "\"\"", after);
  PQfreemem(q);
  PGresult *r = PQexec(c, sql);
  int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : fail(s, "%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return rc;
}

int ac_test_server_kill_backends(ac_test_server *s) {
  const char *p[] = {s->dbname};
  char *n = ac_test_server_query(s, 1,
                                 "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                                 "FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                                 1, p);
  if (!n)
    return -1;
  int count = atoi(n);
  free(n);
  return count;
}

/* Runs DDL naming databases (ALTER DATABASE takes no parameters: the
 * identifiers are quoted by libpq). */
static int admin_exec(ac_test_server *s, PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : fail(s, "%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  return rc;
}

int ac_test_server_db_outage(ac_test_server *s, int down) {
  char away[96];
  snprintf(away, sizeof away, "%s_away", s->dbname);
  PGconn *c = ac_test_server_db(s, 1);
  if (!c)
    return -1;
  char *db = PQescapeIdentifier(c, s->dbname, strlen(s->dbname));
  char *aw = PQescapeIdentifier(c, away, strlen(away));
  char refuse[256], rename_away[256], rename_back[256], allow[256];
  snprintf(refuse, sizeof refuse, "ALTER DATABASE %s ALLOW_CONNECTIONS false", db);
  snprintf(rename_away, sizeof rename_away, "ALTER DATABASE %s RENAME TO %s", db, aw);
  snprintf(rename_back, sizeof rename_back, "ALTER DATABASE %s RENAME TO %s", aw, db);
  snprintf(allow, sizeof allow, "ALTER DATABASE %s ALLOW_CONNECTIONS true", db);
  PQfreemem(db);
  PQfreemem(aw);
  int rc;
  if (down) {
    /* refusing new connections first makes the rename race-free even while
     * the server keeps reconnecting */
    rc = admin_exec(s, c, refuse);
    int killed = rc ? -1 : ac_test_server_kill_backends(s);
    rc = killed < 0 ? -1 : admin_exec(s, c, rename_away);
    if (rc == 0)
      rc = killed;
  } else {
    rc = admin_exec(s, c, rename_back);
    if (rc == 0)
      rc = admin_exec(s, c, allow);
  }
  PQfinish(c);
  return rc;
}

/* ---- child process ------------------------------------------------------------ */

int ac_test_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

/* environ with every entry of `set` overriding the same name. Strings in
 * the result are borrowed from environ and set; the array is malloc'd. */
static char **build_env(char *const *set, size_t nset) {
  size_t n = 0;
  while (environ[n])
    n++;
  char **out = calloc(n + nset + 1, sizeof *out);
  if (!out)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t name_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int overridden = 0;
    for (size_t j = 0; j < nset && !overridden; j++)
      overridden = strncmp(set[j], environ[i], name_len) == 0 && set[j][name_len] == '=';
    if (!overridden)
      out[k++] = environ[i];
  }
  for (size_t j = 0; j < nset; j++) {
    const char *eq = strchr(set[j], '=');
    size_t name_len = eq ? (size_t)(eq - set[j]) : strlen(set[j]);
    int later = 0; /* a later entry with the same name wins */
    for (size_t m = j + 1; m < nset && !later; m++)
      later = strncmp(set[m], set[j], name_len + 1) == 0;
    if (!later)
      out[k++] = set[j];
  }
  return out;
}

static void print_log_tail(const ac_test_server *s) {
  FILE *f = fopen(s->log_path, "r");
  if (!f)
    return;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, n > 4000 ? n - 4000 : 0, SEEK_SET);
  char buf[4001];
  size_t got = fread(buf, 1, 4000, f);
  buf[got] = '\0';
  fclose(f);
  fprintf(stderr, "---- agentcore serve log (%s) ----\n%s\n----\n", s->log_path, buf);
}

/* 1 once GET /healthz answers 200. */
static int healthy(const ac_test_server *s) {
  ac_test_response res;
  ac_test_request req = {.method = "GET", .path = "/healthz"};
  long st = ac_test_http(s, &req, &res);
  ac_test_response_free(&res);
  return st == 200;
}

/* Reaps the child if it has exited; returns its status or -1. */
static int reap(ac_test_server *s, int wait_flag) {
  int status = 0;
  pid_t r = waitpid(s->pid, &status, wait_flag);
  if (r != s->pid)
    return -1;
  s->pid = 0;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
}

/* Starts `agentcore serve` for s (its conninfo and, when s owns it, its
 * database are set) on a free port with the default test settings and env
 * (a later setting of the same name wins), and waits for /healthz. */
static int launch(ac_test_server *s, const char *bin, const char *const *env) {
  s->port = ac_test_free_port();
  if (s->port <= 0)
    return fail(s, "no free port");
  snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d", s->port);
  snprintf(s->log_path, sizeof s->log_path, "/tmp/agentcore-test-%s-%d.log",
           s->dbname[0] ? s->dbname : "second", s->port);

  char db_env[2100], listen_env[64];
  snprintf(db_env, sizeof db_env, "AGENTCORE_DATABASE_URL=%s", s->conninfo);
  snprintf(listen_env, sizeof listen_env, "AGENTCORE_LISTEN=127.0.0.1:%d", s->port);
  char *set[64] = {db_env,
                   listen_env,
                   "AGENTCORE_JWT_SECRET=" AC_TEST_JWT_SECRET,
                   "AGENTCORE_JWT_ALG=HS256",
                   "AGENTCORE_LOG_LEVEL=warn",
                   "AGENTCORE_HOOK_TIMEOUT_MS=300"};
  size_t nset = 6;
  for (size_t i = 0; env && env[i] && nset < 63; i++)
    set[nset++] = (char *)env[i];
  char **envp = build_env(set, nset);
  if (!envp)
    return fail(s, "out of memory");
  int log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    free(envp);
    return fail(s, "cannot open %s: %s", s->log_path, strerror(errno));
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    /* the server must not outlive a crashed test */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    char *argv[] = {(char *)"agentcore", (char *)"serve", NULL};
    execve(bin, argv, envp);
    _exit(127);
  }
  close(log_fd);
  free(envp);
  if (pid < 0)
    return fail(s, "fork: %s", strerror(errno));
  s->pid = pid;
  long deadline = now_ms() + START_WAIT_MS;
  while (now_ms() < deadline) {
    if (healthy(s))
      return 0;
    int st = reap(s, WNOHANG);
    if (st >= 0) {
      print_log_tail(s);
      if (s->dbname[0])
        admin_ddl(s, "DROP DATABASE IF EXISTS ", s->dbname, " WITH (FORCE)");
      return fail(s, "agentcore serve exited with status %d during startup", st);
    }
    sleep_ms(50);
  }
  print_log_tail(s);
  ac_test_server_stop(s);
  return fail(s, "agentcore serve did not answer /healthz within %d ms", START_WAIT_MS);
}

int ac_test_server_start_on(const ac_test_server *base, const char *const *env,
                            ac_test_server *out) {
  memset(out, 0, sizeof *out);
  const char *bin = getenv("AC_BINARY");
  if (!bin || !*bin || access(bin, X_OK) != 0)
    return fail(out, "AC_BINARY is not set or not executable (run through ctest)");
  snprintf(out->admin_conninfo, sizeof out->admin_conninfo, "%s", base->admin_conninfo);
  snprintf(out->conninfo, sizeof out->conninfo, "%s", base->conninfo);
  /* dbname stays empty: stopping this server leaves base's database */
  return launch(out, bin, env);
}

int ac_test_server_start(ac_test_server *s, const char *name, const char *const *env) {
  memset(s, 0, sizeof *s);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const char *url = getenv("AGENTCORE_TEST_DATABASE_URL");
  const char *bin = getenv("AC_BINARY");
  if (!url || !*url)
    return fail(s, "AGENTCORE_TEST_DATABASE_URL is not set (run through scripts/dev test, or "
                   "export it from scripts/pg url)");
  if (!bin || !*bin || access(bin, X_OK) != 0)
    return fail(s, "AC_BINARY is not set or not executable (run through ctest)");
  if (strlen(name) > 40 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name))
    return fail(s, "bad server name \"%s\"", name);
  snprintf(s->admin_conninfo, sizeof s->admin_conninfo, "%s", url);
  snprintf(s->dbname, sizeof s->dbname, "t_%s_%ld", name, (long)getpid());
  if (conninfo_with_db(s, url, s->dbname, s->conninfo, sizeof s->conninfo))
    return -1;
  /* a database left by a crashed earlier run with our pid goes first */
  if (admin_ddl(s, "DROP DATABASE IF EXISTS ", s->dbname, " WITH (FORCE)") ||
      admin_ddl(s, "CREATE DATABASE ", s->dbname, ""))
    return -1;
  return launch(s, bin, env);
}

int ac_test_server_stop(ac_test_server *s) {
  int status = -1;
  if (s->pid > 0) {
    kill(s->pid, SIGTERM);
    long deadline = now_ms() + STOP_WAIT_MS;
    while ((status = reap(s, WNOHANG)) < 0 && now_ms() < deadline)
      sleep_ms(20);
    if (status < 0) {
      fprintf(stderr, "server_fixture: serve did not stop within %d ms; killing it\n", STOP_WAIT_MS);
      kill(s->pid, SIGKILL);
      status = reap(s, 0);
    }
    if (status != 0)
      print_log_tail(s);
    else
      unlink(s->log_path); /* kept only when something went wrong */
  }
  if (s->dbname[0] && s->admin_conninfo[0]) {
    char away[96];
    snprintf(away, sizeof away, "%s_away", s->dbname); /* left by a failed outage test */
    admin_ddl(s, "DROP DATABASE IF EXISTS ", away, " WITH (FORCE)");
    admin_ddl(s, "DROP DATABASE IF EXISTS ", s->dbname, " WITH (FORCE)");
    s->dbname[0] = '\0';
  }
  return status;
}

/* ---- HTTP ------------------------------------------------------------------------ */

typedef struct upload {
  const char *data;
  size_t len, off;
} upload;

static size_t read_body(char *out, size_t size, size_t n, void *ud) {
  upload *u = ud;
  size_t want = size * n, left = u->len - u->off;
  if (want > left)
    want = left;
  if (want > 65536)
    want = 65536; /* several chunks */
  memcpy(out, u->data + u->off, want);
  u->off += want;
  return want;
}

static size_t write_body(char *p, size_t size, size_t n, void *ud) {
  return ac_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

static size_t write_header(char *p, size_t size, size_t n, void *ud) {
  ac_buf *b = ud;
  if (n * size >= 5 && strncmp(p, "HTTP/", 5) == 0)
    ac_buf_reset(b); /* a 100 Continue came first: keep the final block */
  return ac_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

long ac_test_http(const ac_test_server *s, const ac_test_request *req, ac_test_response *res) {
  memset(res, 0, sizeof *res);
  CURL *c = curl_easy_init();
  if (!c) {
    snprintf(res->err, sizeof res->err, "curl_easy_init failed");
    return 0;
  }
  char url[2048];
  snprintf(url, sizeof url, "%s%s", s->base_url, req->path);
  ac_buf body = AC_BUF_INIT(RESPONSE_MAX), head = AC_BUF_INIT(1u << 20);
  struct curl_slist *hdrs = NULL;
  char line[9000];
  int has_expect = 0;
  if (req->token) {
    snprintf(line, sizeof line, "Authorization: Bearer %s", req->token);
    hdrs = curl_slist_append(hdrs, line);
  }
  if (req->content_type) {
    snprintf(line, sizeof line, "Content-Type: %s", req->content_type);
    hdrs = curl_slist_append(hdrs, line);
  }
  for (size_t i = 0; req->headers && req->headers[i]; i++) {
    hdrs = curl_slist_append(hdrs, req->headers[i]);
    has_expect |= strncasecmp(req->headers[i], "Expect:", 7) == 0;
  }
  if (!has_expect)
    hdrs = curl_slist_append(hdrs, "Expect:");
  upload up = {req->body, req->body ? (req->body_len ? req->body_len : strlen(req->body)) : 0, 0};
  if (req->body && req->chunked) {
    hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
  } else if (req->body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up.len);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
  if (strcmp(req->method, "HEAD") == 0)
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, write_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  CURLcode cc = curl_easy_perform(c);
  if (cc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
  else
    snprintf(res->err, sizeof res->err, "%s", curl_easy_strerror(cc));
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  res->headers = ac_buf_take(&head);
  res->body_len = body.len;
  res->body = ac_buf_take(&body);
  ac_buf_free(&head);
  ac_buf_free(&body);
  if (res->body && res->body_len)
    res->json = json_loadb(res->body, res->body_len, JSON_REJECT_DUPLICATES, NULL);
  return res->status;
}

long ac_test_call(const ac_test_server *s, const char *method, const char *path, const char *token,
                  const char *body, ac_test_response *res) {
  ac_test_request req = {.method = method,
                         .path = path,
                         .token = token,
                         .body = body,
                         .content_type = body ? "application/json" : NULL};
  return ac_test_http(s, &req, res);
}

const char *ac_test_header(const ac_test_response *res, const char *name, char *out, size_t size) {
  size_t nlen = strlen(name);
  for (const char *p = res->headers; p && *p;) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (len > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
      const char *v = p + nlen + 1, *end = p + len;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      while (end > v && (end[-1] == '\r' || end[-1] == ' '))
        end--;
      snprintf(out, size, "%.*s", (int)(end - v), v);
      return out;
    }
    p = eol ? eol + 1 : p + len;
  }
  return NULL;
}

void ac_test_response_free(ac_test_response *res) {
  free(res->headers);
  free(res->body);
  json_decref(res->json);
  memset(res, 0, sizeof *res);
}

/* ---- tokens ------------------------------------------------------------------------ */

char *ac_test_sign(const json_t *claims) {
  char *token = NULL;
  ac_err err = {0};
  if (ac_jwt_sign_hs256(AC_TEST_JWT_SECRET, strlen(AC_TEST_JWT_SECRET), claims, &token, &err)) {
    fprintf(stderr, "server_fixture: signing failed: %s\n", err.msg);
    return NULL;
  }
  return token;
}

char *ac_test_token(const char *sub, unsigned perms, int global, const char *const *departments,
                    long ttl_s) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{AC_PERM_MANAGE_PLUGINS, "canManagePlugins"},
               {AC_PERM_MANAGE_NAMESPACES, "canManageNamespaces"},
               {AC_PERM_EMIT_EVENTS, "canEmitEvents"},
               {AC_PERM_QUERY_PLUGINS, "canQueryPlugins"}};
  json_t *p = json_array(), *d = json_array();
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (perms & names[i].bit)
      json_array_append_new(p, json_string(names[i].name));
  for (size_t i = 0; departments && departments[i]; i++)
    json_array_append_new(d, json_string(departments[i]));
  json_t *claims = json_pack("{s:s, s:o, s:b, s:o, s:I}", "sub", sub, "permissions", p, "global",
                             global, "departmentIds", d, "exp", (json_int_t)(time(NULL) + ttl_s));
  char *token = ac_test_sign(claims);
  json_decref(claims);
  return token;
}

/* ---- schemas ------------------------------------------------------------------------- */

int ac_test_schema_valid(const char *file, const json_t *instance) {
  char rel[512], path[1024];
  snprintf(rel, sizeof rel, "schemas/%s", file);
  ac_test_path(path, sizeof path, rel);
  json_error_t jerr;
  json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if (!doc) {
    fprintf(stderr, "schema %s: %s (line %d)\n", path, jerr.text, jerr.line);
    return 0;
  }
  ac_schema *schema = NULL;
  ac_err err = {0};
  int rc = ac_schema_compile(doc, &schema, &err);
  json_decref(doc);
  if (rc) {
    fprintf(stderr, "schema %s does not compile: %s\n", path, err.msg);
    return 0;
  }
  json_t *errors = NULL;
  int valid = ac_schema_validate(schema, instance, &errors) == 0;
  if (!valid) {
    char *e = json_dumps(errors, JSON_INDENT(1));
    char *i = json_dumps(instance, JSON_COMPACT | JSON_ENCODE_ANY);
    fprintf(stderr, "instance does not match %s:\n%s\ninstance: %.2000s\n", file, e ? e : "?",
            i ? i : "?");
    free(e);
    free(i);
  }
  json_decref(errors);
  ac_schema_free(schema);
  return valid;
}

int ac_test_expect(const ac_test_response *res, long status, const char *schema) {
  char ct[200];
  const char *type = ac_test_header(res, "Content-Type", ct, sizeof ct);
  int ok = res->status == status;
  if (ok && status >= 400) {
    ok = type && strcmp(type, "application/problem+json") == 0 && res->json &&
         json_integer_value(json_object_get(res->json, "status")) == status &&
         ac_test_schema_valid("problem.json", res->json);
  } else if (ok && schema) {
    ok = type && strncmp(type, "application/json", 16) == 0 && res->json &&
         ac_test_schema_valid(schema, res->json);
  }
  if (!ok)
    fprintf(stderr, "expected %ld%s%s, got %ld (%s) content-type %s body: %.1500s\n", status,
            schema ? " matching " : "", schema ? schema : "", res->status,
            res->err[0] ? res->err : "ok", type ? type : "-", res->body ? res->body : "");
  return ok;
}

json_t *ac_test_json(const ac_test_server *s, const char *method, const char *path,
                     const char *token, const char *body, long status, const char *schema) {
  ac_test_response res;
  ac_test_call(s, method, path, token, body, &res);
  json_t *out = NULL;
  if (ac_test_expect(&res, status, schema))
    out = res.json ? json_incref(res.json) : json_null();
  else
    fprintf(stderr, "  (request: %s %s %.300s)\n", method, path, body ? body : "");
  ac_test_response_free(&res);
  return out;
}
