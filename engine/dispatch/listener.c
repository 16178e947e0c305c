/* listener.c — the LISTEN thread, on the reconnecting ac_db connection. */
#include "dispatch/listener.h"
#include "core/clock.h"
#include "db/db.h"
#include "db/events.h"
#include "db/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 200 /* how often the thread looks at its stop flag */

struct ac_listener {
  char *url;
  ac_config_cache *cache;
  ac_dispatcher *dispatcher;
  ac_logger *log;
  atomic_int stopping;
  pthread_t thread;
};

static void on_notify(void *ud, const char *channel, const char *payload) {
  ac_listener *l = ud;
  if (!channel) {
    /* (re)connected: whatever was announced meanwhile is lost */
    ac_config_cache_invalidate(l->cache, NULL);
    return;
  }
  if (strcmp(channel, AC_EVENTS_CHANNEL) == 0) {
    ac_dispatcher_wake(l->dispatcher);
    return;
  }
  json_t *doc = json_loads(payload ? payload : "", 0, NULL);
  /* a payload this version does not understand drops everything */
  ac_config_cache_invalidate(l->cache, json_string_value(json_object_get(doc, "namespaceId")));
  json_decref(doc);
}

static void *listen_main(void *arg) {
  ac_listener *l = arg;
  ac_db *db = NULL;
  while (!atomic_load(&l->stopping)) {
    if (!db) {
      ac_err err = {0};
      db = ac_db_connect(l->url, &err);
      if (db && (ac_db_listen(db, AC_NOTIFY_CHANNEL, &err) != AC_OK ||
                 ac_db_listen(db, AC_EVENTS_CHANNEL, &err) != AC_OK)) {
        ac_db_free(db);
        db = NULL;
      }
      if (!db) {
        ac_logf(l->log, AC_LOG_WARN, "LISTEN connection failed (%s); retrying", err.msg);
        ac_config_cache_invalidate(l->cache, NULL);
        ac_clock_sleep_ms(1000);
        continue;
      }
    }
    if (ac_db_wait_notify(db, WAIT_MS, on_notify, l, NULL) < 0)
      ac_clock_sleep_ms(WAIT_MS); /* the database is away: ac_db retries on the next call */
  }
  ac_db_free(db);
  return NULL;
}

int ac_listener_start(const char *database_url, ac_config_cache *cache, ac_dispatcher *dispatcher,
                      ac_logger *log, ac_listener **out, ac_err *err) {
  *out = NULL;
  ac_listener *l = calloc(1, sizeof *l);
  if (!l)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  l->url = strdup(database_url);
  l->cache = cache;
  l->dispatcher = dispatcher;
  l->log = log;
  if (pthread_create(&l->thread, NULL, listen_main, l) != 0) {
    free(l->url);
    free(l);
    return ac_err_set(err, AC_ERR_NOMEM, "cannot start the LISTEN thread");
  }
  *out = l;
  return AC_OK;
}

void ac_listener_stop(ac_listener *l) {
  if (!l)
    return;
  atomic_store(&l->stopping, 1);
  pthread_join(l->thread, NULL);
  free(l->url);
  free(l);
}
