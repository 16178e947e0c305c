/* http_pool.h — HTTP clients shared by the threads that run plugin calls:
 * a call takes a client for its duration, so connections are reused across
 * calls without a client ever being used by two threads at once. */
#ifndef AC_OUTBOUND_HTTP_POOL_H
#define AC_OUTBOUND_HTTP_POOL_H

#include "outbound/http_client.h"

typedef struct ac_http_pool ac_http_pool;

/* Keeps up to max_idle idle clients built from cfg (borrowed: the guard,
 * limiter and counters must outlive the pool). Caller frees. */
int ac_http_pool_new(const ac_http_client_config *cfg, int max_idle, ac_http_pool **out,
                     ac_err *err);
void ac_http_pool_free(ac_http_pool *p);

/* An idle client, or a new one (NULL only when none can be made). */
ac_http_client *ac_http_pool_take(ac_http_pool *p);

/* Gives a client back (NULL is a no-op); beyond max_idle it is freed. */
void ac_http_pool_give(ac_http_pool *p, ac_http_client *c);

#endif
