/* formats.c — the `format` checks of docs/plugin-authoring.md: uri (libcurl's curl_url),
 * email, hostname (A-labels through libidn2), ipv4, ipv6 (inet_pton), uuid
 * and date-time. */
#include "schema/schema_int.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <idn2.h>
#include <string.h>
#include <strings.h>

static const struct {
  const char *name;
  fmt_kind kind;
} formats[] = {
    {"uri", FMT_URI},   {"email", FMT_EMAIL}, {"hostname", FMT_HOSTNAME}, {"ipv4", FMT_IPV4},
    {"ipv6", FMT_IPV6}, {"uuid", FMT_UUID},   {"date-time", FMT_DATE_TIME},
};

fmt_kind ac_schema_format_kind(const char *name) {
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (strcmp(formats[i].name, name) == 0)
      return formats[i].kind;
  return FMT_NONE;
}

/* ASCII-only classes: a locale must never widen what a format accepts. */
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* ---- ipv4: dotted quad, 0..255, no leading zeros (they read as octal) ---- */

static int ipv4_ok(const char *s, size_t len) {
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= len || s[i] != '.')
        return 0;
      i++;
    }
    size_t start = i;
    int value = 0;
    while (i < len && is_digit((unsigned char)s[i]) && i - start < 3)
      value = value * 10 + (s[i++] - '0');
    size_t n = i - start;
    if (n == 0 || value > 255 || (n > 1 && s[start] == '0'))
      return 0;
  }
  return i == len;
}

/* ---- ipv6: the C library's parser, which takes no zone ids or prefixes ---- */

static int ipv6_ok(const char *s, size_t len) {
  char buf[INET6_ADDRSTRLEN + 1];
  unsigned char addr[16];
  if (len == 0 || len >= sizeof buf || memchr(s, '\0', len))
    return 0;
  memcpy(buf, s, len);
  buf[len] = '\0';
  return inet_pton(AF_INET6, buf, addr) == 1;
}

/* ---- hostname: RFC 1123 labels of letters, digits and inner hyphens ---- */

/* An "xn--" label is an IDNA2008 A-label (RFC 5890): its Punycode decodes
 * to a U-label that IDNA2008 allows and that encodes back to the same
 * label. libidn2 decides both. */
static int a_label_ok(const char *s, size_t len) {
  char label[64], *u = NULL, *back = NULL;
  memcpy(label, s, len); /* len <= 63: checked by the caller */
  label[len] = '\0';
  int ok = idn2_to_unicode_8z8z(label, &u, 0) == IDN2_OK &&
           idn2_lookup_u8((const uint8_t *)u, (uint8_t **)&back, IDN2_NONTRANSITIONAL) == IDN2_OK &&
           strcasecmp(back, label) == 0;
  idn2_free(u);
  idn2_free(back);
  return ok;
}

static int hostname_ok(const char *s, size_t len) {
  if (len == 0 || len > 253)
    return 0;
  size_t label = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || s[i] == '.') {
      if (label == 0 || label > 63 || s[i - 1] == '-')
        return 0;
      const char *start = s + i - label;
      if (label >= 4 && strncasecmp(start, "xn--", 4) == 0 && !a_label_ok(start, label))
        return 0;
      label = 0;
      continue;
    }
    int c = (unsigned char)s[i];
    if (!is_alpha(c) && !is_digit(c) && c != '-')
      return 0;
    if (c == '-' && label == 0)
      return 0;
    label++;
  }
  return 1;
}

/* ---- email: RFC 5321 Mailbox (dot-atom or quoted local part; a domain or
 * an address literal), ASCII only ---- */

static int atext(int c) {
  return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Length of the local part including its quotes, or 0 if malformed. */
static size_t local_part(const char *s, size_t len) {
  size_t i = 0;
  if (len > 0 && s[0] == '"') {
    for (i = 1; i < len; i++) {
      int c = (unsigned char)s[i];
      if (c == '"')
        return i + 1;
      if (c == '\\') {
        if (++i >= len || s[i] < 32 || s[i] > 126)
          return 0;
      } else if (c < 32 || c > 126) {
        return 0;
      }
    }
    return 0; /* unclosed quote */
  }
  int prev_dot = 1; /* no leading dot */
  for (; i < len && s[i] != '@'; i++) {
    int c = (unsigned char)s[i];
    if (c == '.') {
      if (prev_dot)
        return 0;
      prev_dot = 1;
    } else if (atext(c)) {
      prev_dot = 0;
    } else {
      return 0;
    }
  }
  return prev_dot ? 0 : i; /* no trailing dot, not empty */
}

static int email_ok(const char *s, size_t len) {
  size_t n = local_part(s, len);
  if (n == 0 || n > 64 || n >= len || s[n] != '@')
    return 0;
  const char *d = s + n + 1;
  size_t dlen = len - n - 1;
  if (dlen > 0 && d[0] == '[') {
    if (dlen < 2 || d[dlen - 1] != ']')
      return 0;
    if (dlen > 6 && strncasecmp(d + 1, "IPv6:", 5) == 0)
      return ipv6_ok(d + 6, dlen - 7);
    return ipv4_ok(d + 1, dlen - 2);
  }
  return hostname_ok(d, dlen);
}

/* ---- uuid: 8-4-4-4-12 hex digits, any version ---- */

static int uuid_ok(const char *s, size_t len) {
  if (len != 36)
    return 0;
  for (size_t i = 0; i < len; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex((unsigned char)s[i]))
      return 0;
  }
  return 1;
}

/* ---- date-time: RFC 3339 §5.6, leap second only at 23:59:60 UTC ---- */

