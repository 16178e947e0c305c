/* hostflow_fixture.h — helpers for the host-flow integration tests
 * (test_hostflow_*.c), built on server_fixture: a directory of custom test
 * plugins, tenants and plugin configs through the API, events and their
 * status, a second `agentcore serve` on the same database, and independent
 * OpenSSL checks of webhook signatures. */
#ifndef AC_TEST_HOSTFLOW_FIXTURE_H
#define AC_TEST_HOSTFLOW_FIXTURE_H

#include "auth/jwt.h"
#include "http_sink.h"
#include "server_fixture.h"

#include <jansson.h>
#include <stddef.h>

/* ---- plugins on disk --------------------------------------------------------- */

/* Creates a fresh temporary directory into dir and writes each file of
 * files (a NULL-terminated list of name, Lua source pairs) into it.
 * Returns 0, or -1 with a message on stderr. */
int ac_hostflow_plugin_dir(char *dir, size_t size, const char *const *files);

/* Deletes the files written by ac_hostflow_plugin_dir and the directory. */
void ac_hostflow_plugin_dir_remove(const char *dir, const char *const *files);

/* ---- tenants and configs ------------------------------------------------------ */

/* Creates department dept (201, or 409 when it exists) and namespace ns in
 * it (201) with token (global, canManageNamespaces). Returns 0 or -1. */
int ac_hostflow_tenant(const ac_test_server *s, const char *token, const char *dept,
                       const char *ns);

/* Enables plugin in ns with config (a JSON object text). Returns 0 on 201,
 * else prints the answer and returns -1. */
int ac_hostflow_enable(const ac_test_server *s, const char *token, const char *ns,
                       const char *plugin, const char *config);

/* ---- events ---------------------------------------------------------------------- */

/* POSTs body (JSON text) to ns's events. Returns the eventId of a 202 or
 * 200 answer (caller frees) with the status in *status, or NULL. */
char *ac_hostflow_emit(const ac_test_server *s, const char *token, const char *ns,
                       const char *body, long *status);

/* GET of an event's status: the JSON body of a 200 (caller decrefs), else
 * NULL. With check, the body must also match schemas/event-status.json. */
json_t *ac_hostflow_event(const ac_test_server *s, const char *token, const char *ns,
                          const char *event_id, int check);

/* Polls the event every 50 ms until its status is "done" or timeout_ms
 * passes; returns the last status seen (caller decrefs) or NULL. */
json_t *ac_hostflow_wait_done(const ac_test_server *s, const char *token, const char *ns,
                              const char *event_id, int timeout_ms);

/* The run of plugin in an event status (borrowed), or NULL. */
json_t *ac_hostflow_run(const json_t *status, const char *plugin);

/* ---- a second instance on the same database ----------------------------------------- */

/* Starts another `agentcore serve` on base's database (not recreated) on a
 * free port, with the same defaults as ac_test_server_start plus env,
 * and waits for /healthz. out->dbname stays empty so ac_test_server_stop
 * on it only stops the process; the database stays base's. Returns 0 or -1
 * with out->err set. */
int ac_hostflow_spawn(const ac_test_server *base, const char *const *env, ac_test_server *out);

/* SIGKILLs s's process and reaps it (s->pid becomes 0). */
void ac_hostflow_kill(ac_test_server *s);

/* ---- webhook checks ----------------------------------------------------------------- */

/* 1 when the recorded request's x-agentcore-signature is
 * "sha256=" hex HMAC-SHA256(secret, body) and its webhook-signature holds a
 * "v1,<base64>" HMAC-SHA256 over "id.timestamp.body" keyed with secret's
 * bytes (or the decoded base64 after "whsec_"), both computed here with
 * OpenSSL. Otherwise prints what differs and returns 0. */
int ac_hostflow_signed_ok(const ac_sink_request *r, const char *secret);

/* Milliseconds of the monotonic clock. */
long long ac_hostflow_now_ms(void);

#endif
