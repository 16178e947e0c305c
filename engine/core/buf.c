/* buf.c — capped growing buffer. */
#include "core/buf.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(ac_buf *b, size_t extra) {
  if (extra > b->limit || b->len > b->limit - extra)
    return AC_ERR_LIMIT;
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return AC_OK;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p)
    return AC_ERR_NOMEM;
  b->data = p;
  b->cap = cap;
  return AC_OK;
}

int ac_buf_reserve_growing(ac_buf *b, size_t n) { return reserve(b, n); }

int ac_buf_append_growing(ac_buf *b, const void *p, size_t n) {
  int rc = reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return AC_OK;
}

int ac_buf_puts(ac_buf *b, const char *s) { return ac_buf_append(b, s, strlen(s)); }

int ac_buf_printf(ac_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  int rc = n < 0 ? AC_ERR_INVALID : reserve(b, (size_t)n);
  if (rc == AC_OK) {
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
  }
  va_end(ap2);
  return rc;
}

void ac_buf_reset(ac_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

char *ac_buf_take(ac_buf *b) {
  char *p = b->data ? b->data : strdup("");
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}

void ac_buf_free(ac_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

size_t ac_str_copy(char *dst, size_t size, const char *src) {
  size_t n = strnlen(src, size - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
  return n;
}
