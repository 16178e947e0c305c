/* hash.h — the one non-cryptographic hash of the engine's in-memory tables
 * (token cache, state pool, bulkheads, rate buckets, metric series): FNV-1a
 * a byte at a time, and a whole word a step where the length is known. */
#ifndef AC_CORE_HASH_H
#define AC_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AC_HASH_SEED 1469598103934665603ull

/* Folds n bytes of p into h (start with AC_HASH_SEED). A word is folded
 * with one multiply and a shift that brings its high bits down, so the
 * low bits a table indexes by depend on every byte. */
static inline uint64_t ac_hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (; n >= 8; s += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 32;
  }
  for (; n; s++, n--)
    h = (h ^ *s) * 1099511628211ull;
  return h;
}

/* Folds the NUL-terminated string s into h. */
static inline uint64_t ac_hash_str(uint64_t h, const char *s) {
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

#endif
