/* call.h — one plugin call of the host flow, from start to outcome.
 *
 * A call starts on the thread that asks for it (a request thread) under a
 * short time slice and, when it needs more time or must wait (network,
 * database), moves to the worker pool; the caller never waits for plugin
 * code. Calls are admitted through bulkheads: a limit of calls in flight
 * per plugin and per namespace (past it the call ends at once with kind
 * busy) and a share of the workers each may hold. init, when the plugin's
 * init-once rule asks for it, runs first in the same state. The outcome is
 * delivered exactly once through the done callback: when the call ends,
 * when its deadline passes while it waits for a worker, or when it is
 * abandoned stuck in a C function. */
#ifndef AC_DISPATCH_CALL_H
#define AC_DISPATCH_CALL_H

#include "core/metrics.h"
#include "dispatch/workers.h"
#include "outbound/http_loop.h"
#include "outbound/http_pool.h"
#include "plugin/registry.h"

typedef struct ac_calls ac_calls;

/* How long past its deadline a call stuck in C is waited for before it is
 * abandoned (its caller then gets kind timeout). */
#define AC_CALL_GRACE_MS 500

typedef struct ac_calls_config {
  ac_workers *workers;     /* borrowed */
  ac_http_pool *http;      /* clients for context.http, borrowed (may be NULL) */
  ac_http_loop *loop;      /* runs their transfers while calls are parked
                              (NULL: a worker waits for each transfer) */
  ac_metrics *metrics;     /* busy refusals are counted here (may be NULL) */
  int slice_us;            /* time a call may run on the caller's thread */
  int max_per_plugin;      /* calls in flight per plugin */
  int max_per_namespace;   /* calls in flight per namespace */
  int plugin_share;        /* workers one plugin may keep busy */
  int namespace_share;     /* workers one namespace may keep busy */
} ac_calls_config;

int ac_calls_new(const ac_calls_config *cfg, ac_calls **out, ac_err *err);
void ac_calls_free(ac_calls *cs);

/* The slice calls get on a request thread (AGENTCORE_INLINE_SLICE_US). */
int ac_calls_slice_us(const ac_calls *cs);

/* The namespaces whose calls in flight are at their bulkhead now, as a new
 * JSON array of strings: work for them would be refused (busy), so the
 * event dispatcher claims none until they have room. */
json_t *ac_calls_full_namespaces(ac_calls *cs);

typedef struct ac_call ac_call;
typedef void (*ac_call_done_fn)(ac_call *c, void *ud);

/* What a call needs; strings and JSON are copied or referenced by the
 * call, so the caller's may go away. */
typedef struct ac_call_spec {
  ac_plugin_handle *h;     /* referenced by the call */
  const char *hook;        /* AC_HOOK_* */
  const json_t *arg;       /* NULL for init alone */
  ac_call_context ctx;     /* config and secrets are referenced */
  int run_init;            /* run the plugin's init first */
  int64_t deadline_ms;     /* monotonic: the whole call, init included */
  int64_t run_for_ms;      /* > 0: deadline_ms only bounds the wait for a
                              worker; the call then has run_for_ms from the
                              moment it starts (event hooks: no client waits) */
  int results_as_text;     /* onAgentQuery: results as text when sure
                              (ac_call_results_text) */
} ac_call_spec;

/* Creates a call; done(c, ud) will be called exactly once, from any
 * thread, possibly before ac_call_go returns. NULL when out of memory. */
ac_call *ac_call_new(ac_calls *cs, const ac_call_spec *spec, ac_call_done_fn done, void *ud);

/* Starts the call: on this thread for at most slice_us (0: straight to
 * the workers), then on the workers if it is not finished. */
void ac_call_go(ac_call *c, int64_t slice_us);

/* After done: the outcome, init's outcome (kind ok when init did not run)
 * and the returned value (a new reference the caller owns, or NULL). */
const ac_outcome *ac_call_outcome(const ac_call *c);
const ac_outcome *ac_call_init_outcome(const ac_call *c);
int ac_call_init_ran(const ac_call *c);
json_t *ac_call_take_result(ac_call *c);

/* After done, with results_as_text: the results as JSON text, ready for
 * an answer (lua/results_text.h; empty: none), or NULL when they came as
 * a value (ac_call_take_result). Valid until ac_call_release. */
const ac_buf *ac_call_results_text(const ac_call *c);

/* Drops the caller's reference (after done, or to stop caring). */
void ac_call_release(ac_call *c);

/* Runs a call to its end and waits for it: for threads that may block
 * (the event dispatcher). Fills result (may be NULL), out and init_out. */
void ac_call_run_wait(ac_calls *cs, const ac_call_spec *spec, json_t **result, ac_outcome *out,
                      ac_outcome *init_out, int *init_ran);

#endif
