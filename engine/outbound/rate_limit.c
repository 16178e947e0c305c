/* rate_limit.c — token buckets in a chained hash map behind one mutex. */
#include "outbound/rate_limit.h"
#include "core/hash.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
  struct bucket *next;
  uint64_t hash;
  double tokens;   /* may go below zero: reservations waiting for refill */
  int64_t last_ms; /* when tokens was last brought up to date */
  size_t key_len;  /* plugin '\0' ns, without the final NUL */
  char key[];
} bucket;

struct ac_rate_limiter {
  pthread_mutex_t mu;
  double rate_per_ms;
  double burst;
  size_t max_keys;
  bucket **slots;
  size_t nslots; /* power of two */
  size_t count;
  size_t inserts_since_sweep;
  ac_counters *counters;
};

/* A sweep every this many new buckets keeps idle keys from piling up well
 * before max_keys is reached. */
#define SWEEP_EVERY 1024

int ac_rate_limiter_new(double rate_per_s, int burst, size_t max_keys,
                        ac_rate_limiter **out, ac_err *err) {
  *out = NULL;
  if (!(rate_per_s > 0) || !isfinite(rate_per_s))
    return ac_err_set(err, AC_ERR_INVALID, "rate must be a positive number");
  if (burst < 1)
    return ac_err_set(err, AC_ERR_INVALID, "burst must be at least 1");
  ac_rate_limiter *rl = calloc(1, sizeof *rl);
  if (!rl)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  pthread_mutex_init(&rl->mu, NULL);
  rl->rate_per_ms = rate_per_s / 1000.0;
  rl->burst = burst;
  rl->max_keys = max_keys ? max_keys : AC_RATE_DEFAULT_MAX_KEYS;
  rl->nslots = 64;
  rl->slots = calloc(rl->nslots, sizeof *rl->slots);
  rl->counters = ac_counters_new(AC_RATE_COUNT_SLOTS);
  if (!rl->slots || !rl->counters) {
    ac_rate_limiter_free(rl);
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  }
  *out = rl;
  return AC_OK;
}

void ac_rate_limiter_free(ac_rate_limiter *rl) {
  if (!rl)
    return;
  for (size_t i = 0; rl->slots && i < rl->nslots; i++) {
    bucket *b = rl->slots[i];
    while (b) {
      bucket *next = b->next;
      free(b);
      b = next;
    }
  }
  free(rl->slots);
  ac_counters_free(rl->counters);
  pthread_mutex_destroy(&rl->mu);
  free(rl);
}

static uint64_t fnv1a(const char *p, size_t n) { return ac_hash_bytes(AC_HASH_SEED, p, n); }

/* Brings b's tokens up to now; a clock read before another thread's (so
 * slightly behind) must not take tokens back. */
static void refill(const ac_rate_limiter *rl, bucket *b, int64_t now_ms) {
  if (now_ms <= b->last_ms)
    return;
  b->tokens += (double)(now_ms - b->last_ms) * rl->rate_per_ms;
  if (b->tokens > rl->burst)
    b->tokens = rl->burst;
  b->last_ms = now_ms;
}

/* Drops every bucket that is full at now: forgetting it changes nothing. */
static void sweep(ac_rate_limiter *rl, int64_t now_ms) {
  for (size_t i = 0; i < rl->nslots; i++) {
    bucket **pp = &rl->slots[i];
    while (*pp) {
      bucket *b = *pp;
      refill(rl, b, now_ms);
      if (b->tokens >= rl->burst) {
        *pp = b->next;
        free(b);
        rl->count--;
      } else {
        pp = &b->next;
      }
    }
  }
  rl->inserts_since_sweep = 0;
}

static void grow(ac_rate_limiter *rl) {
  size_t n = rl->nslots * 2;
  bucket **s = calloc(n, sizeof *s);
  if (!s)
    return; /* longer chains, still correct */
  for (size_t i = 0; i < rl->nslots; i++) {
    bucket *b = rl->slots[i];
    while (b) {
      bucket *next = b->next;
      b->next = s[b->hash & (n - 1)];
      s[b->hash & (n - 1)] = b;
      b = next;
    }
  }
  free(rl->slots);
  rl->slots = s;
  rl->nslots = n;
}

