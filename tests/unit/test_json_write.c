/* test_json_write.c — ac_json_write writes what json_dumps(JSON_COMPACT)
 * writes: escapes, non-ASCII text, numbers, nesting, key order; a buffer
 * too small gets a prefix and the whole length; nesting is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/json_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ac_json_write of v equals json_dumps of v. */
static void same_as_jansson(const json_t *v) {
  char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  assert_non_null(want);
  char buf[4096];
  size_t len = ac_json_write(v, buf, sizeof buf);
  assert_int_equal(len, strlen(want));
  if (memcmp(buf, want, len) != 0)
    fail_msg("wrote %.*s\nwant  %s", (int)len, buf, want);
  free(want);
}

static void test_strings_are_escaped_as_jansson_does(void **state) {
  (void)state;
  const char *const samples[] = {
      "",
      "plain",
      "quote \" backslash \\ slash /",
      "\b\f\n\r\t",
      "\x01\x1f\x7f",
      "ТОВ \"Дніпро Агро\", м. Київ",
      "emoji \xf0\x9f\x98\x80 and \xe2\x80\xa8 line separator",
  };
  for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
    json_t *s = json_string(samples[i]);
    same_as_jansson(s);
    json_decref(s);
  }
  /* a NUL inside a string */
  json_t *nul = json_stringn("a\0b", 3);
  same_as_jansson(nul);
  json_decref(nul);
}

static void test_values_and_nesting(void **state) {
  (void)state;
  json_t *v = json_pack("{s:i, s:I, s:f, s:f, s:f, s:b, s:b, s:n, s:[], s:{}, s:[i, [s, {s:o}]]}",
                        "small", -7, "big", (json_int_t)9007199254740993LL, "real", 0.1,
                        "whole", 3.0, "tiny", -2.5e-7, "yes", 1, "no", 0, "none", "empty",
                        "obj", "list", 1, "two", "deep", json_string("x"));
  json_object_set_new(v, "huge", json_real(1e+20));
  json_object_set_new(v, "huger", json_real(1.5e300));
  /* keys in insertion order, as jansson writes them */
  json_object_set_new(v, "a-last", json_integer(1));
  same_as_jansson(v);
  json_decref(v);
}

static void test_a_small_buffer_gets_a_prefix_and_the_length(void **state) {
  (void)state;
  json_t *v = json_pack("{s:s}", "key", "a value that does not fit");
  char *want = json_dumps(v, JSON_COMPACT);
  char buf[10];
  memset(buf, '#', sizeof buf);
  size_t len = ac_json_write(v, buf, sizeof buf);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(buf, want, sizeof buf);
  char exact[256];
  assert_int_equal(ac_json_write(v, exact, len), len);
  assert_memory_equal(exact, want, len);
  free(want);
  json_decref(v);
}

static void test_depth_is_bounded(void **state) {
  (void)state;
  json_t *root = json_array(), *at = root;
  for (int i = 0; i < 3000; i++) {
    json_t *next = json_array();
    json_array_append_new(at, next);
    at = next;
  }
  char buf[16];
  assert_int_equal(ac_json_write(root, buf, sizeof buf), 0);
  json_decref(root);
}

/* Strings of pieces that stress the writer's fast paths: runs of plain
 * ASCII longer than eight bytes, escapes at every offset, two-, three- and
 * four-byte characters, and bytes that are not UTF-8. */
static size_t random_text(char *buf, unsigned *seed, int allow_invalid) {
  static const char *const pieces[] = {"a", "plain text ", "\"", "\\", "\n", "\x01", "\x1f",
                                       "\xd0\x94", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                       "0123456789abcdef", "/", "\x7f"};
  static const char *const bad[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xd0", "\xe2\x82",
                                    "\xf5\x80\x80\x80", "\x80"};
  size_t len = 0;
  int count = (int)(rand_r(seed) % 24);
  for (int i = 0; i < count; i++) {
    const char *p = allow_invalid && rand_r(seed) % 16 == 0
                        ? bad[rand_r(seed) % (sizeof bad / sizeof *bad)]
                        : pieces[rand_r(seed) % (sizeof pieces / sizeof *pieces)];
    memcpy(buf + len, p, strlen(p));
    len += strlen(p);
  }
  return len;
}

/* ac_json_append_string writes what jansson writes of every valid string
 * and refuses, leaving the buffer as it was, exactly what jansson refuses. */
static void test_appended_strings_agree_with_jansson(void **state) {
  (void)state;
  unsigned seed = 7;
  char text[24 * 16];
  for (int round = 0; round < 20000; round++) {
    size_t len = random_text(text, &seed, round % 2);
    json_t *s = json_stringn(text, len);
    ac_buf b = AC_BUF_INIT(1u << 20);
    assert_int_equal(ac_buf_puts(&b, "x"), AC_OK);
    int rc = ac_json_append_string(&b, text, len);
    if (!s) {
      assert_int_equal(rc, AC_ERR_INVALID);
      assert_string_equal(b.data, "x");
    } else {
      assert_int_equal(rc, AC_OK);
      char *want = json_dumps(s, JSON_ENCODE_ANY);
      if (strcmp(b.data + 1, want) != 0)
        fail_msg("wrote %s\nwant  %s", b.data + 1, want);
      free(want);
    }
    json_decref(s);
    ac_buf_free(&b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strings_are_escaped_as_jansson_does),
      cmocka_unit_test(test_values_and_nesting),
      cmocka_unit_test(test_a_small_buffer_gets_a_prefix_and_the_length),
      cmocka_unit_test(test_depth_is_bounded),
      cmocka_unit_test(test_appended_strings_agree_with_jansson),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
