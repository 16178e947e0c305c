/* server_fixture.h — integration-test helpers: a real `agentcore serve`
 * child on its own fresh database, an HTTP client (libcurl), dev tokens and
 * validation of responses against the JSON Schemas under schemas/. */
#ifndef AC_TEST_SERVER_FIXTURE_H
#define AC_TEST_SERVER_FIXTURE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <sys/types.h>

/* The HS256 secret every test server is started with (>= 32 bytes). */
#define AC_TEST_JWT_SECRET "agentcore-integration-test-secret-0123456789"

typedef struct ac_test_server {
  pid_t pid;              /* the serve child, 0 when not running */
  int port;
  char base_url[64];      /* "http://127.0.0.1:<port>" */
  char dbname[64];        /* "t_<name>_<pid>" */
  char admin_conninfo[2048]; /* AGENTCORE_TEST_DATABASE_URL */
  char conninfo[2048];    /* key=value conninfo of the fresh database */
  char log_path[256];     /* the child's stdout and stderr */
  char err[1024];         /* why the last call failed */
} ac_test_server;

/* Creates database t_<name>_<pid> (name: [a-z0-9_], <= 40 chars), picks a
 * free 127.0.0.1 port, starts AC_BINARY serve with the AGENTCORE_* test
 * settings plus env (NULL-terminated "NAME=value" list, may be NULL; these
 * win over the defaults), and waits (<= 15 s) for GET /healthz. Returns 0,
 * or -1 with s->err saying why (AGENTCORE_TEST_DATABASE_URL or AC_BINARY
 * missing, database or child failure; the child's log tail is printed). */
int ac_test_server_start(ac_test_server *s, const char *name, const char *const *env);

/* SIGTERM, waits up to 5 s, then SIGKILL; drops the database. Returns the
 * child's exit status (0 clean; 128+n if killed by signal n; -1 if it was
 * not running). Safe to call twice. */
int ac_test_server_stop(ac_test_server *s);

/* A new connection to the server's database (admin = 0) or to the
 * AGENTCORE_TEST_DATABASE_URL database (admin = 1); NULL on failure with
 * s->err set. Caller PQfinishes. */
PGconn *ac_test_server_db(ac_test_server *s, int admin);

/* Runs one parameterised statement on a fresh connection (admin as above)
 * and returns the first column of the first row as a malloc'd string ("" if
 * no row, NULL on error with s->err set). Caller frees. */
char *ac_test_server_query(ac_test_server *s, int admin, const char *sql, int nparams,
                           const char *const *params);

/* Cuts the server off its database (down = 1: new connections refused, its
 * backends terminated, the database renamed to <dbname>_away) or restores
 * it (down = 0), leaving the shared cluster running. Returns the number of
 * backends terminated (>= 0), or -1 with s->err set. */
int ac_test_server_db_outage(ac_test_server *s, int down);

/* Terminates the server's backends (what a database restart does to its
 * pooled connections). Returns how many, or -1 with s->err set. */
int ac_test_server_kill_backends(ac_test_server *s);

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct ac_test_request {
  const char *method;         /* "GET", "POST", ... */
  const char *path;           /* "/api/v1/plugins" */
  const char *token;          /* bearer token, NULL: no Authorization */
  const char *content_type;   /* NULL: no Content-Type header */
  const char *body;           /* NULL: no body */
  size_t body_len;            /* 0: strlen(body) */
  const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
  int chunked;                /* send the body with Transfer-Encoding: chunked */
  long timeout_ms;            /* whole exchange; 0: 30 s */
} ac_test_request;

typedef struct ac_test_response {
  long status;     /* 0 when the exchange failed */
  char *headers;   /* the final response's header block */
  char *body;      /* NUL-terminated */
  size_t body_len;
  json_t *json;    /* the body parsed, or NULL */
  char err[256];   /* transport error, if any */
} ac_test_response;

/* Performs one request (no Expect: 100-continue unless req->headers sets
 * one). Fills res (release with ac_test_response_free). Returns status. */
long ac_test_http(const ac_test_server *s, const ac_test_request *req, ac_test_response *res);

/* Shortcut: method + path with token; a non-NULL body is sent as
 * application/json. */
long ac_test_call(const ac_test_server *s, const char *method, const char *path, const char *token,
                  const char *body, ac_test_response *res);

/* A response header's value (case-insensitive name, trimmed) copied into
 * out, or NULL if absent. */
const char *ac_test_header(const ac_test_response *res, const char *name, char *out, size_t size);

void ac_test_response_free(ac_test_response *res);

/* ---- tokens ---------------------------------------------------------------- */

/* Signs claims (a JSON object) with AC_TEST_JWT_SECRET. Caller frees. */
char *ac_test_sign(const json_t *claims);

/* A token for sub with the AC_PERM_* bits in perms, global, departments (a
 * NULL-terminated list, may be NULL) and exp = now + ttl_s. Caller frees. */
char *ac_test_token(const char *sub, unsigned perms, int global, const char *const *departments,
                    long ttl_s);

/* ---- schemas --------------------------------------------------------------- */

/* Validates instance against schemas/<file> (compiled with ac_schema_compile).
 * Returns 1 if valid; else prints the errors (or why the schema failed to
 * load) to stderr and returns 0. */
int ac_test_schema_valid(const char *file, const json_t *instance);

/* 1 if res->status == status and the body fits: for status >= 400 an
 * application/problem+json body valid against problem.json whose "status"
 * equals status; else, with schema != NULL, an application/json body valid
 * against schemas/<schema>. Otherwise prints what differs and returns 0. */
int ac_test_expect(const ac_test_response *res, long status, const char *schema);

/* ac_test_call then ac_test_expect: the parsed body (json null when there
 * is none; caller decrefs) if the response matched, else NULL. */
json_t *ac_test_json(const ac_test_server *s, const char *method, const char *path,
                     const char *token, const char *body, long status, const char *schema);

/* Starts another `agentcore serve` on base's database (same defaults plus
 * env) and waits for /healthz. out->dbname stays empty, so stopping it
 * leaves the database to base. Returns 0 or -1 with out->err set. */
int ac_test_server_start_on(const ac_test_server *base, const char *const *env,
                            ac_test_server *out);

/* A TCP port on 127.0.0.1 that was free a moment ago (-1 on failure). */
int ac_test_free_port(void);

#endif
