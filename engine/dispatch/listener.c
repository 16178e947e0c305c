/* listener.c — the LISTEN thread. */
#include "dispatch/listener.h"
#include "db/events.h"
#include "db/store.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ac_listener {
  char *url;
  ac_config_cache *cache;
  ac_dispatcher *dispatcher;
  ac_logger *log;
  int stop_pipe[2];
  pthread_t thread;
};

static PGconn *listen_conn(ac_listener *l) {
  PGconn *c = PQconnectdb(l->url);
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, "LISTEN " AC_NOTIFY_CHANNEL "; LISTEN " AC_EVENTS_CHANNEL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (ok)
      return c;
  }
  PQfinish(c);
  return NULL;
}

static void handle(ac_listener *l, const PGnotify *n) {
  if (strcmp(n->relname, AC_EVENTS_CHANNEL) == 0) {
    ac_dispatcher_wake(l->dispatcher);
    return;
  }
  json_t *doc = json_loads(n->extra, 0, NULL);
  const char *ns = json_string_value(json_object_get(doc, "namespaceId"));
  /* a payload this version does not understand drops everything */
  ac_config_cache_invalidate(l->cache, ns);
  json_decref(doc);
}

static void *listen_main(void *arg) {
  ac_listener *l = arg;
  PGconn *c = NULL;
  for (;;) {
    if (!c) {
      c = listen_conn(l);
      /* whatever was announced while disconnected is lost: start afresh */
      ac_config_cache_invalidate(l->cache, NULL);
      if (!c)
        ac_logf(l->log, AC_LOG_WARN, "LISTEN connection failed; retrying");
    }
    struct pollfd p[2] = {{c ? PQsocket(c) : -1, POLLIN, 0}, {l->stop_pipe[0], POLLIN, 0}};
    int n = poll(p, 2, c ? 1000 : 1000);
    if (n > 0 && p[1].revents)
      break;
    if (!c)
      continue;
    if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK) {
      PQfinish(c);
      c = NULL;
      continue;
    }
    PGnotify *note;
    while ((note = PQnotifies(c))) {
      handle(l, note);
      PQfreemem(note);
    }
  }
  PQfinish(c);
  return NULL;
}

int ac_listener_start(const char *database_url, ac_config_cache *cache, ac_dispatcher *dispatcher,
                      ac_logger *log, ac_listener **out, ac_err *err) {
  *out = NULL;
  ac_listener *l = calloc(1, sizeof *l);
  if (!l || pipe(l->stop_pipe) != 0) {
    free(l);
    return ac_err_set(err, AC_ERR_NOMEM, "cannot start the LISTEN thread");
  }
  l->url = strdup(database_url);
  l->cache = cache;
  l->dispatcher = dispatcher;
  l->log = log;
  if (pthread_create(&l->thread, NULL, listen_main, l) != 0) {
    close(l->stop_pipe[0]);
    close(l->stop_pipe[1]);
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
  ssize_t ignored = write(l->stop_pipe[1], "x", 1);
  (void)ignored;
  pthread_join(l->thread, NULL);
  close(l->stop_pipe[0]);
  close(l->stop_pipe[1]);
  free(l->url);
  free(l);
}
