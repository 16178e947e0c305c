/* log.c — JSON-lines logger with a pluggable sink. */
#include "core/log.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

struct ac_logger {
  ac_log_level min_level;
  ac_log_sink sink;
  void *ud;
  pthread_mutex_t lock; /* keeps lines whole when threads log together */
};

static void stderr_sink(void *ud, ac_log_level level, const char *line, size_t len) {
  (void)ud;
  (void)level;
  fwrite(line, 1, len, stderr);
  fputc('\n', stderr);
  fflush(stderr);
}

ac_logger *ac_logger_new(ac_log_level min_level, ac_log_sink sink, void *ud) {
  ac_logger *log = calloc(1, sizeof *log);
  if (!log)
    return NULL;
  log->min_level = min_level;
  log->sink = sink ? sink : stderr_sink;
  log->ud = ud;
  pthread_mutex_init(&log->lock, NULL);
  return log;
}

void ac_logger_free(ac_logger *log) {
  if (!log)
    return;
  pthread_mutex_destroy(&log->lock);
  free(log);
}

int ac_log_enabled(const ac_logger *log, ac_log_level level) {
  return log && level >= log->min_level;
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

const char *ac_log_level_name(ac_log_level level) {
  return level >= AC_LOG_DEBUG && level <= AC_LOG_ERROR ? level_names[level] : "info";
}

int ac_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (s && strcasecmp(s, level_names[i]) == 0)
      return i;
  return -1;
}

size_t ac_log(ac_logger *log, ac_log_level level, const char *msg, json_t *fields) {
  size_t written = 0;
  ac_log_within(log, level, msg, fields, SIZE_MAX, &written);
  return written;
}

int ac_log_within(ac_logger *log, ac_log_level level, const char *msg, json_t *fields,
                  size_t room, size_t *written) {
  *written = 0;
  if (!ac_log_enabled(log, level)) {
    json_decref(fields);
    return 0;
  }
  char ts[40];
  ac_clock_rfc3339(ac_clock_wall_ms(), ts, sizeof ts);
  json_t *line = json_object();
  json_object_set_new(line, "ts", json_string(ts));
  json_object_set_new(line, "level", json_string(ac_log_level_name(level)));
  json_object_set_new(line, "msg", json_string(msg ? msg : ""));
  if (json_is_object(fields)) {
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value) {
      /* the three fixed members are the logger's own */
      if (!json_object_get(line, key))
        json_object_set(line, key, value);
    }
  }
  json_decref(fields);
  /* measured first when the room is bounded: a line far past it (a plugin's
   * fields, six bytes a character once escaped) is never built */
  if (room != SIZE_MAX && json_dumpb(line, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII) + 1 > room) {
    json_decref(line);
    return -1;
  }
  char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(line);
  if (!text)
    return 0;
  size_t len = strlen(text);
  if (len + 1 > room) { /* the newline counts too */
    free(text);
    return -1;
  }
  pthread_mutex_lock(&log->lock);
  log->sink(log->ud, level, text, len);
  pthread_mutex_unlock(&log->lock);
  free(text);
  *written = len + 1;
  return 0;
}

void ac_logf(ac_logger *log, ac_log_level level, const char *fmt, ...) {
  if (!ac_log_enabled(log, level))
    return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ac_log(log, level, msg, NULL);
}