/* Finds or creates the bucket for key; NULL if the map is full of busy
 * buckets or memory ran out. Caller holds mu. */
static bucket *lookup(ac_rate_limiter *rl, const char *key, size_t key_len,
                      int64_t now_ms) {
  uint64_t h = fnv1a(key, key_len);
  for (bucket *b = rl->slots[h & (rl->nslots - 1)]; b; b = b->next)
    if (b->hash == h && b->key_len == key_len && memcmp(b->key, key, key_len) == 0)
      return b;
  if (rl->count >= rl->max_keys || rl->inserts_since_sweep >= SWEEP_EVERY)
    sweep(rl, now_ms);
  if (rl->count >= rl->max_keys)
    return NULL;
  bucket *b = malloc(sizeof *b + key_len + 1);
  if (!b)
    return NULL;
  b->hash = h;
  b->tokens = rl->burst;
  b->last_ms = now_ms;
  b->key_len = key_len;
  memcpy(b->key, key, key_len);
  b->key[key_len] = '\0';
  if (rl->count >= rl->nslots)
    grow(rl);
  b->next = rl->slots[h & (rl->nslots - 1)];
  rl->slots[h & (rl->nslots - 1)] = b;
  rl->count++;
  rl->inserts_since_sweep++;
  return b;
}

int ac_rate_reserve(ac_rate_limiter *rl, const char *plugin, const char *ns,
                    int64_t now_ms, int64_t deadline_ms, int64_t *wait_ms) {
  *wait_ms = 0;
  plugin = plugin ? plugin : "";
  ns = ns ? ns : "";
  size_t pl = strlen(plugin), nl = strlen(ns);
  char small[256];
  char *key = pl + nl + 1 <= sizeof small ? small : malloc(pl + nl + 1);
  if (!key)
    return AC_ERR_NOMEM;
  memcpy(key, plugin, pl);
  key[pl] = '\0'; /* cannot occur in either id, so keys never collide */
  memcpy(key + pl + 1, ns, nl);

  int rc = AC_OK;
  int64_t wait = 0;
  pthread_mutex_lock(&rl->mu);
  bucket *b = lookup(rl, key, pl + 1 + nl, now_ms);
  if (!b) {
    rc = AC_ERR_LIMIT;
  } else {
    refill(rl, b, now_ms);
    /* The epsilons absorb float noise: a refill that should give exactly
     * one token must not cost an extra millisecond. */
    if (b->tokens < 1.0 - 1e-9) {
      double ms = (1.0 - b->tokens) / rl->rate_per_ms;
      wait = (int64_t)ceil(ms - 1e-6);
      if (wait < 1)
        wait = 1;
      /* Tokens are counted as of last_ms, which may be ahead of a now
       * read slightly earlier by this thread. */
      if (b->last_ms > now_ms)
        wait += b->last_ms - now_ms;
    }
    /* A token that arrives exactly at the deadline is no use to the call. */
    if (wait > 0 && now_ms + wait >= deadline_ms)
      rc = AC_ERR_LIMIT;
    else
      b->tokens -= 1.0;
  }
  pthread_mutex_unlock(&rl->mu);
  if (key != small)
    free(key);

  if (rc == AC_OK) {
    *wait_ms = wait;
    if (wait > 0)
      ac_counters_add(rl->counters, plugin, AC_RATE_COUNT_WAITS, 1);
  } else {
    ac_counters_add(rl->counters, plugin, AC_RATE_COUNT_REFUSALS, 1);
  }
  return rc;
}

ac_counters *ac_rate_limiter_counters(ac_rate_limiter *rl) { return rl->counters; }

size_t ac_rate_limiter_size(ac_rate_limiter *rl) {
  pthread_mutex_lock(&rl->mu);
  size_t n = rl->count;
  pthread_mutex_unlock(&rl->mu);
  return n;
}
