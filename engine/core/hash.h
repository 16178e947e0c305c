/* hash.h — FNV-1a, the one non-cryptographic hash of the engine's in-memory
 * tables (token cache, state pool, bulkheads, rate buckets). */
#ifndef AC_CORE_HASH_H
#define AC_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define AC_HASH_SEED 1469598103934665603ull

/* Folds n bytes of p into h (start with AC_HASH_SEED). */
static inline uint64_t ac_hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

/* Folds the NUL-terminated string s into h. */
static inline uint64_t ac_hash_str(uint64_t h, const char *s) {
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

#endif
