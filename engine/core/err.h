/* err.h — the engine's error codes and the ac_err message carrier. */
#ifndef AC_CORE_ERR_H
#define AC_CORE_ERR_H

#include <stddef.h>

/* Error codes: 0 is success, failures are negative. Only ever append. */
enum {
  AC_OK = 0,
  AC_ERR_NOMEM = -1,       /* allocation failed */
  AC_ERR_INVALID = -2,     /* bad input: argument, file, JSON, config */
  AC_ERR_IO = -3,          /* file or socket failure */
  AC_ERR_NOTFOUND = -4,    /* no such item */
  AC_ERR_LIMIT = -5,       /* a size or count cap was reached */
  AC_ERR_UNSUPPORTED = -6, /* valid but not supported (schema keyword, ...) */
  AC_ERR_TIMEOUT = -7,     /* a deadline passed */
  AC_ERR_CONFLICT = -8,    /* already exists / version mismatch */
  AC_ERR_DB = -9,          /* database failure */
  AC_ERR_BUSY = -10,       /* refused for now, try again later */
  AC_ERR_DENIED = -11,     /* not allowed */
  AC_ERR_INTERNAL = -12    /* a bug: should not happen */
};

#define AC_ERR_MSG_MAX 1024

/* A failure's code and a human-readable message. Functions that fail fill
 * an optional ac_err *; NULL means the caller only wants the code. */
typedef struct ac_err {
  int code;
  char msg[AC_ERR_MSG_MAX];
} ac_err;

/* Records code and a printf-style message in err (if not NULL) and returns
 * code, so a failing function can `return ac_err_set(err, ...)`. */
int ac_err_set(ac_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to err's message, keeping its code. No-op on NULL. */
void ac_err_prefix(ac_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Resets err to success. No-op on NULL. */
void ac_err_clear(ac_err *err);

/* Short constant name of an error code ("invalid", "timeout", ...). */
const char *ac_err_name(int code);

#endif
