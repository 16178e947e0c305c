/* err.c — error carrier helpers. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ac_err_set(ac_err *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

void ac_err_prefix(ac_err *err, const char *fmt, ...) {
  if (!err)
    return;
  char prefix[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  char old[AC_ERR_MSG_MAX];
  memcpy(old, err->msg, sizeof old);
  snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
}

void ac_err_clear(ac_err *err) {
  if (err) {
    err->code = AC_OK;
    err->msg[0] = '\0';
  }
}

const char *ac_err_name(int code) {
  switch (code) {
  case AC_OK: return "ok";
  case AC_ERR_NOMEM: return "nomem";
  case AC_ERR_INVALID: return "invalid";
  case AC_ERR_IO: return "io";
  case AC_ERR_NOTFOUND: return "not_found";
  case AC_ERR_LIMIT: return "limit";
  case AC_ERR_UNSUPPORTED: return "unsupported";
  case AC_ERR_TIMEOUT: return "timeout";
  case AC_ERR_CONFLICT: return "conflict";
  case AC_ERR_DB: return "db";
  case AC_ERR_BUSY: return "busy";
  case AC_ERR_DENIED: return "denied";
  case AC_ERR_INTERNAL: return "internal";
  default: return "unknown";
  }
}
