/* fixtures.h — helpers shared by the unit tests: paths into the source
 * tree, a logger that captures lines, and plugin limits for tests. */
#ifndef AC_TEST_FIXTURES_H
#define AC_TEST_FIXTURES_H

#include "core/log.h"
#include "plugin/plugin.h"

#include <pthread.h>
#include <stddef.h>

/* Test limits: short timeout and small memory cap, same code paths. */
#define AC_TEST_TIMEOUT_MS 300
#define AC_TEST_MEMORY (64u << 20)

/* "<source dir>/<rel>" into out. */
const char *ac_test_path(char *out, size_t size, const char *rel);

/* A logger that keeps every line in memory. */
typedef struct ac_test_log {
  ac_logger *logger;
  char **lines;
  size_t count;
  size_t bytes;
  pthread_mutex_t lock;
} ac_test_log;

void ac_test_log_init(ac_test_log *t);
void ac_test_log_reset(ac_test_log *t);
void ac_test_log_free(ac_test_log *t);
/* Lines containing needle. */
size_t ac_test_log_count(ac_test_log *t, const char *needle);

/* Limits for tests with the given logger. */
ac_plugin_limits ac_test_limits(ac_logger *log);

#endif
