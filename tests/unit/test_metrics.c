/* test_metrics.c — the Prometheus registry: text format, cumulative
 * histogram buckets, kinds kept per name, and exact counts under
 * concurrent updates (updates take no lock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* line is a whole line of text: at its start or after a newline */
static void expect_line(const char *text, const char *line) {
  char want[512];
  snprintf(want, sizeof want, "%s\n", line);
  const char *p = text;
  while ((p = strstr(p, want)) && p != text && p[-1] != '\n')
    p++;
  if (!p)
    fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void test_counters_gauges_and_help(void **state) {
  (void)state;
  ac_metrics *m = ac_metrics_new();
  ac_metrics_describe(m, "jobs_total", "counter", "Jobs done.");
  char labels[128] = "";
  ac_metrics_label(labels, sizeof labels, "queue", "a\"b\\c\nd");
  ac_metrics_add(m, "jobs_total", labels, 2);
  ac_metrics_add(m, "jobs_total", labels, 0.5);
  ac_metrics_add(m, "jobs_total", "queue=\"other\"", 1);
  ac_metrics_set(m, "temperature", "", 21.5);
  ac_metrics_set(m, "temperature", "", -3);
  char *text = ac_metrics_render(m);
  expect_line(text, "# HELP jobs_total Jobs done.");
  expect_line(text, "# TYPE jobs_total counter");
  expect_line(text, "jobs_total{queue=\"a\\\"b\\\\c\\nd\"} 2.5");
  expect_line(text, "jobs_total{queue=\"other\"} 1");
  expect_line(text, "temperature -3");
  /* a series first made by describe-less use renders without HELP */
  assert_null(strstr(text, "# TYPE temperature"));
  free(text);
  ac_metrics_free(m);
}

static void test_histogram_buckets_are_cumulative(void **state) {
  (void)state;
  ac_metrics *m = ac_metrics_new();
  ac_metrics_describe(m, "took_seconds", "histogram", "Time taken.");
  ac_metrics_observe(m, "took_seconds", "op=\"x\"", 0.001); /* first bucket */
  ac_metrics_observe(m, "took_seconds", "op=\"x\"", 0.005); /* on a bound: that bucket */
  ac_metrics_observe(m, "took_seconds", "op=\"x\"", 0.3);
  ac_metrics_observe(m, "took_seconds", "op=\"x\"", 60);    /* past every bound */
  /* a histogram name ignores counter updates instead of mixing kinds */
  ac_metrics_add(m, "took_seconds", "op=\"x\"", 100);
  char *text = ac_metrics_render(m);
  expect_line(text, "took_seconds_bucket{op=\"x\",le=\"0.005\"} 2");
  expect_line(text, "took_seconds_bucket{op=\"x\",le=\"0.25\"} 2");
  expect_line(text, "took_seconds_bucket{op=\"x\",le=\"0.5\"} 3");
  expect_line(text, "took_seconds_bucket{op=\"x\",le=\"10\"} 3");
  expect_line(text, "took_seconds_bucket{op=\"x\",le=\"+Inf\"} 4");
  expect_line(text, "took_seconds_sum{op=\"x\"} 60.306000");
  expect_line(text, "took_seconds_count{op=\"x\"} 4");
  free(text);
  ac_metrics_free(m);
}

#define THREADS 4
#define UPDATES 50000

static ac_metrics *shared;

static void *hammer(void *arg) {
  long id = (long)arg;
  char labels[64];
  for (int i = 0; i < UPDATES; i++) {
    /* new series appear while others are updated */
    snprintf(labels, sizeof labels, "k=\"%d\"", i % 97);
    ac_metrics_add(shared, "hits_total", labels, 1);
    ac_metrics_observe(shared, "lat_seconds", "", id == 0 ? 0.002 : 0.2);
  }
  return NULL;
}

static void test_concurrent_updates_are_exact(void **state) {
  (void)state;
  shared = ac_metrics_new();
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  char *text = ac_metrics_render(shared);
  /* no increment was lost, whichever series it went to */
  double total = 0;
  int seen = 0;
  for (const char *p = text; (p = strstr(p, "hits_total{")); p++) {
    const char *sp = strchr(p, ' ');
    total += strtod(sp + 1, NULL);
    seen++;
  }
  assert_int_equal(seen, 97);
  assert_true(total == (double)THREADS * UPDATES);
  char line[128];
  snprintf(line, sizeof line, "lat_seconds_count %d", THREADS * UPDATES);
  expect_line(text, line);
  snprintf(line, sizeof line, "lat_seconds_bucket{le=\"0.005\"} %d", UPDATES);
  expect_line(text, line);
  free(text);
  ac_metrics_free(shared);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counters_gauges_and_help),
      cmocka_unit_test(test_histogram_buckets_are_cumulative),
      cmocka_unit_test(test_concurrent_updates_are_exact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
