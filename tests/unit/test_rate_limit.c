/* test_rate_limit.c — token buckets per (plugin, namespace), on a fake clock. */
#include "outbound/rate_limit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static ac_rate_limiter *make(double rate, int burst, size_t max_keys) {
  ac_rate_limiter *rl = NULL;
  ac_err err;
  if (ac_rate_limiter_new(rate, burst, max_keys, &rl, &err) != AC_OK)
    fail_msg("limiter: %s", err.msg);
  return rl;
}

/* Reserves for (p, ns) at now with a deadline far away; returns the wait. */
static int64_t take(ac_rate_limiter *rl, const char *p, const char *ns, int64_t now) {
  int64_t wait = -1;
  assert_int_equal(ac_rate_reserve(rl, p, ns, now, now + 1000000, &wait), AC_OK);
  return wait;
}

/* One step of a scripted scenario: at `now`, reserve for key with the
 * deadline `dl` ms away; expect rc and (on success) wait. */
typedef struct step {
  int64_t now;
  const char *plugin, *ns;
  int64_t dl;
  int rc;
  int64_t wait;
} step;

static void run_steps(ac_rate_limiter *rl, const step *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int64_t wait = -1;
    int rc = ac_rate_reserve(rl, s[i].plugin, s[i].ns, s[i].now, s[i].now + s[i].dl, &wait);
    if (rc != s[i].rc || (rc == AC_OK && wait != s[i].wait))
      fail_msg("step %zu (t=%lld %s/%s): rc %d wait %lld, want rc %d wait %lld", i,
               (long long)s[i].now, s[i].plugin, s[i].ns, rc, (long long)wait, s[i].rc,
               (long long)s[i].wait);
  }
}

/* Burst 2 at 1/s: two at once, the third waits 1000 ms, or is refused when
 * the deadline is nearer; a refusal reserves nothing. */
static void test_burst_then_wait(void **state) {
  (void)state;
  ac_rate_limiter *rl = make(1.0, 2, 0);
  static const step steps[] = {
      {0, "p", "n", 10000, AC_OK, 0},
      {0, "p", "n", 10000, AC_OK, 0},
      {0, "p", "n", 500, AC_ERR_LIMIT, 0},   /* token at 1000 > deadline 500 */
      {0, "p", "n", 1000, AC_ERR_LIMIT, 0},  /* arriving at the deadline is too late */
      {0, "p", "n", 1001, AC_OK, 1000},      /* the refusals took nothing */
      {0, "p", "n", 10000, AC_OK, 2000},     /* queued behind the previous one */
      {1500, "p", "n", 10000, AC_OK, 1500},  /* next free token at 3000 */
      {3000, "p", "n", 10000, AC_OK, 1000},
  };
  run_steps(rl, steps, sizeof steps / sizeof *steps);
  ac_rate_limiter_free(rl);
}

/* Tokens come back at the rate, never beyond the burst. */
static void test_refill(void **state) {
  (void)state;
  ac_rate_limiter *rl = make(1.0, 2, 0);
  static const step steps[] = {
      {0, "p", "n", 10000, AC_OK, 0},
      {0, "p", "n", 10000, AC_OK, 0},
      {1000, "p", "n", 10000, AC_OK, 0},    /* one token refilled */
      {1000, "p", "n", 10000, AC_OK, 1000}, /* and only one */
      {2500, "p", "n", 10000, AC_OK, 500},  /* half a token in hand */
      {60000, "p", "n", 10000, AC_OK, 0},   /* long idle: full burst, */
      {60000, "p", "n", 10000, AC_OK, 0},
      {60000, "p", "n", 10000, AC_OK, 1000}, /* not more */
  };
  run_steps(rl, steps, sizeof steps / sizeof *steps);
  ac_rate_limiter_free(rl);
}

/* Every (plugin, namespace) pair has its own bucket. */
static void test_keys_independent(void **state) {
  (void)state;
  ac_rate_limiter *rl = make(1.0, 1, 0);
  static const step steps[] = {
      {0, "a", "ns1", 10000, AC_OK, 0},
      {0, "a", "ns1", 10000, AC_OK, 1000},
      {0, "a", "ns2", 10000, AC_OK, 0},
      {0, "b", "ns1", 10000, AC_OK, 0},
      {0, "a", "bc", 10000, AC_OK, 0},  /* "a"+"bc" and "ab"+"c" do not collide */
      {0, "ab", "c", 10000, AC_OK, 0},
      {0, NULL, NULL, 10000, AC_OK, 0}, /* NULL is "" */
      {0, "", "", 10000, AC_OK, 1000},
  };
  run_steps(rl, steps, sizeof steps / sizeof *steps);
  assert_int_equal(ac_rate_limiter_size(rl), 6);
  ac_rate_limiter_free(rl);
}

