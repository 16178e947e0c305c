/* listener.h — one LISTEN connection per instance: it loads the tenancy
 * snapshot in full when it connects and again after every reconnect
 * (notifications may have been missed meanwhile), re-reads the one
 * namespace or department a config notification names, and wakes the
 * dispatcher when another instance stored an event. All its reads run on
 * its own thread and connection, never on a request thread. */
#ifndef AC_DISPATCH_LISTENER_H
#define AC_DISPATCH_LISTENER_H

#include "core/err.h"
#include "core/log.h"
#include "dispatch/dispatcher.h"
#include "dispatch/tenancy.h"

typedef struct ac_listener ac_listener;

/* Starts the thread; tenancy, dispatcher and log are borrowed and must
 * outlive the listener. *out: stop with ac_listener_stop. */
int ac_listener_start(const char *database_url, ac_tenancy *tenancy, ac_dispatcher *dispatcher,
                      ac_logger *log, ac_listener **out, ac_err *err);

/* Stops and joins the thread (within about WAIT_MS plus a read in
 * flight) and frees. NULL is a no-op. */
void ac_listener_stop(ac_listener *l);

#endif
