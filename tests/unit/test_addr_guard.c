/* test_addr_guard.c — the outbound address guard on raw socket addresses. */
#include "outbound/addr_guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

/* Fills ss from a textual IPv4 or IPv6 address (test data only). */
static const struct sockaddr *addr_of(const char *ip, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(80);
  } else {
    assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(443);
  }
  return (const struct sockaddr *)ss;
}

typedef struct guard_case {
  const char *allow; /* allow list */
  const char *ip;
  int rc;
  const char *why; /* exact reason when denied */
} guard_case;

static const guard_case CASES[] = {
    /* Nothing allow-listed: every non-public range is refused. */
    {"", "127.0.0.1", AC_ERR_DENIED, "address 127.0.0.1 is loopback"},
    {"", "127.255.255.254", AC_ERR_DENIED, "address 127.255.255.254 is loopback"},
    {"", "10.0.0.1", AC_ERR_DENIED, "address 10.0.0.1 is private"},
    {"", "10.255.255.255", AC_ERR_DENIED, "address 10.255.255.255 is private"},
    {"", "172.16.0.1", AC_ERR_DENIED, "address 172.16.0.1 is private"},
    {"", "172.31.255.255", AC_ERR_DENIED, "address 172.31.255.255 is private"},
    {"", "192.168.1.1", AC_ERR_DENIED, "address 192.168.1.1 is private"},
    {"", "100.64.0.1", AC_ERR_DENIED, "address 100.64.0.1 is carrier-grade NAT (shared)"},
    {"", "100.127.255.255", AC_ERR_DENIED,
     "address 100.127.255.255 is carrier-grade NAT (shared)"},
    {"", "169.254.169.254", AC_ERR_DENIED, "address 169.254.169.254 is link-local"},
    {"", "169.254.0.1", AC_ERR_DENIED, "address 169.254.0.1 is link-local"},
    {"", "224.0.0.1", AC_ERR_DENIED, "address 224.0.0.1 is multicast"},
    {"", "239.255.255.250", AC_ERR_DENIED, "address 239.255.255.250 is multicast"},
    {"", "0.0.0.0", AC_ERR_DENIED, "address 0.0.0.0 is unspecified (\"this network\")"},
    {"", "0.1.2.3", AC_ERR_DENIED, "address 0.1.2.3 is unspecified (\"this network\")"},
    {"", "255.255.255.255", AC_ERR_DENIED, "address 255.255.255.255 is broadcast"},
    {"", "240.0.0.1", AC_ERR_DENIED, "address 240.0.0.1 is reserved"},
    {"", "192.0.2.10", AC_ERR_DENIED, "address 192.0.2.10 is documentation"},
    {"", "198.18.0.1", AC_ERR_DENIED, "address 198.18.0.1 is benchmarking"},
    {"", "::1", AC_ERR_DENIED, "address ::1 is loopback"},
    {"", "::", AC_ERR_DENIED, "address :: is unspecified"},
    {"", "fc00::1", AC_ERR_DENIED, "address fc00::1 is unique-local"},
    {"", "fd12:3456::1", AC_ERR_DENIED, "address fd12:3456::1 is unique-local"},
    {"", "fe80::1", AC_ERR_DENIED, "address fe80::1 is link-local"},
    {"", "febf::1", AC_ERR_DENIED, "address febf::1 is link-local"},
    {"", "ff02::1", AC_ERR_DENIED, "address ff02::1 is multicast"},
    {"", "2001:db8::1", AC_ERR_DENIED, "address 2001:db8::1 is documentation"},
    /* IPv6 spellings of an IPv4 address are judged by that address. */
    {"", "::ffff:127.0.0.1", AC_ERR_DENIED,
     "address ::ffff:127.0.0.1 is loopback (embedded IPv4 127.0.0.1)"},
    {"", "::ffff:169.254.169.254", AC_ERR_DENIED,
     "address ::ffff:169.254.169.254 is link-local (embedded IPv4 169.254.169.254)"},
    {"", "::ffff:10.1.2.3", AC_ERR_DENIED,
     "address ::ffff:10.1.2.3 is private (embedded IPv4 10.1.2.3)"},
    {"", "::127.0.0.1", AC_ERR_DENIED,
     "address ::127.0.0.1 is loopback (embedded IPv4 127.0.0.1)"},
    {"", "::ffff:0:127.0.0.1", AC_ERR_DENIED,
     "address ::ffff:0:7f00:1 is loopback (embedded IPv4 127.0.0.1)"},
    {"", "64:ff9b::7f00:1", AC_ERR_DENIED,
     "address 64:ff9b::7f00:1 is loopback (embedded IPv4 127.0.0.1)"},
    {"", "64:ff9b::a9fe:a9fe", AC_ERR_DENIED,
     "address 64:ff9b::a9fe:a9fe is link-local (embedded IPv4 169.254.169.254)"},
    {"", "2002:7f00:1::1", AC_ERR_DENIED,
     "address 2002:7f00:1::1 is loopback (embedded IPv4 127.0.0.1)"},
    {"", "64:ff9b:1::1", AC_ERR_DENIED, "address 64:ff9b:1::1 is local-use NAT64"},
    /* Public addresses pass, in every form. */
    {"", "8.8.8.8", AC_OK, ""},
    {"", "1.1.1.1", AC_OK, ""},
    {"", "172.32.0.1", AC_OK, ""},
    {"", "172.15.255.255", AC_OK, ""},
    {"", "100.128.0.1", AC_OK, ""},
    {"", "11.0.0.1", AC_OK, ""},
    {"", "223.255.255.255", AC_OK, ""},
    {"", "2001:4860:4860::8888", AC_OK, ""},
    {"", "::ffff:8.8.8.8", AC_OK, ""},
    {"", "64:ff9b::808:808", AC_OK, ""},
    {"", "2002:808:808::1", AC_OK, ""},
    /* Allow-listed ranges pass; their neighbours do not. */
    {"127.0.0.0/8", "127.0.0.1", AC_OK, ""},
    {"127.0.0.0/8", "127.9.9.9", AC_OK, ""},
    {"127.0.0.0/8", "::ffff:127.0.0.1", AC_OK, ""},
    {"127.0.0.0/8", "64:ff9b::7f00:1", AC_OK, ""},
    {"127.0.0.0/8", "10.0.0.1", AC_ERR_DENIED, "address 10.0.0.1 is private"},
    {"127.0.0.0/8", "::1", AC_ERR_DENIED, "address ::1 is loopback"},
    {"127.0.0.0/8", "169.254.169.254", AC_ERR_DENIED, "address 169.254.169.254 is link-local"},
    {"127.0.0.0/8,::1/128", "::1", AC_OK, ""},
    {"10.0.0.128/25", "10.0.0.200", AC_OK, ""},
    {"10.0.0.128/25", "10.0.0.100", AC_ERR_DENIED, "address 10.0.0.100 is private"},
    {"10.1.2.3/8", "10.200.0.1", AC_OK, ""}, /* host bits are ignored */
    {"192.168.1.5", "192.168.1.5", AC_OK, ""},   /* a bare address is one host */
    {"192.168.1.5", "192.168.1.6", AC_ERR_DENIED, "address 192.168.1.6 is private"},
    {" 10.0.0.0/8 ,\t192.168.0.0/16  fc00::/7 ", "fd00::5", AC_OK, ""},
    {" 10.0.0.0/8 ,\t192.168.0.0/16  fc00::/7 ", "192.168.7.7", AC_OK, ""},
    {" 10.0.0.0/8 ,\t192.168.0.0/16  fc00::/7 ", "172.16.0.1", AC_ERR_DENIED,
     "address 172.16.0.1 is private"},
    {"::ffff:0:0/96", "::ffff:10.0.0.1", AC_OK, ""},
    {"0.0.0.0/0", "169.254.169.254", AC_OK, ""},
    {"::/0", "fe80::1", AC_OK, ""},
    {"::/0", "127.0.0.1", AC_ERR_DENIED, "address 127.0.0.1 is loopback"},
};

