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

#define WAIT_MS 200          /* how often the thread looks at its stop flag */
#define RELOAD_RETRY_MS 1000 /* a failed full reload is tried again this often */
#define PENDING_MAX 1000     /* ids waiting to be re-read; past it, a full reload */

struct ac_listener {
  char *url;
  ac_tenancy *tenancy;
  ac_dispatcher *dispatcher;
  ac_logger *log;
  atomic_int stopping;
  pthread_t thread;
  /* what notifications asked for, done after each wait */
  int reload;            /* (re)connected, or a payload not understood */
  int64_t reload_failed; /* when the last full reload failed (0: it did not) */
  json_t *namespaces;    /* {id: true} to re-read */
  json_t *departments;
};

static void note(ac_listener *l, json_t *set, const char *id) {
  if (json_object_size(set) >= PENDING_MAX)
    l->reload = 1;
  else
    json_object_set_new(set, id, json_true());
}

static void on_notify(void *ud, const char *channel, const char *payload) {
  ac_listener *l = ud;
  if (!channel) {
    /* reconnected: whatever was announced meanwhile is lost */
    l->reload = 1;
    return;
  }
  if (strcmp(channel, AC_EVENTS_CHANNEL) == 0) {
    ac_dispatcher_wake(l->dispatcher);
    return;
  }
  json_t *doc = json_loads(payload ? payload : "", 0, NULL);
  const char *ns = json_string_value(json_object_get(doc, "namespaceId"));
  const char *dept = json_string_value(json_object_get(doc, "departmentId"));
  if (ns)
    note(l, l->namespaces, ns);
  else if (dept)
    note(l, l->departments, dept);
  else
    l->reload = 1; /* a payload this version does not understand */
  json_decref(doc);
}

/* Does what the notifications asked for, on db's connection. A read that
 * fails turns into a full reload (the connection is likely gone: it is
 * re-opened by the next wait, which asks for one anyway). */
static void catch_up(ac_listener *l, ac_db *db) {
  if (l->reload) {
    if (l->reload_failed && ac_clock_mono_ms() - l->reload_failed < RELOAD_RETRY_MS)
      return;
    if (!ac_db_ok(db))
      return; /* the next wait re-opens the connection and asks again */
    if (ac_tenancy_reload(l->tenancy, ac_db_conn(db), NULL) != AC_OK) {
      /* a connection lost meanwhile is re-opened at once; else wait */
      if (ac_db_ok(db))
        l->reload_failed = ac_clock_mono_ms();
      return;
    }
    /* the reload read everything after those notifications */
    l->reload = 0;
    l->reload_failed = 0;
    json_object_clear(l->namespaces);
    json_object_clear(l->departments);
    return;
  }
  const char *id;
  json_t *v;
  /* departments first: a new namespace may sit in a new department */
  json_object_foreach(l->departments, id, v) {
    int rc = ac_tenancy_refresh_department(l->tenancy, ac_db_conn(db), id, NULL);
    if (rc != AC_OK && rc != AC_ERR_NOTFOUND)
      l->reload = 1;
  }
  json_object_foreach(l->namespaces, id, v) {
    int rc = ac_tenancy_refresh_namespace(l->tenancy, ac_db_conn(db), id, NULL);
    if (rc != AC_OK && rc != AC_ERR_NOTFOUND)
      l->reload = 1;
  }
  json_object_clear(l->departments);
  json_object_clear(l->namespaces);
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
        ac_clock_sleep_ms(1000);
        continue;
      }
      l->reload = 1; /* listening now: what is read from here on is not missed */
    }
    if (l->reload || json_object_size(l->namespaces) || json_object_size(l->departments))
      catch_up(l, db);
    /* a reload waiting to be retried must not wait for a notification */
    int wait = l->reload ? WAIT_MS / 4 : WAIT_MS;
    if (ac_db_wait_notify(db, wait, on_notify, l, NULL) < 0)
      ac_clock_sleep_ms(WAIT_MS); /* the database is away: ac_db retries on the next call */
  }
  ac_db_free(db);
  return NULL;
}

int ac_listener_start(const char *database_url, ac_tenancy *tenancy, ac_dispatcher *dispatcher,
                      ac_logger *log, ac_listener **out, ac_err *err) {
  *out = NULL;
  ac_listener *l = calloc(1, sizeof *l);
  if (!l)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  l->url = strdup(database_url);
  l->tenancy = tenancy;
  l->dispatcher = dispatcher;
  l->log = log;
  l->namespaces = json_object();
  l->departments = json_object();
  if (!l->url || !l->namespaces || !l->departments ||
      pthread_create(&l->thread, NULL, listen_main, l) != 0) {
    json_decref(l->namespaces);
    json_decref(l->departments);
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
  json_decref(l->namespaces);
  json_decref(l->departments);
  free(l->url);
  free(l);
}
