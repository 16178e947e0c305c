/* addr_guard.c — allow/deny decision for outbound connect addresses. */
#include "outbound/addr_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One prefix: family AF_INET (4 bytes used) or AF_INET6 (16 bytes). */
typedef struct cidr {
  int family;
  unsigned char bytes[16];
  unsigned bits;
} cidr;


/* Ranges refused unless allow-listed. First match names the reason, so a
 * narrower range sits before any range containing it. Besides what docs/plugin-authoring.md
 * names, other ranges that are never public destinations (documentation,
 * benchmarking, reserved) are refused too: a plugin has no business there. */
static const struct {
  const char *cidr;
  const char *what;
} DENY[] = {
    {"0.0.0.0/8", "unspecified (\"this network\")"},
    {"10.0.0.0/8", "private"},
    {"100.64.0.0/10", "carrier-grade NAT (shared)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"172.16.0.0/12", "private"},
    {"192.0.0.0/24", "special-purpose"},
    {"192.0.2.0/24", "documentation"},
    {"192.88.99.0/24", "reserved (6to4 relay)"},
    {"192.168.0.0/16", "private"},
    {"198.18.0.0/15", "benchmarking"},
    {"198.51.100.0/24", "documentation"},
    {"203.0.113.0/24", "documentation"},
    {"224.0.0.0/4", "multicast"},
    {"255.255.255.255/32", "broadcast"},
    {"240.0.0.0/4", "reserved"},
    {"::/128", "unspecified"},
    {"::1/128", "loopback"},
    {"64:ff9b:1::/48", "local-use NAT64"},
    {"100::/64", "discard-only"},
    {"2001::/32", "Teredo"},
    {"2001:db8::/32", "documentation"},
    {"3fff::/20", "documentation"},
    {"fc00::/7", "unique-local"},
    {"fe80::/10", "link-local"},
    {"fec0::/10", "site-local"},
    {"ff00::/8", "multicast"},
};

#define DENY_COUNT (sizeof DENY / sizeof DENY[0])

struct ac_addr_guard {
  size_t n;
  cidr allow[AC_ADDR_GUARD_MAX_ALLOW];
  cidr deny[DENY_COUNT]; /* DENY, parsed once */
};

/* Parses "addr" or "addr/len" (n bytes at s) with inet_pton. Host bits are
 * cleared so "10.1.2.3/8" means 10.0.0.0/8. */
static int parse_cidr(const char *s, size_t n, cidr *out) {
  char text[INET6_ADDRSTRLEN + 8];
  if (n == 0 || n >= sizeof text)
    return AC_ERR_INVALID;
  memcpy(text, s, n);
  text[n] = '\0';
  char *slash = strchr(text, '/');
  if (slash)
    *slash = '\0';
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, text, out->bytes) == 1)
    out->family = AF_INET;
  else if (inet_pton(AF_INET6, text, out->bytes) == 1)
    out->family = AF_INET6;
  else
    return AC_ERR_INVALID;
  unsigned max = out->family == AF_INET ? 32 : 128;
  out->bits = max;
  if (slash) {
    const char *p = slash + 1;
    size_t digits = strlen(p);
    if (digits == 0 || digits > 3)
      return AC_ERR_INVALID;
    unsigned v = 0;
    for (size_t i = 0; i < digits; i++) {
      if (p[i] < '0' || p[i] > '9')
        return AC_ERR_INVALID;
      v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > max)
      return AC_ERR_INVALID;
    out->bits = v;
  }
  for (unsigned i = 0; i < max / 8; i++) {
    unsigned keep = out->bits > i * 8 ? out->bits - i * 8 : 0;
    if (keep < 8)
      out->bytes[i] &= (unsigned char)(0xff00u >> keep);
  }
  return AC_OK;
}

static int cidr_match(const cidr *c, int family, const unsigned char *a) {
  if (c->family != family)
    return 0;
  unsigned full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(c->bytes, a, full) != 0)
    return 0;
  if (rest == 0)
    return 1;
  unsigned char mask = (unsigned char)(0xff00u >> rest);
  return (c->bytes[full] & mask) == (a[full] & mask);
}

