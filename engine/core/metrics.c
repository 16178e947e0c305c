/* metrics.c — a small Prometheus registry. Series live in one hash table
 * and are never removed, so an update finds its series without a lock
 * (chains are published with release stores) and changes it with atomics;
 * the lock only orders the creation of families and series. */
#include "core/metrics.h"
#include "core/buf.h"
#include "core/hash.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])
#define TABLE_SIZE 4096 /* hash chains of all series */

typedef struct family family;

typedef struct series {
  family *family;
  struct series *next_in_family; /* creation order, for rendering */
  _Atomic(struct series *) next_in_chain;
  uint64_t hash;
  _Atomic uint64_t value; /* counter or gauge: the bits of a double */
  /* histogram: observations per bucket (not cumulative), the last past
   * every bound; the sum as the bits of a double */
  _Atomic uint64_t counts[NBUCKETS + 1];
  _Atomic uint64_t sum;
  char labels[];
} series;

struct family {
  family *next; /* creation order */
  char *type, *help; /* NULL until described */
  int histogram;
  series *first, **last;
  char name[];
};

struct ac_metrics {
  pthread_mutex_t lock; /* creation, descriptions and rendering */
  family *families, **last_family;
  _Atomic(series *) table[TABLE_SIZE];
};

ac_metrics *ac_metrics_new(void) {
  ac_metrics *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  pthread_mutex_init(&m->lock, NULL);
  m->last_family = &m->families;
  return m;
}

void ac_metrics_free(ac_metrics *m) {
  if (!m)
    return;
  for (family *f = m->families, *next; f; f = next) {
    next = f->next;
    for (series *s = f->first, *sn; s; s = sn) {
      sn = s->next_in_family;
      free(s);
    }
    free(f->type);
    free(f->help);
    free(f);
  }
  pthread_mutex_destroy(&m->lock);
  free(m);
}

/* Under m->lock. */
static family *family_of(ac_metrics *m, const char *name) {
  for (family *f = m->families; f; f = f->next)
    if (strcmp(f->name, name) == 0)
      return f;
  size_t len = strlen(name);
  family *f = calloc(1, sizeof *f + len + 1);
  if (!f)
    return NULL;
  memcpy(f->name, name, len + 1);
  f->last = &f->first;
  *m->last_family = f;
  m->last_family = &f->next;
  return f;
}

void ac_metrics_describe(ac_metrics *m, const char *name, const char *type, const char *help) {
  pthread_mutex_lock(&m->lock);
  family *f = family_of(m, name);
  if (f) {
    free(f->type);
    free(f->help);
    f->type = strdup(type);
    f->help = strdup(help);
  }
  pthread_mutex_unlock(&m->lock);
}

static uint64_t series_hash(const char *name, const char *labels) {
  return ac_hash_str(ac_hash_bytes(ac_hash_str(AC_HASH_SEED, name), "{", 1), labels);
}

static series *find(ac_metrics *m, uint64_t h, const char *name, const char *labels) {
  for (series *s = atomic_load_explicit(&m->table[h % TABLE_SIZE], memory_order_acquire); s;
       s = atomic_load_explicit(&s->next_in_chain, memory_order_acquire))
    if (s->hash == h && strcmp(s->labels, labels) == 0 && strcmp(s->family->name, name) == 0)
      return s;
  return NULL;
}

/* The series name{labels}, made on first use; NULL when out of memory. A
 * name keeps the kind its first series had. */
static series *series_of(ac_metrics *m, const char *name, const char *labels, int histogram) {
  uint64_t h = series_hash(name, labels);
  series *s = find(m, h, name, labels);
  if (s)
    return s;
  pthread_mutex_lock(&m->lock);
  s = find(m, h, name, labels);
  family *f = s ? NULL : family_of(m, name);
  if (f) {
    if (!f->first)
      f->histogram = histogram;
    size_t len = strlen(labels);
    s = calloc(1, sizeof *s + len + 1);
    if (s) {
      s->family = f;
      s->hash = h;
      memcpy(s->labels, labels, len + 1);
      *f->last = s;
      f->last = &s->next_in_family;
      atomic_store_explicit(&s->next_in_chain, atomic_load(&m->table[h % TABLE_SIZE]),
                            memory_order_relaxed);
      atomic_store_explicit(&m->table[h % TABLE_SIZE], s, memory_order_release);
    }
  }
  pthread_mutex_unlock(&m->lock);
  return s;
}

