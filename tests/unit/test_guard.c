/* test_guard.c — abandonable guard threads: the caller is released at its
 * limit, abandoned work cleans up after itself, and stuck work is capped. */
#include "core/clock.h"
#include "core/err.h"
#include "lua/guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <cmocka.h>

typedef struct job_state {
  int sleep_ms;
  atomic_int ran;
  atomic_int cleaned;
} job_state;

static void sleepy(void *arg) {
  job_state *s = arg;
  ac_clock_sleep_ms(s->sleep_ms);
  atomic_store(&s->ran, 1);
}

static void cleanup(void *arg) {
  job_state *s = arg;
  atomic_store(&s->cleaned, 1);
}

static void test_finishes_in_time(void **state) {
  (void)state;
  job_state s = {10, 0, 0};
  ac_guard_job job = {sleepy, cleanup, &s};
  assert_int_equal(ac_guard_run(&job, ac_clock_mono_ms() + 1000), AC_OK);
  assert_int_equal(atomic_load(&s.ran), 1);
  assert_int_equal(atomic_load(&s.cleaned), 0); /* the caller owns arg again */
}

static void test_abandoned_work_cleans_up(void **state) {
  (void)state;
  static job_state s = {400, 0, 0};
  ac_guard_job job = {sleepy, cleanup, &s};
  int64_t t0 = ac_clock_mono_ms();
  assert_int_equal(ac_guard_run(&job, t0 + 100), AC_ERR_TIMEOUT);
  int64_t waited = ac_clock_mono_ms() - t0;
  assert_true(waited >= 100 && waited < 300);
  assert_int_equal(atomic_load(&s.cleaned), 0);
  for (int i = 0; i < 100 && !atomic_load(&s.cleaned); i++)
    ac_clock_sleep_ms(20);
  assert_int_equal(atomic_load(&s.ran), 1);
  assert_int_equal(atomic_load(&s.cleaned), 1);
  for (int i = 0; i < 50 && ac_guard_stuck_count() > 0; i++)
    ac_clock_sleep_ms(10);
  assert_int_equal(ac_guard_stuck_count(), 0);
}

static void test_stuck_work_is_capped(void **state) {
  (void)state;
  static job_state s[3] = {{500, 0, 0}, {500, 0, 0}, {500, 0, 0}};
  ac_guard_set_max_stuck(2);
  for (int i = 0; i < 2; i++) {
    ac_guard_job job = {sleepy, cleanup, &s[i]};
    assert_int_equal(ac_guard_run(&job, ac_clock_mono_ms() + 20), AC_ERR_TIMEOUT);
  }
  assert_int_equal(ac_guard_stuck_count(), 2);
  ac_guard_job job = {sleepy, cleanup, &s[2]};
  int64_t t0 = ac_clock_mono_ms();
  assert_int_equal(ac_guard_run(&job, t0 + 1000), AC_ERR_BUSY); /* refused at once */
  assert_true(ac_clock_mono_ms() - t0 < 50);
  assert_int_equal(atomic_load(&s[2].ran), 0);
  for (int i = 0; i < 100 && ac_guard_stuck_count() > 0; i++)
    ac_clock_sleep_ms(20);
  assert_int_equal(ac_guard_stuck_count(), 0);
  assert_int_equal(ac_guard_run(&job, ac_clock_mono_ms() + 2000), AC_OK);
  ac_guard_set_max_stuck(8);
}

static void test_tickets_share_one_deadline(void **state) {
  (void)state;
  static job_state s[4] = {{10, 0, 0}, {600, 0, 0}, {600, 0, 0}, {10, 0, 0}};
  ac_guard_ticket *t[4];
  int rc;
  for (int i = 0; i < 4; i++) {
    ac_guard_job job = {sleepy, cleanup, &s[i]};
    t[i] = ac_guard_start(&job, &rc);
    assert_non_null(t[i]);
  }
  int64_t t0 = ac_clock_mono_ms(), until = t0 + 150;
  int expect[4] = {AC_OK, AC_ERR_TIMEOUT, AC_ERR_TIMEOUT, AC_OK};
  for (int i = 0; i < 4; i++)
    assert_int_equal(ac_guard_wait(t[i], until), expect[i]);
  assert_true(ac_clock_mono_ms() - t0 < 400); /* not 2 x 150 */
  for (int i = 0; i < 100 && ac_guard_stuck_count() > 0; i++)
    ac_clock_sleep_ms(20);
  assert_int_equal(atomic_load(&s[1].cleaned) + atomic_load(&s[2].cleaned), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_finishes_in_time),
      cmocka_unit_test(test_abandoned_work_cleans_up),
      cmocka_unit_test(test_stuck_work_is_capped),
      cmocka_unit_test(test_tickets_share_one_deadline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
