/* counters.c — per-plugin counters behind one mutex. */
#include "outbound/counters.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
  char *plugin;
  uint64_t v[AC_COUNTERS_MAX_SLOTS];
} entry;

struct ac_counters {
  pthread_mutex_t mu;
  int slots;
  size_t n, cap;
  entry *e;
};

ac_counters *ac_counters_new(int slots) {
  if (slots < 1 || slots > AC_COUNTERS_MAX_SLOTS)
    return NULL;
  ac_counters *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->slots = slots;
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

void ac_counters_free(ac_counters *c) {
  if (!c)
    return;
  for (size_t i = 0; i < c->n; i++)
    free(c->e[i].plugin);
  free(c->e);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* The entry for plugin, created if there is room; NULL only when memory
 * runs out. Plugin counts are small (one per loaded plugin), so a linear
 * scan is cheaper than it looks. Caller holds mu. */
static entry *find(ac_counters *c, const char *plugin, int create) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->e[i].plugin, plugin) == 0)
      return &c->e[i];
  if (!create)
    return NULL;
  if (c->n >= AC_COUNTERS_MAX_PLUGINS && strcmp(plugin, AC_COUNTERS_OTHER) != 0)
    return find(c, AC_COUNTERS_OTHER, 1);
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    entry *e = realloc(c->e, cap * sizeof *e);
    if (!e)
      return NULL;
    c->e = e;
    c->cap = cap;
  }
  char *copy = strdup(plugin);
  if (!copy)
    return NULL;
  entry *e = &c->e[c->n++];
  memset(e, 0, sizeof *e);
  e->plugin = copy;
  return e;
}

void ac_counters_add(ac_counters *c, const char *plugin, int slot, uint64_t n) {
  if (!c || slot < 0 || slot >= c->slots)
    return;
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, plugin ? plugin : "", 1);
  if (e)
    e->v[slot] += n;
  pthread_mutex_unlock(&c->mu);
}

uint64_t ac_counters_get(ac_counters *c, const char *plugin, int slot) {
  if (!c || slot < 0 || slot >= c->slots)
    return 0;
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, plugin ? plugin : "", 0);
  uint64_t v = e ? e->v[slot] : 0;
  pthread_mutex_unlock(&c->mu);
  return v;
}

void ac_counters_foreach(ac_counters *c, ac_counters_fn fn, void *ud) {
  if (!c || !fn)
    return;
  pthread_mutex_lock(&c->mu);
  for (size_t i = 0; i < c->n; i++)
    fn(ud, c->e[i].plugin, c->e[i].v, c->slots);
  pthread_mutex_unlock(&c->mu);
}
