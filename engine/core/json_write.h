/* json_write.h — compact JSON text of a jansson value, for response
 * bodies. jansson's own dump walks every string a code point at a time and
 * keeps a table of the containers it entered; response bodies (results
 * full of non-ASCII text) spent a fifth of a query there. Strings held by
 * jansson are valid UTF-8 already, so only the characters JSON requires
 * are escaped. The text is what json_dumps(v, JSON_COMPACT) writes, byte
 * for byte, keys in the same order. */
#ifndef AC_CORE_JSON_WRITE_H
#define AC_CORE_JSON_WRITE_H

#include "core/buf.h"

#include <jansson.h>
#include <stddef.h>

/* Writes v into buf (at most size bytes, no NUL). Returns the length of
 * the whole text, which is larger than size when it did not fit (buf then
 * holds a prefix), or 0 when v nests deeper than 2048 levels. */
size_t ac_json_write(const json_t *v, char *buf, size_t size);

/* The same text appended to b: of v (AC_ERR_INVALID past 2048 levels), of
 * a string s[0..n) (checked in the same pass: AC_ERR_INVALID, b unchanged,
 * when it is not valid UTF-8), of an integer, of a finite real. Return
 * AC_OK or ac_buf_append's error. For writers of values jansson does not hold. */
int ac_json_append(ac_buf *b, const json_t *v);
int ac_json_append_string(ac_buf *b, const char *s, size_t n);
int ac_json_append_integer(ac_buf *b, long long v);
int ac_json_append_real(ac_buf *b, double d);

#endif
