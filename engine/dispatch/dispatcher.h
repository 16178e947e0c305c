/* dispatcher.h — worker threads that run stored event runs:
 * claim due runs with a lease (FOR UPDATE SKIP LOCKED), call the plugin's
 * hook through the guard, record the outcome, and reschedule retries with
 * the backoff schedule. A killed instance loses nothing: its leases expire
 * and any instance claims the runs again. */
#ifndef AC_DISPATCH_DISPATCHER_H
#define AC_DISPATCH_DISPATCHER_H

#include "core/err.h"
#include "dispatch/hooks.h"
#include "dispatch/tenancy.h"

typedef struct ac_dispatcher ac_dispatcher;

typedef struct ac_dispatcher_config {
  const char *database_url;
  int workers;
  int lease_s;               /* raised (with a warning) to outlast the longest
                                call, 2 x env->timeout_ms + 0.5 s, plus 0.5 s */
  const ac_hook_env *env;    /* borrowed */
  ac_tenancy *tenancy;       /* borrowed: each run's namespace config */
  const char *instance_id;   /* lease owner prefix */
  int retention_days;        /* done events older than this are deleted */
} ac_dispatcher_config;

int ac_dispatcher_start(const ac_dispatcher_config *cfg, ac_dispatcher **out, ac_err *err);

/* Wakes the workers (a new event was stored by this instance). */
void ac_dispatcher_wake(ac_dispatcher *d);

/* Stops the workers (runs in flight finish first) and frees. */
void ac_dispatcher_stop(ac_dispatcher *d);

/* Delay before retry number `attempt` (1-based) with jitter, in ms, or -1
 * when the schedule is exhausted: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h,
 * 3 h, 6 h; jitter adds up to a tenth. A plugin's own delay (>= 0) is
 * honoured instead. */
long long ac_dispatcher_backoff_ms(int attempt, int plugin_delay_s, unsigned random);

#endif