static void test_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
    const guard_case *c = &CASES[i];
    ac_addr_guard *g = NULL;
    ac_err err;
    if (ac_addr_guard_new(c->allow, &g, &err) != AC_OK)
      fail_msg("case %zu: allow list \"%s\": %s", i, c->allow, err.msg);
    struct sockaddr_storage ss;
    char why[256] = "junk";
    int rc = ac_addr_guard_check(g, addr_of(c->ip, &ss), why, sizeof why);
    if (rc != c->rc || strcmp(why, c->why) != 0)
      fail_msg("case %zu: %s with allow \"%s\": rc %d why \"%s\", want %d \"%s\"", i,
               c->ip, c->allow, rc, why, c->rc, c->why);
    ac_addr_guard_free(g);
  }
}

static void test_bad_allow_lists(void **state) {
  (void)state;
  static const struct {
    const char *list, *entry;
  } bad[] = {
      {"10.0.0.0/33", "10.0.0.0/33"},
      {"127.0.0.0/8,300.1.1.1/8", "300.1.1.1/8"},
      {"abc", "abc"},
      {"10.0.0.0/", "10.0.0.0/"},
      {"10.0.0.0/8x", "10.0.0.0/8x"},
      {"::1/129", "::1/129"},
      {"1.2.3.4/-1", "1.2.3.4/-1"},
      {"0x7f000001", "0x7f000001"},  /* inet_pton takes dotted quads only */
      {"127.1", "127.1"},
      {"::1/128 fe80::1%eth0", "fe80::1%eth0"},
      {"10.0.0.0/8/8", "10.0.0.0/8/8"},
      {"10.0.0.0/0008", "10.0.0.0/0008"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ac_addr_guard *g = (ac_addr_guard *)&g; /* must be reset to NULL */
    ac_err err;
    assert_int_equal(ac_addr_guard_new(bad[i].list, &g, &err), AC_ERR_INVALID);
    assert_null(g);
    assert_int_equal(err.code, AC_ERR_INVALID);
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", bad[i].entry);
    if (!strstr(err.msg, want))
      fail_msg("list \"%s\": message \"%s\" does not name %s", bad[i].list, err.msg, want);
  }
}

static void test_empty_lists_allow_nothing(void **state) {
  (void)state;
  const char *lists[] = {NULL, "", " ", ",,", " , \t\n"};
  for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
    ac_addr_guard *g = NULL;
    assert_int_equal(ac_addr_guard_new(lists[i], &g, NULL), AC_OK);
    struct sockaddr_storage ss;
    assert_int_equal(ac_addr_guard_check(g, addr_of("127.0.0.1", &ss), NULL, 0),
                     AC_ERR_DENIED);
    assert_int_equal(ac_addr_guard_check(g, addr_of("93.184.216.34", &ss), NULL, 0), AC_OK);
    ac_addr_guard_free(g);
  }
}

