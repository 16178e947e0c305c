/* bytes.h — byte scans sixteen bytes at a time. GCC's vector extensions
 * compile to SSE2 on x86-64 and NEON on ARM; a comparison of two vectors
 * gives -1 in each lane where it holds, 0 elsewhere. */
#ifndef AC_CORE_BYTES_H
#define AC_CORE_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef unsigned char ac_bytes16 __attribute__((vector_size(16)));
typedef signed char ac_lanes16 __attribute__((vector_size(16)));

static inline ac_bytes16 ac_bytes16_load(const void *p) {
  ac_bytes16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* 1 if any lane of the comparison m holds. */
static inline int ac_lanes16_any(ac_lanes16 m) {
  uint64_t w[2];
  memcpy(w, &m, sizeof w);
  return (w[0] | w[1]) != 0;
}

/* 1 if s[0..n) holds a byte no HTTP header may: a control character other
 * than tab (CR, LF and NUL among them) or DEL. */
static inline int ac_has_control(const char *s, size_t n) {
  size_t i = 0;
  for (; n - i >= 16; i += 16) {
    ac_bytes16 v = ac_bytes16_load(s + i);
    if (ac_lanes16_any(((v < 0x20) & (v != '\t')) | (v == 0x7f)))
      return 1;
  }
  for (; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
      return 1;
  }
  return 0;
}

#endif