/* Fractional waits round up to whole milliseconds, without float noise. */
static void test_rates(void **state) {
  (void)state;
  static const struct {
    double rate;
    int64_t wait;
  } cases[] = {{10, 100}, {3, 334}, {0.5, 2000}, {1000, 1}, {7, 143}, {100000, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ac_rate_limiter *rl = make(cases[i].rate, 1, 0);
    assert_int_equal(take(rl, "p", "n", 0), 0);
    int64_t w = take(rl, "p", "n", 0);
    if (w != cases[i].wait)
      fail_msg("rate %g: wait %lld, want %lld", cases[i].rate, (long long)w,
               (long long)cases[i].wait);
    ac_rate_limiter_free(rl);
  }
  /* 10/s refills exactly one token per 100 ms. */
  ac_rate_limiter *rl = make(10, 1, 0);
  for (int64_t t = 0; t < 100000; t += 100)
    assert_int_equal(take(rl, "p", "n", t), 0);
  ac_rate_limiter_free(rl);
}

/* A clock read slightly behind another thread's does not mint tokens. */
static void test_clock_behind(void **state) {
  (void)state;
  ac_rate_limiter *rl = make(1.0, 1, 0);
  assert_int_equal(take(rl, "p", "n", 5000), 0);
  assert_int_equal(take(rl, "p", "n", 4000), 2000); /* token due at 6000 */
  ac_rate_limiter_free(rl);
}

static void test_counters(void **state) {
  (void)state;
  ac_rate_limiter *rl = make(1.0, 1, 0);
  int64_t w;
  assert_int_equal(ac_rate_reserve(rl, "a", "n", 0, 10000, &w), AC_OK);
  assert_int_equal(ac_rate_reserve(rl, "a", "n", 0, 10000, &w), AC_OK);  /* wait */
  assert_int_equal(ac_rate_reserve(rl, "a", "m", 0, 10000, &w), AC_OK);
  assert_int_equal(ac_rate_reserve(rl, "a", "m", 0, 10, &w), AC_ERR_LIMIT);
  assert_int_equal(ac_rate_reserve(rl, "b", "n", 0, 10000, &w), AC_OK);
  assert_int_equal(ac_rate_reserve(rl, "b", "n", 0, 10, &w), AC_ERR_LIMIT);
  assert_int_equal(ac_rate_reserve(rl, "b", "n", 0, 10, &w), AC_ERR_LIMIT);
  ac_counters *c = ac_rate_limiter_counters(rl);
  assert_int_equal(ac_counters_get(c, "a", AC_RATE_COUNT_WAITS), 1);
  assert_int_equal(ac_counters_get(c, "a", AC_RATE_COUNT_REFUSALS), 1);
  assert_int_equal(ac_counters_get(c, "b", AC_RATE_COUNT_WAITS), 0);
  assert_int_equal(ac_counters_get(c, "b", AC_RATE_COUNT_REFUSALS), 2);
  assert_int_equal(ac_counters_get(c, "zzz", AC_RATE_COUNT_REFUSALS), 0);
  ac_rate_limiter_free(rl);
}

/* The map is bounded: full buckets are forgotten; with every bucket busy a
 * new key is refused rather than growing memory. */
static void test_eviction(void **state) {
  (void)state;
  ac_rate_limiter *rl = make(1.0, 2, 4);
  char ns[16];
  for (int i = 0; i < 4; i++) {
    snprintf(ns, sizeof ns, "n%d", i);
    assert_int_equal(take(rl, "p", ns, 0), 0);
  }
  assert_int_equal(ac_rate_limiter_size(rl), 4);
  int64_t w;
  assert_int_equal(ac_rate_reserve(rl, "p", "new", 0, 100000, &w), AC_ERR_LIMIT);
  /* Existing keys still work at the cap. */
  assert_int_equal(take(rl, "p", "n0", 0), 0);
  /* After a second, n1..n3 are full again (n0 is not) and make room. */
  assert_int_equal(take(rl, "p", "new", 1000), 0);
  assert_int_equal(ac_rate_limiter_size(rl), 2);
  /* n0 kept its state: it has one token (refilled from 0), then waits. */
  assert_int_equal(take(rl, "p", "n0", 1000), 0);
  assert_int_equal(take(rl, "p", "n0", 1000), 1000);
  ac_rate_limiter_free(rl);
}

/* Many keys over time: the periodic sweep keeps the map small. */
static void test_sweep_bounds_memory(void **state) {
  (void)state;
  ac_rate_limiter *rl = make(10.0, 1, 100000);
  char ns[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(ns, sizeof ns, "ns%d", i);
    assert_int_equal(take(rl, "p", ns, (int64_t)i * 10), 0);
  }
  /* A bucket is full again 100 ms after use, so only recent keys remain. */
  assert_true(ac_rate_limiter_size(rl) <= 1024 + 16);
  ac_rate_limiter_free(rl);
}

static void test_bad_config(void **state) {
  (void)state;
  ac_rate_limiter *rl = (ac_rate_limiter *)&rl;
  ac_err err;
  assert_int_equal(ac_rate_limiter_new(0, 1, 0, &rl, &err), AC_ERR_INVALID);
  assert_null(rl);
  assert_int_equal(ac_rate_limiter_new(-1, 1, 0, &rl, &err), AC_ERR_INVALID);
  assert_int_equal(ac_rate_limiter_new(NAN, 1, 0, &rl, &err), AC_ERR_INVALID);
  assert_int_equal(ac_rate_limiter_new(INFINITY, 1, 0, &rl, &err), AC_ERR_INVALID);
  assert_int_equal(ac_rate_limiter_new(1, 0, 0, &rl, &err), AC_ERR_INVALID);
  assert_non_null(strstr(err.msg, "burst"));
  ac_rate_limiter_free(NULL);
}

/* Threads hammering one key get exactly `burst` immediate tokens in total
 * and a distinct wait each for the rest. */
typedef struct hammer {
  ac_rate_limiter *rl;
  int immediate;
  int64_t waits[50];
} hammer;

static void *hammer_run(void *arg) {
  hammer *h = arg;
  for (int i = 0; i < 50; i++) {
    int64_t w;
    if (ac_rate_reserve(h->rl, "p", "n", 0, INT64_MAX, &w) != AC_OK)
      w = -1;
    h->waits[i] = w;
    if (w == 0)
      h->immediate++;
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  ac_rate_limiter *rl = make(1000.0, 20, 0);
  hammer h[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    memset(&h[i], 0, sizeof h[i]);
    h[i].rl = rl;
    assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
  }
  int immediate = 0;
  char seen[200] = {0};
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    immediate += h[i].immediate;
    for (int k = 0; k < 50; k++) {
      int64_t w = h[i].waits[k];
      assert_true(w >= 0 && w <= 180);
      if (w > 0) {
        assert_int_equal(seen[w], 0); /* each later token has its own slot */
        seen[w] = 1;
      }
    }
  }
  assert_int_equal(immediate, 20);
  ac_rate_limiter_free(rl);
}

/* The shared per-plugin counter table: snapshot order, slots, and the cap
 * on distinct ids. */
typedef struct seen_counts {
  int calls;
  char first[16];
  uint64_t first_vals[2];
} seen_counts;

static void collect(void *ud, const char *plugin, const uint64_t *values, int slots) {
  seen_counts *s = ud;
  assert_int_equal(slots, 2);
  if (s->calls++ == 0) {
    snprintf(s->first, sizeof s->first, "%s", plugin);
    s->first_vals[0] = values[0];
    s->first_vals[1] = values[1];
  }
}

static void test_counter_table(void **state) {
  (void)state;
  assert_null(ac_counters_new(0));
  assert_null(ac_counters_new(AC_COUNTERS_MAX_SLOTS + 1));
  ac_counters *c = ac_counters_new(2);
  ac_counters_add(c, "alpha", 0, 3);
  ac_counters_add(c, "alpha", 1, 1);
  ac_counters_add(c, "beta", 1, 5);
  ac_counters_add(c, "alpha", 2, 9);  /* out of range: ignored */
  ac_counters_add(c, "alpha", -1, 9);
  ac_counters_add(NULL, "alpha", 0, 9);
  assert_int_equal(ac_counters_get(c, "alpha", 0), 3);
  assert_int_equal(ac_counters_get(c, "alpha", 1), 1);
  assert_int_equal(ac_counters_get(c, "beta", 1), 5);
  seen_counts s = {0};
  ac_counters_foreach(c, collect, &s);
  assert_int_equal(s.calls, 2);
  assert_string_equal(s.first, "alpha");
  assert_int_equal(s.first_vals[0], 3);
  assert_int_equal(s.first_vals[1], 1);
  char id[32];
  for (int i = 0; i < AC_COUNTERS_MAX_PLUGINS + 10; i++) {
    snprintf(id, sizeof id, "p%d", i);
    ac_counters_add(c, id, 0, 1);
  }
  s.calls = 0;
  ac_counters_foreach(c, collect, &s);
  assert_int_equal(s.calls, AC_COUNTERS_MAX_PLUGINS + 1); /* plus "_other" */
  assert_int_equal(ac_counters_get(c, AC_COUNTERS_OTHER, 0), 12);
  ac_counters_free(c);
  ac_counters_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_then_wait),  cmocka_unit_test(test_refill),
      cmocka_unit_test(test_keys_independent), cmocka_unit_test(test_rates),
      cmocka_unit_test(test_clock_behind),     cmocka_unit_test(test_counters),
      cmocka_unit_test(test_eviction),         cmocka_unit_test(test_sweep_bounds_memory),
      cmocka_unit_test(test_bad_config),       cmocka_unit_test(test_threads),
      cmocka_unit_test(test_counter_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
