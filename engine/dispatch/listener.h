/* listener.h — one LISTEN connection per instance: config writes of other
 * instances drop the matching config cache entries at once, new events of
 * other instances wake the dispatcher, and after a reconnect the whole
 * cache is dropped (notifications may have been missed). */
#ifndef AC_DISPATCH_LISTENER_H
#define AC_DISPATCH_LISTENER_H

#include "core/err.h"
#include "core/log.h"
#include "dispatch/config_cache.h"
#include "dispatch/dispatcher.h"

typedef struct ac_listener ac_listener;

int ac_listener_start(const char *database_url, ac_config_cache *cache, ac_dispatcher *dispatcher,
                      ac_logger *log, ac_listener **out, ac_err *err);
void ac_listener_stop(ac_listener *l);

#endif
