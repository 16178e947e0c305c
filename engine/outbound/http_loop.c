/* http_loop.c — the curl multi loop thread. */
#include "outbound/http_loop.h"
#include "core/clock.h"
#include "core/hash.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Transfers running to one host and port; only the loop thread touches
 * them. Gone when the last one ends. */
typedef struct destination {
  struct destination *next;
  int running;
  char key[];
} destination;

#define DEST_BUCKETS 256

typedef struct transfer {
  ac_http_client *client;
  ac_http_loop_done_fn done;
  void *ud;
  int64_t start_at_ms;
  destination *dest; /* counted there while it runs */
  struct transfer *next;
  struct transfer *prev_active, *next_active; /* on the multi handle */
} transfer;

struct ac_http_loop {
  CURLM *multi;
  pthread_t thread;
  pthread_mutex_t lock;
  transfer *incoming; /* added by other threads, taken by the loop */
  int stopping;
  int in_flight;      /* guarded by lock */
  int max_per_host;
  destination *dests[DEST_BUCKETS];
};

static unsigned dest_bucket(const char *key) {
  return (unsigned)(ac_hash_str(AC_HASH_SEED, key) % DEST_BUCKETS);
}

/* Counts t on its destination; 0 when that one is full (or out of
 * memory: refused the same way). */
static int dest_admit(ac_http_loop *l, transfer *t) {
  char key[300];
  ac_http_client_destination(t->client, key, sizeof key);
  unsigned b = dest_bucket(key);
  destination *d = l->dests[b];
  while (d && strcmp(d->key, key) != 0)
    d = d->next;
  if (!d) {
    size_t len = strlen(key);
    if (!(d = calloc(1, sizeof *d + len + 1)))
      return 0;
    memcpy(d->key, key, len + 1);
    d->next = l->dests[b];
    l->dests[b] = d;
  }
  if (d->running >= l->max_per_host)
    return 0;
  d->running++;
  t->dest = d;
  return 1;
}

static void dest_release(ac_http_loop *l, transfer *t) {
  destination *d = t->dest;
  if (!d || --d->running > 0)
    return;
  for (destination **pp = &l->dests[dest_bucket(d->key)]; *pp; pp = &(*pp)->next)
    if (*pp == d) {
      *pp = d->next;
      break;
    }
  free(d);
}

static void report(ac_http_loop *l, transfer *t, int result) {
  dest_release(l, t);
  ac_http_client_transfer_done(t->client, result);
  pthread_mutex_lock(&l->lock);
  l->in_flight--;
  pthread_mutex_unlock(&l->lock);
  t->done(t->ud);
  free(t);
}

static void *loop_main(void *arg) {
  ac_http_loop *l = arg;
  transfer *waiting = NULL; /* not due yet (a rate-limit wait) */
  transfer *active = NULL;  /* added to the multi handle */
  for (;;) {
    pthread_mutex_lock(&l->lock);
    transfer *in = l->incoming;
    l->incoming = NULL;
    int stop = l->stopping;
    pthread_mutex_unlock(&l->lock);
    while (in) {
      transfer *next = in->next;
      in->next = waiting;
      waiting = in;
      in = next;
    }
    /* start what is due; keep the rest */
    int64_t now = ac_clock_mono_ms(), next_start = -1;
    transfer **pp = &waiting;
    while (*pp) {
      transfer *t = *pp;
      if (!stop && t->start_at_ms > now) {
        if (next_start < 0 || t->start_at_ms < next_start)
          next_start = t->start_at_ms;
        pp = &t->next;
        continue;
      }
      *pp = t->next;
      CURL *easy = ac_http_client_handle(t->client);
      if (stop) {
        report(l, t, CURLE_ABORTED_BY_CALLBACK);
      } else if (!dest_admit(l, t)) {
        report(l, t, AC_HTTP_RESULT_HOST_FULL);
      } else if (curl_multi_add_handle(l->multi, easy) != CURLM_OK) {
        report(l, t, CURLE_FAILED_INIT);
      } else {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
        t->prev_active = NULL;
        t->next_active = active;
        if (active)
          active->prev_active = t;
        active = t;
      }
    }
    if (stop) {
      /* cancel the transfers still running */
      while (active) {
        transfer *t = active;
        active = t->next_active;
        curl_multi_remove_handle(l->multi, ac_http_client_handle(t->client));
        report(l, t, CURLE_ABORTED_BY_CALLBACK);
      }
      break;
    }
    int still = 0;
    curl_multi_perform(l->multi, &still);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left))) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      CURL *easy = msg->easy_handle;
      CURLcode cc = msg->data.result;
      transfer *t = NULL;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
      curl_multi_remove_handle(l->multi, easy);
      if (!t)
        continue;
      if (t->prev_active)
        t->prev_active->next_active = t->next_active;
      else
        active = t->next_active;
      if (t->next_active)
        t->next_active->prev_active = t->prev_active;
      report(l, t, (int)cc);
    }
    long timeout = 1000;
    curl_multi_timeout(l->multi, &timeout);
    if (timeout < 0 || timeout > 1000)
      timeout = 1000;
    if (next_start >= 0 && next_start - ac_clock_mono_ms() < timeout)
      timeout = (long)(next_start - ac_clock_mono_ms());
    if (timeout < 0)
      timeout = 0;
    curl_multi_poll(l->multi, NULL, 0, (int)timeout, NULL);
  }
  return NULL;
}

int ac_http_loop_start(int max_per_host, ac_http_loop **out, ac_err *err) {
  *out = NULL;
  ac_http_loop *l = calloc(1, sizeof *l);
  if (!l)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  l->max_per_host = max_per_host > 0 ? max_per_host : 1;
  l->multi = curl_multi_init();
  pthread_mutex_init(&l->lock, NULL);
  sigset_t block, old;
  sigfillset(&block);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int rc = l->multi ? pthread_create(&l->thread, NULL, loop_main, l) : -1;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    if (l->multi)
      curl_multi_cleanup(l->multi);
    pthread_mutex_destroy(&l->lock);
    free(l);
    return ac_err_set(err, AC_ERR_NOMEM, "cannot start the HTTP loop");
  }
  *out = l;
  return AC_OK;
}

void ac_http_loop_stop(ac_http_loop *l) {
  if (!l)
    return;
  pthread_mutex_lock(&l->lock);
  l->stopping = 1;
  pthread_mutex_unlock(&l->lock);
  curl_multi_wakeup(l->multi);
  pthread_join(l->thread, NULL);
  curl_multi_cleanup(l->multi);
  pthread_mutex_destroy(&l->lock);
  free(l);
}

int ac_http_loop_add(ac_http_loop *l, ac_http_client *c, ac_http_loop_done_fn done, void *ud) {
  transfer *t = calloc(1, sizeof *t);
  if (!t)
    return AC_ERR_NOMEM;
  t->client = c;
  t->done = done;
  t->ud = ud;
  t->start_at_ms = ac_http_client_start_at(c);
  pthread_mutex_lock(&l->lock);
  if (l->stopping) {
    pthread_mutex_unlock(&l->lock);
    free(t);
    return AC_ERR_BUSY;
  }
  t->next = l->incoming;
  l->incoming = t;
  l->in_flight++;
  pthread_mutex_unlock(&l->lock);
  curl_multi_wakeup(l->multi);
  return AC_OK;
}

int ac_http_loop_in_flight(ac_http_loop *l) {
  pthread_mutex_lock(&l->lock);
  int n = l->in_flight;
  pthread_mutex_unlock(&l->lock);
  return n;
}