/* Reads exactly n ASCII digits at s[*i]; -1 if they are not there. */
static int digits(const char *s, size_t len, size_t *i, int n) {
  int v = 0;
  for (int k = 0; k < n; k++, (*i)++) {
    if (*i >= len || !is_digit((unsigned char)s[*i]))
      return -1;
    v = v * 10 + (s[*i] - '0');
  }
  return v;
}

static int expect(const char *s, size_t len, size_t *i, const char *alts) {
  if (*i >= len || !s[*i] || !strchr(alts, s[*i]))
    return 0;
  (*i)++;
  return 1;
}

static int days_in_month(int year, int month) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

static int date_time_ok(const char *s, size_t len) {
  size_t i = 0;
  int y = digits(s, len, &i, 4);
  if (y < 0 || !expect(s, len, &i, "-"))
    return 0;
  int mo = digits(s, len, &i, 2);
  if (mo < 1 || mo > 12 || !expect(s, len, &i, "-"))
    return 0;
  int d = digits(s, len, &i, 2);
  if (d < 1 || d > days_in_month(y, mo) || !expect(s, len, &i, "Tt"))
    return 0;
  int h = digits(s, len, &i, 2);
  if (h < 0 || h > 23 || !expect(s, len, &i, ":"))
    return 0;
  int mi = digits(s, len, &i, 2);
  if (mi < 0 || mi > 59 || !expect(s, len, &i, ":"))
    return 0;
  int sec = digits(s, len, &i, 2);
  if (sec < 0 || sec > 60)
    return 0;
  if (i < len && s[i] == '.') {
    size_t start = ++i;
    while (i < len && is_digit((unsigned char)s[i]))
      i++;
    if (i == start)
      return 0;
  }
  int offset = 0; /* minutes east of UTC */
  if (expect(s, len, &i, "Zz")) {
    offset = 0;
  } else {
    if (i >= len || (s[i] != '+' && s[i] != '-'))
      return 0;
    int sign = s[i++] == '-' ? -1 : 1;
    int oh = digits(s, len, &i, 2);
    if (oh < 0 || oh > 23 || !expect(s, len, &i, ":"))
      return 0;
    int om = digits(s, len, &i, 2);
    if (om < 0 || om > 59)
      return 0;
    offset = sign * (oh * 60 + om);
  }
  if (i != len)
    return 0;
  if (sec == 60) {
    int utc = ((h * 60 + mi - offset) % 1440 + 1440) % 1440;
    if (utc != 23 * 60 + 59)
      return 0;
  }
  return 1;
}

/* ---- uri: an absolute URI of RFC 3986 characters; the authority form is
 * parsed by libcurl, the opaque form (mailto:, urn:) needs only its scheme
 * and character set ---- */

/* '[' and ']' may only enclose an IP literal host: "//[v6]:port". */
static int uri_brackets_ok(const char *s, size_t len, int authority) {
  const char *open = memchr(s, '[', len), *close = memchr(s, ']', len);
  if (!open && !close)
    return 1;
  if (!authority || !open || !close || close < open)
    return 0;
  /* The authority runs from after "scheme://" to the first / ? or #. */
  const char *a = strstr(s, "//") + 2, *end = a;
  while (end < s + len && *end != '/' && *end != '?' && *end != '#')
    end++;
  const char *host = a;
  for (const char *p = a; p < end; p++)
    if (*p == '@')
      host = p + 1;
  if (open != host || close >= end)
    return 0;
  /* Only one pair, and only ":port" may follow it. */
  if (memchr(open + 1, '[', len - (size_t)(open + 1 - s)) ||
      memchr(close + 1, ']', len - (size_t)(close + 1 - s)))
    return 0;
  return close + 1 == end || close[1] == ':';
}

static int uri_chars_ok(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= len || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
        return 0;
      i += 2;
      continue;
    }
    if (!(is_alpha(c) || is_digit(c) || (c && strchr("-._~:/?#[]@!$&'()*+,;=", c))))
      return 0;
  }
  return 1;
}

static int uri_ok(const char *s, size_t len) {
  if (len == 0 || memchr(s, '\0', len) || !is_alpha((unsigned char)s[0]))
    return 0;
  size_t i = 1;
  while (i < len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) ||
                     s[i] == '+' || s[i] == '-' || s[i] == '.'))
    i++;
  if (i >= len || s[i] != ':')
    return 0;
  const char *rest = s + i + 1;
  size_t rlen = len - i - 1;
  int authority = rlen >= 2 && rest[0] == '/' && rest[1] == '/';
  if (!uri_chars_ok(s, len) || !uri_brackets_ok(s, len, authority))
    return 0;
  if (!authority)
    return 1;
  CURLU *h = curl_url();
  if (!h)
    return 0;
  CURLUcode rc = curl_url_set(h, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME);
  curl_url_cleanup(h);
  return rc == CURLUE_OK;
}

int ac_schema_uri_ok(const char *s, size_t len) { return uri_ok(s, len); }

int ac_schema_format_check(fmt_kind kind, const char *s, size_t len) {
  switch (kind) {
  case FMT_URI: return uri_ok(s, len);
  case FMT_EMAIL: return email_ok(s, len);
  case FMT_HOSTNAME: return hostname_ok(s, len);
  case FMT_IPV4: return ipv4_ok(s, len);
  case FMT_IPV6: return ipv6_ok(s, len);
  case FMT_UUID: return uuid_ok(s, len);
  case FMT_DATE_TIME: return date_time_ok(s, len);
  case FMT_NONE:
  default: return 1;
  }
}