int ac_addr_guard_new(const char *allow_cidrs, ac_addr_guard **out, ac_err *err) {
  *out = NULL;
  ac_addr_guard *g = calloc(1, sizeof *g);
  if (!g)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < DENY_COUNT; i++) {
    if (parse_cidr(DENY[i].cidr, strlen(DENY[i].cidr), &g->deny[i]) != AC_OK) {
      free(g);
      return ac_err_set(err, AC_ERR_INTERNAL, "bad built-in range %s", DENY[i].cidr);
    }
  }
  const char *p = allow_cidrs ? allow_cidrs : "";
  while (*p) {
    size_t skip = strspn(p, ", \t\r\n");
    p += skip;
    size_t len = strcspn(p, ", \t\r\n");
    if (len == 0)
      break;
    if (g->n == AC_ADDR_GUARD_MAX_ALLOW) {
      free(g);
      return ac_err_set(err, AC_ERR_INVALID, "allow list has more than %d entries",
                        AC_ADDR_GUARD_MAX_ALLOW);
    }
    if (parse_cidr(p, len, &g->allow[g->n]) != AC_OK) {
      free(g);
      return ac_err_set(err, AC_ERR_INVALID, "invalid CIDR \"%.*s\" in allow list",
                        (int)(len > 100 ? 100 : len), p);
    }
    g->n++;
    p += len;
  }
  *out = g;
  return AC_OK;
}

void ac_addr_guard_free(ac_addr_guard *g) { free(g); }

/* If a (16 bytes of IPv6) carries an IPv4 address the packets would really
 * go to, copies it to v4 and returns 1. */
static int embedded_ipv4(const unsigned char *a, unsigned char *v4) {
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
  static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  static const unsigned char zero[12] = {0};
  if (memcmp(a, mapped, 12) == 0 || memcmp(a, siit, 12) == 0 ||
      memcmp(a, nat64, 12) == 0) {
    memcpy(v4, a + 12, 4);
    return 1;
  }
  if (memcmp(a, zero, 12) == 0) {
    /* IPv4-compatible; :: and ::1 are not, they have names of their own. */
    if (a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1)
      return 0;
    memcpy(v4, a + 12, 4);
    return 1;
  }
  if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
    memcpy(v4, a + 2, 4);
    return 1;
  }
  return 0;
}

static int allowed(const ac_addr_guard *g, int family, const unsigned char *a) {
  for (size_t i = 0; i < g->n; i++)
    if (cidr_match(&g->allow[i], family, a))
      return 1;
  return 0;
}

static const char *deny_reason(const ac_addr_guard *g, int family,
                               const unsigned char *a) {
  for (size_t i = 0; i < DENY_COUNT; i++) {
    if (cidr_match(&g->deny[i], family, a))
      return DENY[i].what;
  }
  return NULL;
}

int ac_addr_guard_check(const ac_addr_guard *g, const struct sockaddr *addr,
                        char *why, size_t why_size) {
  if (why && why_size)
    why[0] = '\0';
  int family = addr ? addr->sa_family : AF_UNSPEC;
  unsigned char a[16];
  if (family == AF_INET) {
    memcpy(a, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, 4);
  } else if (family == AF_INET6) {
    memcpy(a, &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr, 16);
  } else {
    if (why && why_size)
      snprintf(why, why_size, "address family %d is not allowed", family);
    return AC_ERR_DENIED;
  }
  char text[INET6_ADDRSTRLEN];
  if (!inet_ntop(family, a, text, sizeof text))
    snprintf(text, sizeof text, "?");

  unsigned char v4[4];
  int has_v4 = family == AF_INET6 && embedded_ipv4(a, v4);
  if (allowed(g, family, a) || (has_v4 && allowed(g, AF_INET, v4)))
    return AC_OK;

  const char *what = deny_reason(g, family, a);
  if (what) {
    if (why && why_size)
      snprintf(why, why_size, "address %s is %s", text, what);
    return AC_ERR_DENIED;
  }
  if (has_v4 && (what = deny_reason(g, AF_INET, v4)) != NULL) {
    char v4text[INET_ADDRSTRLEN];
    if (!inet_ntop(AF_INET, v4, v4text, sizeof v4text))
      snprintf(v4text, sizeof v4text, "?");
    if (why && why_size)
      snprintf(why, why_size, "address %s is %s (embedded IPv4 %s)", text, what, v4text);
    return AC_ERR_DENIED;
  }
  return AC_OK;
}
