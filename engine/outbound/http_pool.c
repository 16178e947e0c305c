/* http_pool.c — a mutex-guarded stack of idle HTTP clients. */
#include "outbound/http_pool.h"

#include <pthread.h>
#include <stdlib.h>

struct ac_http_pool {
  ac_http_client_config cfg;
  pthread_mutex_t lock;
  ac_http_client **idle;
  int count, max;
};

int ac_http_pool_new(const ac_http_client_config *cfg, int max_idle, ac_http_pool **out,
                     ac_err *err) {
  *out = NULL;
  ac_http_pool *p = calloc(1, sizeof *p);
  if (p)
    p->idle = calloc((size_t)(max_idle > 0 ? max_idle : 1), sizeof *p->idle);
  if (!p || !p->idle) {
    free(p);
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  }
  p->cfg = *cfg;
  p->cfg.user_agent = NULL; /* the client's default; cfg strings are not kept */
  p->max = max_idle > 0 ? max_idle : 1;
  pthread_mutex_init(&p->lock, NULL);
  *out = p;
  return AC_OK;
}

void ac_http_pool_free(ac_http_pool *p) {
  if (!p)
    return;
  for (int i = 0; i < p->count; i++)
    ac_http_client_free(p->idle[i]);
  free(p->idle);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

ac_http_client *ac_http_pool_take(ac_http_pool *p) {
  pthread_mutex_lock(&p->lock);
  ac_http_client *c = p->count ? p->idle[--p->count] : NULL;
  pthread_mutex_unlock(&p->lock);
  if (!c && ac_http_client_new(&p->cfg, &c, NULL) != AC_OK)
    c = NULL;
  return c;
}

void ac_http_pool_give(ac_http_pool *p, ac_http_client *c) {
  if (!c)
    return;
  pthread_mutex_lock(&p->lock);
  if (p->count < p->max) {
    p->idle[p->count++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&p->lock);
  ac_http_client_free(c);
}
