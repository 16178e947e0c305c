/* events.h — durable host events and their per-plugin runs (docs/api.md):
 * intake with idempotency, status, claiming runs under a lease, recording
 * outcomes and retries. All SQL of events lives in events.c. */
#ifndef AC_DB_EVENTS_H
#define AC_DB_EVENTS_H

#include "core/err.h"

#include <jansson.h>
#include <libpq-fe.h>

#define AC_EVENTS_CHANNEL "agentcore_events"

/* One event of a batch for AC_EVENTS_PUT_BATCH_SQL (key may be NULL); a
 * new reference, NULL when out of memory. */
json_t *ac_events_batch_item(const char *ns, const char *type, const json_t *payload,
                             const char *key, const json_t *plugins);

/* The statement that stores a batch of events ($1: a JSON array of
 * {ns, type, payload, key?, plugins}; $2: AC_EVENTS_CHANNEL), each with its
 * runs, and notifies the dispatchers once; one row per event: ord,
 * event_id, created, status (migrations/002_event_batches.sql). */
#define AC_EVENTS_PUT_BATCH_SQL \
  "SELECT ord, event_id::text, created, status FROM ac_events_put_batch($1::jsonb, $2)"

/* Stores an event of namespace ns and one queued run per plugin id in
 * plugins (a JSON array of strings), in one transaction, then notifies
 * the dispatchers: a batch of one (the server batches through db/intake.h).
 * With an idempotency key used within 24 h, nothing is stored and *created
 * is 0. *event_id: caller frees. */
int ac_events_put(PGconn *db, const char *ns, const char *type, const json_t *payload,
                  const char *idempotency_key, const json_t *plugins, char **event_id,
                  int *created, ac_err *err);

/* {"eventId","type","status","createdAt","runs":[{"pluginId","status",
 * "attempts","durationMs","error","nextAttemptAt"}]} of an event of ns. */
int ac_events_get(PGconn *db, const char *ns, const char *event_id, json_t **status, ac_err *err);

/* Due runs one namespace gives to one claim at most: claims take turns
 * across namespaces, each with an equal share of the limit (at least one
 * run, at most this many). */
#define AC_EVENTS_CLAIM_TURN 64

/* Leases up to limit due runs (queued, retrying past their time, or
 * running with an expired lease) for owner for lease_s seconds, a share
 * of them per namespace with runs to do, oldest first within each; the
 * namespaces take their turns in id order from the first after `after`
 * (NULL or "": from the first), wrapping around; those named in skip (a
 * JSON array of ids, may be NULL) give none. *runs:
 * an array of {"eventId","pluginId","deliveryId","attempts","namespaceId",
 * "type","payload","createdAt"}. */
int ac_events_claim(PGconn *db, const char *owner, int lease_s, int limit, const char *after,
                    const json_t *skip, json_t **runs, ac_err *err);

/* Records outcomes in one statement: outcomes is an array of {eventId,
 * pluginId, status, durationMs, error?, retryInMs, refund?}; each run owner
 * still leases takes its outcome (refund: the claim does not count as an
 * attempt), and an event left with no run to do is done. A status is final
 * (ok, error, timeout, memory, skipped) or "retrying" after retryInMs. */
int ac_events_finish_batch(PGconn *db, const char *owner, const json_t *outcomes, ac_err *err);

/* Deletes done events older than days. */
int ac_events_prune(PGconn *db, int days, ac_err *err);

/* Runs waiting and running, for the metrics gauges. */
int ac_events_counts(PGconn *db, long long *queued, long long *running, ac_err *err);

#endif
