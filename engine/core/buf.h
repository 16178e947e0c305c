/* buf.h — a growing byte buffer with a hard cap. */
#ifndef AC_CORE_BUF_H
#define AC_CORE_BUF_H

#include "core/err.h"

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

/* A NUL-terminated growing buffer. `limit` caps len; appends past it fail
 * with AC_ERR_LIMIT and leave the buffer as it was. Zero-initialise with
 * a limit (AC_BUF_INIT(limit)); release with ac_buf_free. */
typedef struct ac_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t limit;
} ac_buf;

#define AC_BUF_INIT(lim) {NULL, 0, 0, (lim)}

/* The slow paths of the two below: the buffer grows (or refuses). */
int ac_buf_append_growing(ac_buf *b, const void *p, size_t n);
int ac_buf_reserve_growing(ac_buf *b, size_t n);

/* 1 when n more bytes and the NUL fit without growing or passing limit. */
static inline int ac_buf_fits(const ac_buf *b, size_t n) {
  return n < b->cap - b->len && b->len + n <= b->limit;
}

/* Appends n bytes. Returns AC_OK, AC_ERR_LIMIT or AC_ERR_NOMEM. Inline:
 * writers append a token at a time. */
static inline int ac_buf_append(ac_buf *b, const void *p, size_t n) {
  if (!ac_buf_fits(b, n))
    return ac_buf_append_growing(b, p, n);
  if (n) /* p may be NULL then */
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return AC_OK;
}

/* Makes room for n more bytes (and the NUL) without changing len, so a
 * writer can fill data + len directly. AC_OK, AC_ERR_LIMIT or NOMEM. */
static inline int ac_buf_reserve(ac_buf *b, size_t n) {
  return ac_buf_fits(b, n) ? AC_OK : ac_buf_reserve_growing(b, n);
}

/* Appends a NUL-terminated string. */
int ac_buf_puts(ac_buf *b, const char *s);

/* Copies src into dst (size > 0), cut to fit and always NUL-terminated:
 * snprintf(dst, size, "%s", src) without parsing a format, for hot paths.
 * Returns the length copied. */
size_t ac_str_copy(char *dst, size_t size, const char *src);

/* Appends printf-style text. */
int ac_buf_printf(ac_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Empties the buffer, keeping its memory. */
void ac_buf_reset(ac_buf *b);

/* Hands the data to the caller (caller frees; never NULL on success —
 * an empty buffer yields ""), leaving b empty. NULL on allocation failure. */
char *ac_buf_take(ac_buf *b);

/* Frees the data. */
void ac_buf_free(ac_buf *b);

#endif
