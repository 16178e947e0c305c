/* kv_memory.c — ac_kv kept in a jansson object, with TTLs. */
#include "lua/kv_memory.h"
#include "core/clock.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv_memory {
  ac_kv base;
  pthread_mutex_t lock;
  json_t *items; /* "ns\x1fplugin\x1fkey" -> {"v": text, "exp": ms or 0} */
} kv_memory;

static char *full_key(const char *ns, const char *plugin, const char *key) {
  size_t n = strlen(ns) + strlen(plugin) + strlen(key) + 3;
  char *k = malloc(n);
  if (k)
    snprintf(k, n, "%s\x1f%s\x1f%s", ns, plugin, key);
  return k;
}

static int mem_get(ac_kv *kv, const char *ns, const char *plugin, const char *key, char **json_out,
                   ac_err *err) {
  kv_memory *m = (kv_memory *)kv;
  *json_out = NULL;
  char *k = full_key(ns, plugin, key);
  if (!k)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  pthread_mutex_lock(&m->lock);
  json_t *item = json_object_get(m->items, k);
  json_int_t exp = json_integer_value(json_object_get(item, "exp"));
  if (item && exp && exp <= ac_clock_wall_ms()) {
    json_object_del(m->items, k);
    item = NULL;
  }
  if (item)
    *json_out = strdup(json_string_value(json_object_get(item, "v")));
  pthread_mutex_unlock(&m->lock);
  free(k);
  return AC_OK;
}

static int mem_set(ac_kv *kv, const char *ns, const char *plugin, const char *key, const char *json,
                   int ttl_s, ac_err *err) {
  kv_memory *m = (kv_memory *)kv;
  char *k = full_key(ns, plugin, key);
  if (!k)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  json_int_t exp = ttl_s > 0 ? ac_clock_wall_ms() + (json_int_t)ttl_s * 1000 : 0;
  pthread_mutex_lock(&m->lock);
  json_object_set_new(m->items, k, json_pack("{s:s, s:I}", "v", json, "exp", exp));
  pthread_mutex_unlock(&m->lock);
  free(k);
  return AC_OK;
}

static int mem_del(ac_kv *kv, const char *ns, const char *plugin, const char *key, ac_err *err) {
  kv_memory *m = (kv_memory *)kv;
  char *k = full_key(ns, plugin, key);
  if (!k)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  pthread_mutex_lock(&m->lock);
  json_object_del(m->items, k);
  pthread_mutex_unlock(&m->lock);
  free(k);
  return AC_OK;
}

static void mem_free(ac_kv *kv) {
  kv_memory *m = (kv_memory *)kv;
  json_decref(m->items);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

static const ac_kv_ops memory_ops = {mem_get, mem_set, mem_del, mem_free};

ac_kv *ac_kv_memory_new(void) {
  kv_memory *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->base.ops = &memory_ops;
  pthread_mutex_init(&m->lock, NULL);
  m->items = json_object();
  return &m->base;
}
