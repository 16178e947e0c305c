/* config_cache.c — namespace snapshots in a jansson hash table. */
#include "dispatch/config_cache.h"
#include "core/clock.h"
#include "db/store.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define MAX_ENTRIES 100000 /* beyond this the cache starts over */

struct ac_config_cache {
  pthread_mutex_t lock;
  json_t *entries; /* ns -> {"at": ms, "snapshot": {...}} */
  int fresh_ms;
  uint64_t epoch; /* bumped by every invalidation */
};

ac_config_cache *ac_config_cache_new(int fresh_ms) {
  ac_config_cache *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  pthread_mutex_init(&c->lock, NULL);
  c->entries = json_object();
  c->fresh_ms = fresh_ms;
  return c;
}

void ac_config_cache_free(ac_config_cache *c) {
  if (!c)
    return;
  json_decref(c->entries);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

int ac_config_cache_get(ac_config_cache *c, PGconn *db, const char *ns, json_t **snapshot,
                        ac_err *err) {
  int64_t now = ac_clock_mono_ms();
  pthread_mutex_lock(&c->lock);
  json_t *e = json_object_get(c->entries, ns);
  if (e && now - json_integer_value(json_object_get(e, "at")) < c->fresh_ms) {
    *snapshot = json_incref(json_object_get(e, "snapshot"));
    pthread_mutex_unlock(&c->lock);
    return AC_OK;
  }
  uint64_t epoch = c->epoch;
  pthread_mutex_unlock(&c->lock);

  int rc = ac_store_ns_snapshot(db, ns, snapshot, err);
  if (rc)
    return rc;
  pthread_mutex_lock(&c->lock);
  /* an invalidation during the read may stand for a write this read did
   * not see: caching it would serve the old config after the write */
  if (c->epoch == epoch) {
    if (json_object_size(c->entries) >= MAX_ENTRIES)
      json_object_clear(c->entries);
    json_object_set_new(c->entries, ns,
                        json_pack("{s:I, s:O}", "at", (json_int_t)now, "snapshot", *snapshot));
  }
  pthread_mutex_unlock(&c->lock);
  return AC_OK;
}

void ac_config_cache_invalidate(ac_config_cache *c, const char *ns) {
  pthread_mutex_lock(&c->lock);
  c->epoch++;
  if (ns)
    json_object_del(c->entries, ns);
  else
    json_object_clear(c->entries);
  pthread_mutex_unlock(&c->lock);
}
