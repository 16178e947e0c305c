/* intake.h — accepted events stored by group commit.
 *
 * Requests hand their events to the intake and go on; writer threads take
 * what is queued — up to a batch size, waiting at most a short window for
 * more — and store each batch in one transaction of one statement (the
 * events, their runs, one NOTIFY). Every event's outcome is reported once,
 * after the commit that holds it: a request answers 202 only for an event
 * that is durably stored. A batch that fails as a whole for one event's
 * sake (a namespace deleted meanwhile) is stored again an event at a time,
 * so every other event still goes in; a batch whose commit is lost with
 * the connection reports AC_ERR_DB for each of its events. */
#ifndef AC_DB_INTAKE_H
#define AC_DB_INTAKE_H

#include "core/err.h"
#include "db/db.h"

#include <jansson.h>

typedef struct ac_intake ac_intake;

typedef struct ac_intake_config {
  ac_db_pool *pool; /* borrowed: a connection per writer while it writes */
  int writers;      /* threads writing batches (>= 1) */
  int batch_max;    /* events per transaction at most (>= 1) */
  int wait_us;      /* how long a batch waits for more events (0: never) */
} ac_intake_config;

int ac_intake_start(const ac_intake_config *cfg, ac_intake **out, ac_err *err);

/* Stops the writers after the batches they hold; events still queued are
 * reported AC_ERR_DB ("the server is stopping"). NULL is a no-op. */
void ac_intake_stop(ac_intake *in);

/* The outcome of one event: rc AC_OK with its id, whether this put created
 * it (else its idempotency key named an earlier event) and its status; or
 * an error code with err. Called on a writer thread. */
typedef void (*ac_intake_done_fn)(void *ud, int rc, const char *event_id, int created,
                                  const char *status, const ac_err *err);

/* Queues an event: namespace ns, type, payload (an object), idempotency key
 * (NULL: none) and the plugins to run. The values are copied or
 * referenced; done(ud, ...) is called exactly once, possibly before this
 * returns. AC_ERR_NOMEM (done not called) when out of memory. */
int ac_intake_put(ac_intake *in, const char *ns, const char *type, const json_t *payload,
                  const char *key, const json_t *plugins, ac_intake_done_fn done, void *ud);

#endif