static void test_too_many_entries(void **state) {
  (void)state;
  char list[AC_ADDR_GUARD_MAX_ALLOW * 16 + 64];
  size_t len = 0;
  for (int i = 0; i <= AC_ADDR_GUARD_MAX_ALLOW; i++)
    len += (size_t)snprintf(list + len, sizeof list - len, "10.%d.%d.0/24,", i / 256, i % 256);
  ac_addr_guard *g = NULL;
  ac_err err;
  assert_int_equal(ac_addr_guard_new(list, &g, &err), AC_ERR_INVALID);
  assert_non_null(strstr(err.msg, "more than"));
}

static void test_other_families_denied(void **state) {
  (void)state;
  ac_addr_guard *g = NULL;
  assert_int_equal(ac_addr_guard_new("0.0.0.0/0,::/0", &g, NULL), AC_OK);
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  char why[128];
  assert_int_equal(ac_addr_guard_check(g, (const struct sockaddr *)&un, why, sizeof why),
                   AC_ERR_DENIED);
  assert_non_null(strstr(why, "family"));
  assert_int_equal(ac_addr_guard_check(g, NULL, why, sizeof why), AC_ERR_DENIED);
  ac_addr_guard_free(g);
  ac_addr_guard_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_bad_allow_lists),
      cmocka_unit_test(test_empty_lists_allow_nothing),
      cmocka_unit_test(test_too_many_entries),
      cmocka_unit_test(test_other_families_denied),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