static double from_bits(uint64_t bits) {
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

static uint64_t to_bits(double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  return bits;
}

static void add_double(_Atomic uint64_t *cell, double delta) {
  uint64_t old = atomic_load_explicit(cell, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(cell, &old, to_bits(from_bits(old) + delta),
                                                memory_order_relaxed, memory_order_relaxed))
    ;
}

void ac_metrics_add(ac_metrics *m, const char *name, const char *labels, double delta) {
  series *s = series_of(m, name, labels, 0);
  if (s && !s->family->histogram)
    add_double(&s->value, delta);
}

void ac_metrics_set(ac_metrics *m, const char *name, const char *labels, double value) {
  series *s = series_of(m, name, labels, 0);
  if (s && !s->family->histogram)
    atomic_store_explicit(&s->value, to_bits(value), memory_order_relaxed);
}

void ac_metrics_observe(ac_metrics *m, const char *name, const char *labels, double value) {
  series *s = series_of(m, name, labels, 1);
  if (!s || !s->family->histogram)
    return;
  size_t i = 0;
  while (i < NBUCKETS && !(value <= buckets[i]))
    i++;
  atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
  add_double(&s->sum, value);
}

void ac_metrics_label(char *out, size_t size, const char *key, const char *value) {
  size_t len = strlen(out), klen = strlen(key);
  /* room for the comma, key, =", one character, the closing quote and NUL */
  if (len + klen + 6 > size)
    return;
  char *p = out + len;
  if (len)
    *p++ = ',';
  memcpy(p, key, klen);
  p += klen;
  *p++ = '=';
  *p++ = '"';
  char *end = out + size - 2; /* the closing quote and NUL always fit */
  for (const char *v = value ? value : ""; *v && p + 2 <= end; v++) {
    if (*v == '"' || *v == '\\' || *v == '\n') {
      *p++ = '\\';
      *p++ = *v == '\n' ? 'n' : *v;
    } else {
      *p++ = *v;
    }
  }
  *p++ = '"';
  *p = '\0';
}

static void series_name(ac_buf *b, const char *name, const char *suffix, const char *labels,
                        const char *extra) {
  ac_buf_printf(b, "%s%s", name, suffix);
  int has = labels && *labels;
  if (has || extra)
    ac_buf_printf(b, "{%s%s%s}", has ? labels : "", has && extra ? "," : "", extra ? extra : "");
}

static void render_histogram(ac_buf *b, const char *name, series *s) {
  /* one read of each bucket, so the cumulative counts and the total agree
   * even while observations arrive */
  uint64_t counts[NBUCKETS + 1], cumulative = 0;
  for (size_t i = 0; i <= NBUCKETS; i++)
    counts[i] = atomic_load_explicit(&s->counts[i], memory_order_relaxed);
  for (size_t i = 0; i < NBUCKETS; i++) {
    char le[32];
    snprintf(le, sizeof le, "le=\"%g\"", buckets[i]);
    cumulative += counts[i];
    series_name(b, name, "_bucket", s->labels, le);
    ac_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
  }
  cumulative += counts[NBUCKETS];
  series_name(b, name, "_bucket", s->labels, "le=\"+Inf\"");
  ac_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
  series_name(b, name, "_sum", s->labels, NULL);
  ac_buf_printf(b, " %.6f\n", from_bits(atomic_load_explicit(&s->sum, memory_order_relaxed)));
  series_name(b, name, "_count", s->labels, NULL);
  ac_buf_printf(b, " %llu\n", (unsigned long long)cumulative);
}

char *ac_metrics_render(ac_metrics *m) {
  ac_buf b = AC_BUF_INIT(16u << 20);
  pthread_mutex_lock(&m->lock);
  for (family *f = m->families; f; f = f->next) {
    if (f->type)
      ac_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
    for (series *s = f->first; s; s = s->next_in_family) {
      if (f->histogram) {
        render_histogram(&b, f->name, s);
      } else {
        series_name(&b, f->name, "", s->labels, NULL);
        ac_buf_printf(&b, " %.17g\n",
                      from_bits(atomic_load_explicit(&s->value, memory_order_relaxed)));
      }
    }
  }
  pthread_mutex_unlock(&m->lock);
  return ac_buf_take(&b);
}
