/* events.c — SQL of events and runs. Statements are parameterised; JSON is
 * built by PostgreSQL. */
#include "db/events.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* Maps a failed result with the engine's one SQLSTATE mapping. */
static int fail(PGconn *db, PGresult *r, ac_err *err) {
  const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  int rc = ac_db_error_code(r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
  ac_err_set(err, rc, "database: %s", msg ? msg : PQerrorMessage(db));
  PQclear(r);
  return rc;
}

static PGresult *run(PGconn *db, const char *sql, int n, const char *const *p) {
  return PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
}

static int ok(PGresult *r) {
  ExecStatusType st = PQresultStatus(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

json_t *ac_events_batch_item(const char *ns, const char *type, const json_t *payload,
                             const char *key, const json_t *plugins) {
  return json_pack("{s:s, s:s, s:O, s:s?, s:O}", "ns", ns, "type", type, "payload", payload,
                   "key", key, "plugins", plugins);
}

int ac_events_put(PGconn *db, const char *ns, const char *type, const json_t *payload,
                  const char *idempotency_key, const json_t *plugins, char **event_id,
                  int *created, ac_err *err) {
  *event_id = NULL;
  *created = 0;
  /* a batch of one, through the statement the intake uses */
  json_t *batch = json_pack("[o]", ac_events_batch_item(ns, type, payload, idempotency_key,
                                                         plugins));
  char *text = batch ? json_dumps(batch, JSON_COMPACT) : NULL;
  json_decref(batch);
  if (!text)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  const char *p[] = {text, AC_EVENTS_CHANNEL};
  PGresult *r = run(db, AC_EVENTS_PUT_BATCH_SQL, 2, p);
  free(text);
  if (!ok(r) || PQntuples(r) != 1)
    return fail(db, r, err);
  *event_id = strdup(PQgetvalue(r, 0, 1));
  *created = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
  PQclear(r);
  return *event_id ? AC_OK : ac_err_set(err, AC_ERR_NOMEM, "out of memory");
}

int ac_events_get(PGconn *db, const char *ns, const char *event_id, json_t **status, ac_err *err) {
  *status = NULL;
  const char *p[] = {ns, event_id};
  PGresult *r = run(
      db,
      "SELECT json_build_object('eventId', e.id, 'type', e.type, 'status', e.status, "
      "'createdAt', " TS("e.created_at") ", 'runs', COALESCE((SELECT json_agg(json_build_object("
      "'pluginId', r.plugin_id, 'status', r.status, 'attempts', r.attempts, "
      "'durationMs', r.duration_ms, 'error', r.last_error, 'nextAttemptAt', CASE WHEN r.status IN "
      "('retrying', 'queued') THEN " TS("r.next_attempt_at") " END) ORDER BY r.plugin_id) "
      "FROM event_runs r WHERE r.event_id = e.id), '[]')) "
      "FROM events e WHERE e.namespace_id = $1 AND e.id::text = $2",
      2, p);
  if (!ok(r))
    return fail(db, r, err);
  if (PQntuples(r) == 0) {
    PQclear(r);
    return ac_err_set(err, AC_ERR_NOTFOUND, "unknown event");
  }
  *status = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
  PQclear(r);
  return *status ? AC_OK : ac_err_set(err, AC_ERR_INTERNAL, "bad JSON from the database");
}

int ac_events_claim(PGconn *db, const char *owner, int lease_s, int limit, const char *after,
                    const json_t *skip, json_t **runs, ac_err *err) {
  *runs = NULL;
  char lease[16], lim[16], turn[16];
  snprintf(lease, sizeof lease, "%d", lease_s);
  snprintf(lim, sizeof lim, "%d", limit);
  snprintf(turn, sizeof turn, "%d", AC_EVENTS_CLAIM_TURN);
  char *skipped = skip ? json_dumps(skip, JSON_COMPACT) : NULL;
  const char *p[] = {owner, lease, lim, turn, after ? after : "", skipped ? skipped : "[]"};
  PGresult *r = run(
      db,
      /* turns across namespaces: each namespace with runs to do (found by
       * skipping through its index) gives an equal share of the claim, at
       * most $4 of its due runs, oldest first, so one namespace's backlog
       * delays no other's; the turns start after the namespace $5 the
       * last claim ended with, so with more namespaces than the claim
       * holds none waits for the ones before it to run dry; namespaces in
       * $6 (whose calls are at their bulkhead) wait for room */
      "WITH RECURSIVE ns AS ("
      "  (SELECT namespace_id FROM event_runs WHERE status IN ('queued', 'retrying', 'running') "
      "   ORDER BY namespace_id LIMIT 1) "
      "  UNION ALL "
      "  SELECT (SELECT r.namespace_id FROM event_runs r "
      "          WHERE r.status IN ('queued', 'retrying', 'running') "
      "            AND r.namespace_id > ns.namespace_id ORDER BY r.namespace_id LIMIT 1) "
      "  FROM ns WHERE ns.namespace_id IS NOT NULL), "
      "open AS (SELECT namespace_id FROM ns WHERE namespace_id IS NOT NULL "
      "  AND namespace_id NOT IN (SELECT jsonb_array_elements_text($6::jsonb))), "
      "turn AS (SELECT GREATEST(1, LEAST($4::int, $3::int / GREATEST(1, count(*)))) AS n "
      "  FROM open), "
      "c AS (SELECT d.event_id, d.plugin_id FROM "
      "  (SELECT namespace_id FROM open ORDER BY namespace_id <= $5, namespace_id) ns, turn, "
      "  LATERAL ("
      "  SELECT r.event_id, r.plugin_id FROM event_runs r "
      "  WHERE r.namespace_id = ns.namespace_id "
      "    AND r.status IN ('queued', 'retrying', 'running') AND r.next_attempt_at <= now() "
      "  ORDER BY r.next_attempt_at LIMIT turn.n FOR UPDATE SKIP LOCKED) d "
      "  LIMIT $3::int), "
      "u AS (UPDATE event_runs r SET status = 'running', lease_owner = $1, "
      "  lease_until = now() + make_interval(secs => $2::int), "
      "  next_attempt_at = now() + make_interval(secs => $2::int), attempts = r.attempts + 1, "
      "  updated_at = now() FROM c WHERE r.event_id = c.event_id AND r.plugin_id = c.plugin_id "
      "  RETURNING r.*), "
      "s AS (UPDATE events SET status = 'running', updated_at = now() "
      "  WHERE id IN (SELECT event_id FROM u) AND status = 'queued') "
      "SELECT COALESCE(json_agg(json_build_object('eventId', u.event_id, 'pluginId', u.plugin_id, "
      "'deliveryId', u.delivery_id, 'attempts', u.attempts, 'namespaceId', e.namespace_id, "
      "'type', e.type, 'payload', e.payload, 'createdAt', " TS("e.created_at") ")), '[]') "
      "FROM u JOIN events e ON e.id = u.event_id",
      6, p);
  free(skipped);
  if (!ok(r))
    return fail(db, r, err);
  *runs = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
  PQclear(r);
  return *runs ? AC_OK : ac_err_set(err, AC_ERR_INTERNAL, "bad JSON from the database");
}

int ac_events_finish_batch(PGconn *db, const char *owner, const json_t *outcomes, ac_err *err) {
  char *text = json_dumps(outcomes, JSON_COMPACT);
  if (!text)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  const char *p[] = {owner, text};
  PGresult *r = run(db, "SELECT ac_events_finish_batch($1, $2::jsonb)", 2, p);
  free(text);
  if (!ok(r))
    return fail(db, r, err);
  PQclear(r);
  return AC_OK;
}

int ac_events_prune(PGconn *db, int days, ac_err *err) {
  char d[16];
  snprintf(d, sizeof d, "%d", days);
  const char *p[] = {d};
  PGresult *r = run(db,
                    "DELETE FROM events WHERE status = 'done' "
                    "AND created_at < now() - make_interval(days => $1::int)",
                    1, p);
  if (!ok(r))
    return fail(db, r, err);
  PQclear(r);
  return AC_OK;
}

int ac_events_counts(PGconn *db, long long *queued, long long *running, ac_err *err) {
  PGresult *r = run(db,
                    "SELECT count(*) FILTER (WHERE status IN ('queued', 'retrying')), "
                    "count(*) FILTER (WHERE status = 'running') FROM event_runs "
                    "WHERE status IN ('queued', 'retrying', 'running')",
                    0, NULL);
  if (!ok(r))
    return fail(db, r, err);
  *queued = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  *running = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
  PQclear(r);
  return AC_OK;
}
