/* fixtures.c — shared test helpers. */
#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ac_test_path(char *out, size_t size, const char *rel) {
  const char *root = getenv("AC_SOURCE_DIR");
  snprintf(out, size, "%s/%s", root ? root : AC_SOURCE_DIR, rel);
  return out;
}

static void capture(void *ud, ac_log_level level, const char *line, size_t len) {
  (void)level;
  ac_test_log *t = ud;
  pthread_mutex_lock(&t->lock);
  char **grown = realloc(t->lines, (t->count + 1) * sizeof *grown);
  if (grown) {
    t->lines = grown;
    t->lines[t->count] = strndup(line, len);
    t->count++;
    t->bytes += len;
  }
  pthread_mutex_unlock(&t->lock);
}

void ac_test_log_init(ac_test_log *t) {
  memset(t, 0, sizeof *t);
  pthread_mutex_init(&t->lock, NULL);
  t->logger = ac_logger_new(AC_LOG_DEBUG, capture, t);
}

void ac_test_log_reset(ac_test_log *t) {
  pthread_mutex_lock(&t->lock);
  for (size_t i = 0; i < t->count; i++)
    free(t->lines[i]);
  free(t->lines);
  t->lines = NULL;
  t->count = t->bytes = 0;
  pthread_mutex_unlock(&t->lock);
}

void ac_test_log_free(ac_test_log *t) {
  ac_test_log_reset(t);
  ac_logger_free(t->logger);
  pthread_mutex_destroy(&t->lock);
}

size_t ac_test_log_count(ac_test_log *t, const char *needle) {
  size_t n = 0;
  pthread_mutex_lock(&t->lock);
  for (size_t i = 0; i < t->count; i++)
    if (strstr(t->lines[i], needle))
      n++;
  pthread_mutex_unlock(&t->lock);
  return n;
}

ac_plugin_limits ac_test_limits(ac_logger *log) {
  ac_plugin_limits l = {AC_TEST_TIMEOUT_MS, AC_TEST_MEMORY, log};
  return l;
}
