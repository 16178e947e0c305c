/* utf8.h — making text valid UTF-8 where the engine stores or sends it.
 *
 * Outcome messages come from Lua errors, which may hold any bytes, and are
 * cut to a fixed size, which may split a character. PostgreSQL refuses
 * such text and jansson cannot hold it, so every message is repaired once
 * where it is made. */
#ifndef AC_CORE_UTF8_H
#define AC_CORE_UTF8_H

#include <stddef.h>

/* Replaces, in place, every byte of s[0..len) that is not part of a valid
 * UTF-8 sequence (overlong forms, surrogates and code points past U+10FFFF
 * included, and a sequence cut off at the end) with '?'. The length never
 * changes. Returns the number of bytes replaced. */
size_t ac_utf8_repair(char *s, size_t len);

/* Length of the well-formed sequence at s (at most n bytes), or 0. */
static inline size_t ac_utf8_sequence_length(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80)
    return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0; /* no overlong forms */
    else if (c == 0xED)
      hi = 0x9F; /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F; /* nothing past U+10FFFF */
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return len;
}

/* Characters in s[0..len), valid UTF-8: the bytes that start one. Limits
 * users see ("200 characters") count these, as PostgreSQL's char_length. */
static inline size_t ac_utf8_length(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

/* 1 if s[0..len) is valid UTF-8 as ac_utf8_repair understands it. */
int ac_utf8_valid(const char *s, size_t len);

#endif
