/* addr_guard.h — decides whether outbound HTTP may connect to an address
 * (docs/plugin-authoring.md): loopback, private, link-local, unique-local, multicast and other
 * non-public ranges are refused unless an operator allow-listed them.
 *
 * The guard judges the socket address actually being connected to (the
 * HTTP client calls it from curl's open-socket hook), so DNS names, DNS
 * rebinding and exotic IPv4 spellings ("2130706433", "0x7f000001", "127.1")
 * all end up as the same sockaddr. IPv6 forms that carry an IPv4 address
 * (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, SIIT ::ffff:0:0:0/96,
 * NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by that IPv4 address. */
#ifndef AC_OUTBOUND_ADDR_GUARD_H
#define AC_OUTBOUND_ADDR_GUARD_H

#include "core/err.h"

#include <stddef.h>
#include <sys/socket.h>

typedef struct ac_addr_guard ac_addr_guard;

/* At most this many entries in an allow list. */
#define AC_ADDR_GUARD_MAX_ALLOW 256

/* Builds a guard from an allow list: IPv4/IPv6 CIDRs ("127.0.0.0/8",
 * "::1/128"; a bare address means a single host) separated by commas and/or
 * whitespace; NULL or "" allows nothing extra. A bad entry fails with
 * AC_ERR_INVALID and a message naming it. Caller frees with
 * ac_addr_guard_free. The guard is immutable, so threads may share it. */
int ac_addr_guard_new(const char *allow_cidrs, ac_addr_guard **out, ac_err *err);
void ac_addr_guard_free(ac_addr_guard *g);

/* AC_OK if connecting to addr (AF_INET or AF_INET6; the port is ignored) is
 * allowed, else AC_ERR_DENIED with why (if not NULL) set to e.g. "address
 * 127.0.0.1 is loopback". Other address families are denied. */
int ac_addr_guard_check(const ac_addr_guard *g, const struct sockaddr *addr,
                        char *why, size_t why_size);

#endif
