/* counters.h — per-plugin event counters for metrics (rate-limit waits and
 * refusals, outbound call outcomes), shared by all worker threads. */
#ifndef AC_OUTBOUND_COUNTERS_H
#define AC_OUTBOUND_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ac_counters ac_counters;

#define AC_COUNTERS_MAX_SLOTS 8
/* Distinct plugin ids tracked (plus "_other"); later ids are counted under
 * "_other" so a flood of made-up ids cannot grow memory. */
#define AC_COUNTERS_MAX_PLUGINS 1024
#define AC_COUNTERS_OTHER "_other"

/* A table of `slots` (1..AC_COUNTERS_MAX_SLOTS) counters per plugin id, all
 * starting at zero. NULL on bad slots or out of memory. Caller frees with
 * ac_counters_free. Thread-safe. */
ac_counters *ac_counters_new(int slots);
void ac_counters_free(ac_counters *c);

/* Adds n to counter `slot` of plugin (NULL counts as ""). Out-of-range
 * slots and a NULL table are ignored: counting never fails a request. */
void ac_counters_add(ac_counters *c, const char *plugin, int slot, uint64_t n);

/* Current value of counter `slot` of plugin (0 if never counted). */
uint64_t ac_counters_get(ac_counters *c, const char *plugin, int slot);

/* Calls fn once per plugin id seen, in first-seen order, with a snapshot of
 * its `slots` values. fn runs under the table's lock: it must not call back
 * into this table. */
typedef void (*ac_counters_fn)(void *ud, const char *plugin, const uint64_t *values,
                               int slots);
void ac_counters_foreach(ac_counters *c, ac_counters_fn fn, void *ud);

#endif
