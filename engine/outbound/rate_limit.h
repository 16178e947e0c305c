/* rate_limit.h — token buckets per (plugin, namespace) for outbound HTTP
 * (docs/plugin-authoring.md: AGENTCORE_HTTP_RATE per second, AGENTCORE_HTTP_BURST).
 *
 * One limiter is shared by every worker thread. Callers reserve a token and
 * are told how long to wait before using it; the limiter never sleeps and
 * never reads a clock itself, so tests drive it with made-up times. A
 * reservation that waits drives the bucket below zero, which makes later
 * callers queue behind it in order. */
#ifndef AC_OUTBOUND_RATE_LIMIT_H
#define AC_OUTBOUND_RATE_LIMIT_H

#include "core/err.h"
#include "outbound/counters.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ac_rate_limiter ac_rate_limiter;

/* Buckets held at most when max_keys is 0. */
#define AC_RATE_DEFAULT_MAX_KEYS 65536

/* Counter slots of ac_rate_limiter_counters. */
enum { AC_RATE_COUNT_WAITS = 0, AC_RATE_COUNT_REFUSALS = 1, AC_RATE_COUNT_SLOTS = 2 };

/* A limiter refilling rate_per_s tokens per second (> 0) up to burst (>= 1)
 * per key. At most max_keys buckets are held (0: AC_RATE_DEFAULT_MAX_KEYS);
 * buckets idle long enough to be full again are dropped, since a fresh
 * bucket is identical. Caller frees with ac_rate_limiter_free. */
int ac_rate_limiter_new(double rate_per_s, int burst, size_t max_keys,
                        ac_rate_limiter **out, ac_err *err);
void ac_rate_limiter_free(ac_rate_limiter *rl);

/* Reserves one token of (plugin, ns) at now_ms. AC_OK with *wait_ms = the
 * delay before the token may be used (0: at once); AC_ERR_LIMIT, reserving
 * nothing, if the token would not arrive before deadline_ms, or if max_keys
 * buckets are all busy. Waits and refusals are counted per plugin. NULL
 * plugin or ns count as "". Thread-safe. */
int ac_rate_reserve(ac_rate_limiter *rl, const char *plugin, const char *ns,
                    int64_t now_ms, int64_t deadline_ms, int64_t *wait_ms);

/* Per-plugin counters (slots AC_RATE_COUNT_*), owned by the limiter: read
 * them with ac_counters_get / ac_counters_foreach. */
ac_counters *ac_rate_limiter_counters(ac_rate_limiter *rl);

/* Buckets held now (for tests and metrics). */
size_t ac_rate_limiter_size(ac_rate_limiter *rl);

#endif
