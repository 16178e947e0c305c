/* metrics.c — a small Prometheus registry on a jansson object. */
#include "core/metrics.h"
#include "core/buf.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

struct ac_metrics {
  pthread_mutex_t lock;
  json_t *meta;   /* name -> {"type","help"} */
  json_t *series; /* name -> { labels -> number | [counts..., sum, count] } */
};

ac_metrics *ac_metrics_new(void) {
  ac_metrics *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  pthread_mutex_init(&m->lock, NULL);
  m->meta = json_object();
  m->series = json_object();
  return m;
}

void ac_metrics_free(ac_metrics *m) {
  if (!m)
    return;
  json_decref(m->meta);
  json_decref(m->series);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

void ac_metrics_describe(ac_metrics *m, const char *name, const char *type, const char *help) {
  pthread_mutex_lock(&m->lock);
  json_object_set_new(m->meta, name, json_pack("{s:s, s:s}", "type", type, "help", help));
  if (!json_object_get(m->series, name))
    json_object_set_new(m->series, name, json_object());
  pthread_mutex_unlock(&m->lock);
}

static json_t *family(ac_metrics *m, const char *name) {
  json_t *f = json_object_get(m->series, name);
  if (!f) {
    f = json_object();
    json_object_set_new(m->series, name, f);
  }
  return f;
}

void ac_metrics_add(ac_metrics *m, const char *name, const char *labels, double delta) {
  pthread_mutex_lock(&m->lock);
  json_t *f = family(m, name);
  json_t *v = json_object_get(f, labels);
  if (json_is_real(v)) /* in place: no allocation per increment */
    json_real_set(v, json_real_value(v) + delta);
  else
    json_object_set_new(f, labels, json_real((v ? json_number_value(v) : 0) + delta));
  pthread_mutex_unlock(&m->lock);
}

void ac_metrics_set(ac_metrics *m, const char *name, const char *labels, double value) {
  pthread_mutex_lock(&m->lock);
  json_t *f = family(m, name);
  json_t *v = json_object_get(f, labels);
  if (json_is_real(v))
    json_real_set(v, value);
  else
    json_object_set_new(f, labels, json_real(value));
  pthread_mutex_unlock(&m->lock);
}

void ac_metrics_observe(ac_metrics *m, const char *name, const char *labels, double value) {
  pthread_mutex_lock(&m->lock);
  json_t *f = family(m, name);
  json_t *h = json_object_get(f, labels);
  if (!json_is_array(h)) {
    h = json_array();
    for (size_t i = 0; i < NBUCKETS + 2; i++)
      json_array_append_new(h, json_real(0));
    json_object_set_new(f, labels, h);
  }
  for (size_t i = 0; i < NBUCKETS; i++)
    if (value <= buckets[i])
      json_real_set(json_array_get(h, i), json_real_value(json_array_get(h, i)) + 1);
  json_real_set(json_array_get(h, NBUCKETS), json_real_value(json_array_get(h, NBUCKETS)) + value);
  json_real_set(json_array_get(h, NBUCKETS + 1),
                json_real_value(json_array_get(h, NBUCKETS + 1)) + 1);
  pthread_mutex_unlock(&m->lock);
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

char *ac_metrics_render(ac_metrics *m) {
  ac_buf b = AC_BUF_INIT(16u << 20);
  pthread_mutex_lock(&m->lock);
  const char *name;
  json_t *f;
  json_object_foreach(m->series, name, f) {
    json_t *meta = json_object_get(m->meta, name);
    const char *type = json_string_value(json_object_get(meta, "type"));
    if (meta)
      ac_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", name,
                    json_string_value(json_object_get(meta, "help")), name, type);
    const char *labels;
    json_t *v;
    json_object_foreach(f, labels, v) {
      if (json_is_array(v)) {
        for (size_t i = 0; i < NBUCKETS; i++) {
          char le[32];
          snprintf(le, sizeof le, "le=\"%g\"", buckets[i]);
          series_name(&b, name, "_bucket", labels, le);
          ac_buf_printf(&b, " %.0f\n", json_real_value(json_array_get(v, i)));
        }
        series_name(&b, name, "_bucket", labels, "le=\"+Inf\"");
        ac_buf_printf(&b, " %.0f\n", json_real_value(json_array_get(v, NBUCKETS + 1)));
        series_name(&b, name, "_sum", labels, NULL);
        ac_buf_printf(&b, " %.6f\n", json_real_value(json_array_get(v, NBUCKETS)));
        series_name(&b, name, "_count", labels, NULL);
        ac_buf_printf(&b, " %.0f\n", json_real_value(json_array_get(v, NBUCKETS + 1)));
      } else {
        series_name(&b, name, "", labels, NULL);
        ac_buf_printf(&b, " %.17g\n", json_number_value(v));
      }
    }
  }
  pthread_mutex_unlock(&m->lock);
  return ac_buf_take(&b);
}
