/* utf8.c — in-place UTF-8 repair (RFC 3629 well-formed sequences). */
#include "core/utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the well-formed sequence at s (at most n bytes), or 0. */
static size_t sequence_length(const unsigned char *s, size_t n) {
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

int ac_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    /* ASCII runs eight bytes at a time */
    uint64_t w;
    if (len - i >= 8 && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ull) == 0)) {
      i += 8;
      continue;
    }
    size_t n = sequence_length(p + i, len - i);
    if (n == 0)
      return 0;
    i += n;
  }
  return 1;
}

size_t ac_utf8_repair(char *s, size_t len) {
  unsigned char *p = (unsigned char *)s;
  size_t replaced = 0;
  for (size_t i = 0; i < len;) {
    size_t n = sequence_length(p + i, len - i);
    if (n == 0) {
      p[i++] = '?';
      replaced++;
    } else {
      i += n;
    }
  }
  return replaced;
}
