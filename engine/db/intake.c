/* intake.c — group commit of accepted events (see intake.h). */
#include "db/intake.h"
#include "core/clock.h"
#include "db/events.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct item {
  json_t *doc; /* ac_events_batch_item: what the batch function reads */
  int64_t arrived_us;
  ac_intake_done_fn done;
  void *ud;
  struct item *next;
} item;

#define MAX_WRITERS 8

struct ac_intake {
  ac_intake_config cfg;
  pthread_mutex_t lock;
  pthread_cond_t more; /* an event arrived, a batch filled, or stopping */
  item *head, *tail;
  int queued;
  int idle;       /* writers waiting for an event */
  int collecting; /* a writer waits out a batch's window */
  int stopping;
  int started;
  pthread_t writers[MAX_WRITERS];
};

static void report_all(item *list, int rc, const ac_err *err) {
  while (list) {
    item *next = list->next;
    list->done(list->ud, rc, NULL, 0, NULL, err);
    json_decref(list->doc);
    free(list);
    list = next;
  }
}

/* Stores n events in one statement (one transaction). On success reports
 * each and frees the list; else leaves the list and returns the error. */
static int store(ac_db *db, item *list, int n, ac_err *err) {
  json_t *docs = json_array();
  for (item *it = list; it; it = it->next)
    json_array_append(docs, it->doc);
  char *text = json_dumps(docs, JSON_COMPACT);
  json_decref(docs);
  if (!text)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  const char *params[] = {text, AC_EVENTS_CHANNEL};
  PGresult *r = NULL;
  /* sent once: a batch whose answer was lost may be stored, so it must
   * not be stored twice; its requests answer 503 and retry with their keys */
  int rc = ac_db_exec_once(db, AC_EVENTS_PUT_BATCH_SQL, 2, params, &r, err);
  free(text);
  if (rc == AC_OK && PQntuples(r) != n)
    rc = ac_err_set(err, AC_ERR_INTERNAL, "a batch of %d events stored %d", n, PQntuples(r));
  if (rc != AC_OK) {
    PQclear(r);
    return rc;
  }
  int row = 0;
  for (item *it = list, *next; it; it = next, row++) {
    next = it->next;
    it->done(it->ud, AC_OK, PQgetvalue(r, row, 1), strcmp(PQgetvalue(r, row, 2), "t") == 0,
             PQgetvalue(r, row, 3), NULL);
    json_decref(it->doc);
    free(it);
  }
  PQclear(r);
  return AC_OK;
}

static void write_batch(ac_intake *in, item *list, int n) {
  ac_err err = {0};
  ac_db *db = ac_db_pool_get(in->cfg.pool, -1, &err);
  if (!db) {
    report_all(list, AC_ERR_DB, &err);
    return;
  }
  int rc = store(db, list, n, &err);
  if (rc != AC_OK && rc != AC_ERR_DB && n > 1) {
    /* one event failed the batch (its namespace is gone, say): each goes
     * in on its own, so only that one fails */
    while (list) {
      item *it = list;
      list = it->next;
      it->next = NULL;
      ac_err one = {0};
      int one_rc = store(db, it, 1, &one);
      if (one_rc != AC_OK)
        report_all(it, one_rc, &one);
    }
    rc = AC_OK;
  }
  if (rc != AC_OK)
    report_all(list, rc, &err);
  ac_db_pool_put(in->cfg.pool, db);
}

static struct timespec monotonic_at(int64_t us) {
  struct timespec t = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  return t;
}

