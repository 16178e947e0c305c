/* utf8.c — in-place UTF-8 repair (RFC 3629 well-formed sequences). */
#include "core/utf8.h"

#include <stdint.h>
#include <string.h>

int ac_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    /* ASCII runs eight bytes at a time */
    uint64_t w;
    if (len - i >= 8 && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ull) == 0)) {
      i += 8;
      continue;
    }
    size_t n = ac_utf8_sequence_length(p + i, len - i);
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
    size_t n = ac_utf8_sequence_length(p + i, len - i);
    if (n == 0) {
      p[i++] = '?';
      replaced++;
    } else {
      i += n;
    }
  }
  return replaced;
}
