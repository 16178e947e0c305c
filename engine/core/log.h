/* log.h — the engine's one structured logger: JSON lines. */
#ifndef AC_CORE_LOG_H
#define AC_CORE_LOG_H

#include <jansson.h>
#include <stddef.h>

typedef enum ac_log_level {
  AC_LOG_DEBUG = 0,
  AC_LOG_INFO = 1,
  AC_LOG_WARN = 2,
  AC_LOG_ERROR = 3
} ac_log_level;

typedef struct ac_logger ac_logger;

/* Where finished lines go: one call per line, without the newline. */
typedef void (*ac_log_sink)(void *ud, ac_log_level level, const char *line,
                            size_t len);

/* Creates a logger writing lines at or above min_level to sink (NULL sink:
 * standard error). Caller frees with ac_logger_free. */
ac_logger *ac_logger_new(ac_log_level min_level, ac_log_sink sink, void *ud);
void ac_logger_free(ac_logger *log);

/* True if a line at level would be written (skip building costly fields). */
int ac_log_enabled(const ac_logger *log, ac_log_level level);

/* Writes one line {"ts","level","msg", ...fields}. `fields` is a JSON
 * object or NULL and is consumed (its reference is stolen). Thread-safe.
 * A NULL logger drops the line. Returns the bytes written, newline
 * included (0 if dropped). */
size_t ac_log(ac_logger *log, ac_log_level level, const char *msg, json_t *fields);

/* ac_log, but only when the whole line as written (escaping and fields
 * included, newline too) fits in room bytes: -1 and nothing written when it
 * does not. *written: the bytes written. */
int ac_log_within(ac_logger *log, ac_log_level level, const char *msg, json_t *fields,
                  size_t room, size_t *written);

/* printf-style convenience for lines without fields. */
void ac_logf(ac_logger *log, ac_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses "debug|info|warn|error" (case-insensitive). -1 if unknown. */
int ac_log_level_parse(const char *s);
const char *ac_log_level_name(ac_log_level level);

#endif
