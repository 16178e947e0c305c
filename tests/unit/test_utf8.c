/* test_utf8.c — ac_utf8_repair: valid text is left alone, every byte of a
 * malformed sequence becomes '?', the length never changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/utf8.h"

#include <string.h>

static void check(const char *in, size_t len, const char *want, size_t replaced) {
  char buf[64];
  memcpy(buf, in, len);
  assert_int_equal(ac_utf8_repair(buf, len), replaced);
  assert_memory_equal(buf, want, len);
}

static void test_valid_text_is_kept(void **state) {
  (void)state;
  check("plain ascii", 11, "plain ascii", 0);
  check("\xc3\xa9t\xc3\xa9", 6, "\xc3\xa9t\xc3\xa9", 0);             /* été */
  check("\xe2\x82\xac", 3, "\xe2\x82\xac", 0);                         /* € */
  check("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", 0);                 /* U+1F600 */
  check("\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf", 0);                 /* U+10FFFF */
  check("a\0b", 3, "a\0b", 0);
}

static void test_validity(void **state) {
  (void)state;
  assert_true(ac_utf8_valid("\xc3\xa9t\xc3\xa9", 6));
  assert_true(ac_utf8_valid("", 0));
  assert_false(ac_utf8_valid("\xff", 1));
  assert_false(ac_utf8_valid("ok\xe2\x82", 4));
  /* ASCII is read eight bytes at a time: a bad byte after, inside or at
   * the end of such runs is still found */
  assert_true(ac_utf8_valid("abcdefghijklmnop\xc3\xa9q", 19));
  assert_false(ac_utf8_valid("abcdefgh\xff", 9));
  assert_false(ac_utf8_valid("abcdefg\xffhijklmno", 16));
  assert_false(ac_utf8_valid("abcdefghijklmnop\xc3", 17));
  assert_false(ac_utf8_valid("abcdefghijklmnop\xed\xa0\x80", 19));
}

static void test_malformed_bytes_are_replaced(void **state) {
  (void)state;
  check("\xff\xfe ok", 5, "?? ok", 2);
  check("\xc0\xaf", 2, "??", 2);                 /* overlong '/' */
  check("\xe0\x80\xaf", 3, "???", 3);            /* overlong, three bytes */
  check("\xed\xa0\x80", 3, "???", 3);            /* a surrogate */
  check("\xf4\x90\x80\x80", 4, "????", 4);       /* past U+10FFFF */
  check("x\xc3", 2, "x?", 1);                    /* cut at the end */
  check("\xe2\x82", 2, "??", 2);                 /* cut inside a character */
  check("\x80\xc3\xa9", 3, "?\xc3\xa9", 1);      /* a stray continuation byte */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_text_is_kept),
      cmocka_unit_test(test_malformed_bytes_are_replaced),
      cmocka_unit_test(test_validity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