static void *writer_main(void *arg) {
  ac_intake *in = arg;
  pthread_mutex_lock(&in->lock);
  for (;;) {
    in->idle++;
    while (!in->head && !in->stopping)
      pthread_cond_wait(&in->more, &in->lock);
    in->idle--;
    if (in->stopping)
      break;
    /* the window counts from the oldest event's arrival, so no event waits
     * longer than it for company */
    if (in->queued < in->cfg.batch_max && in->cfg.wait_us > 0) {
      struct timespec until = monotonic_at(in->head->arrived_us + in->cfg.wait_us);
      in->collecting++;
      while (in->head && in->queued < in->cfg.batch_max && !in->stopping &&
             ac_clock_mono_us() < in->head->arrived_us + in->cfg.wait_us)
        pthread_cond_timedwait(&in->more, &in->lock, &until);
      in->collecting--;
      if (!in->head || in->stopping)
        continue; /* another writer took them, or stopping */
    }
    item *batch = in->head, *last = batch;
    int n = 1;
    while (n < in->cfg.batch_max && last->next) {
      last = last->next;
      n++;
    }
    in->head = last->next;
    if (!in->head)
      in->tail = NULL;
    last->next = NULL;
    in->queued -= n;
    pthread_mutex_unlock(&in->lock);
    write_batch(in, batch, n);
    pthread_mutex_lock(&in->lock);
  }
  pthread_mutex_unlock(&in->lock);
  return NULL;
}

int ac_intake_start(const ac_intake_config *cfg, ac_intake **out, ac_err *err) {
  *out = NULL;
  if (!cfg->pool || cfg->writers < 1 || cfg->writers > MAX_WRITERS || cfg->batch_max < 1 ||
      cfg->wait_us < 0)
    return ac_err_set(err, AC_ERR_INVALID, "intake: bad configuration");
  ac_intake *in = calloc(1, sizeof *in);
  if (!in)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  in->cfg = *cfg;
  pthread_mutex_init(&in->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&in->more, &attr);
  pthread_condattr_destroy(&attr);
  for (; in->started < cfg->writers; in->started++)
    if (pthread_create(&in->writers[in->started], NULL, writer_main, in) != 0) {
      ac_intake_stop(in);
      return ac_err_set(err, AC_ERR_NOMEM, "intake: cannot start a writer thread");
    }
  *out = in;
  return AC_OK;
}

void ac_intake_stop(ac_intake *in) {
  if (!in)
    return;
  pthread_mutex_lock(&in->lock);
  in->stopping = 1;
  pthread_cond_broadcast(&in->more);
  pthread_mutex_unlock(&in->lock);
  for (int i = 0; i < in->started; i++)
    pthread_join(in->writers[i], NULL);
  ac_err err = {0};
  ac_err_set(&err, AC_ERR_DB, "the server is stopping");
  report_all(in->head, AC_ERR_DB, &err);
  pthread_cond_destroy(&in->more);
  pthread_mutex_destroy(&in->lock);
  free(in);
}

int ac_intake_put(ac_intake *in, const char *ns, const char *type, const json_t *payload,
                  const char *key, const json_t *plugins, ac_intake_done_fn done, void *ud) {
  item *it = calloc(1, sizeof *it);
  json_t *doc = it ? ac_events_batch_item(ns, type, payload, key, plugins) : NULL;
  if (!doc) {
    free(it);
    return AC_ERR_NOMEM;
  }
  it->doc = doc;
  it->done = done;
  it->ud = ud;
  it->arrived_us = ac_clock_mono_us();
  pthread_mutex_lock(&in->lock);
  if (in->stopping) {
    pthread_mutex_unlock(&in->lock);
    ac_err err = {0};
    ac_err_set(&err, AC_ERR_DB, "the server is stopping");
    report_all(it, AC_ERR_DB, &err);
    return AC_OK;
  }
  if (in->tail)
    in->tail->next = it;
  else
    in->head = it;
  in->tail = it;
  in->queued++;
  /* an idle writer starts a batch unless one is collecting already; the
   * collecting one is told when its batch is full */
  if ((in->idle > 0 && !in->collecting) || in->queued >= in->cfg.batch_max)
    pthread_cond_signal(&in->more);
  pthread_mutex_unlock(&in->lock);
  return AC_OK;
}
