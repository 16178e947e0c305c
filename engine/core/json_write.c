/* json_write.c — a compact JSON writer over jansson values. */
#include "core/json_write.h"
#include "core/bytes.h"
#include "core/err.h"
#include "core/utf8.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define DEPTH_MAX 2048

/* Text goes to a fixed buffer (len counts past size: the length the text
 * needs) or, with grow set, is appended to that buffer (rc keeps the first
 * failure). */
typedef struct out {
  char *buf;
  size_t size, len;
  ac_buf *grow;
  int rc;
} out;

static void put(out *o, const char *s, size_t n) {
  if (o->grow) {
    if (o->rc == AC_OK)
      o->rc = ac_buf_append(o->grow, s, n);
    return;
  }
  if (o->len < o->size)
    memcpy(o->buf + o->len, s, o->size - o->len < n ? o->size - o->len : n);
  o->len += n;
}

static void put_char(out *o, char c) {
  if (!o->grow && o->len < o->size) {
    o->buf[o->len++] = c;
    return;
  }
  put(o, &c, 1);
}

/* How many of the sixteen bytes at s go out as they are: 16 when none
 * needs an escape and, with check, all are whole characters of one or two
 * bytes (ASCII, Cyrillic, Greek, Latin-1 text); 15 when the last leads a
 * character that ends further on; 0 when the byte-wise way must decide
 * (an escape, a longer character, invalid UTF-8). s starts on a character. */
static inline size_t plain_run(const char *s, int check) {
  ac_bytes16 v = ac_bytes16_load(s);
  if (ac_lanes16_any((v < 0x20) | (v == '"') | (v == '\\')))
    return 0;
  ac_lanes16 high = v >= 0x80;
  if (!check || !ac_lanes16_any(high))
    return 16;
  /* a lead 0xC2..0xDF is followed by a continuation, and a continuation
   * follows a lead: the lead lanes moved on by one are the continuations */
  ac_lanes16 lead = (v & 0xE0) == 0xC0, cont = (v & 0xC0) == 0x80;
  if (ac_lanes16_any((high ^ (lead | cont)) | (lead & ((v & 0x1E) == 0))))
    return 0;
  unsigned __int128 leads, conts;
  memcpy(&leads, &lead, sizeof leads);
  memcpy(&conts, &cont, sizeof conts);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (leads << 8 != conts)
    return 0;
  return leads >> 120 ? 15 : 16;
#else
  if (leads >> 8 != conts)
    return 0;
  return leads & 0xFF ? 15 : 16;
#endif
}

/* Writes s[0..n), escaped for a JSON string (no quotes), at d, which has
 * room for 6n bytes. Returns the bytes written, or -1 with check set when
 * s is not valid UTF-8. Sixteen bytes at a time while they need nothing. */
static ptrdiff_t escape_at(char *d, const char *s, size_t n, int check) {
  static const char hex[] = "0123456789ABCDEF";
  char *start = d;
  for (size_t i = 0; i < n;) {
    size_t left = n - i;
    if (left >= 16) {
      size_t whole = plain_run(s + i, check);
      if (whole) { /* all sixteen go: d has room for 6n */
        memcpy(d, s + i, 16);
        d += whole;
        i += whole;
        continue;
      }
    }
    /* else the next sixteen bytes one at a time */
    for (size_t end = n - i > 16 ? i + 16 : n; i < end;) {
      unsigned char c = (unsigned char)s[i];
      if (c >= 0x80) {
        size_t len = 1;
        if (check) {
          if (c >= 0xC2 && c <= 0xDF && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80)
            len = 2;
          else if (!(len = ac_utf8_sequence_length((const unsigned char *)s + i, n - i)))
            return -1;
        }
        memcpy(d, s + i, len);
        d += len;
        i += len;
        continue;
      }
      i++;
      if (c >= 0x20 && c != '"' && c != '\\') {
        *d++ = (char)c;
        continue;
      }
      *d++ = '\\';
      switch (c) {
      case '"': *d++ = '"'; break;
      case '\\': *d++ = '\\'; break;
      case '\b': *d++ = 'b'; break;
      case '\f': *d++ = 'f'; break;
      case '\n': *d++ = 'n'; break;
      case '\r': *d++ = 'r'; break;
      case '\t': *d++ = 't'; break;
      default:
        memcpy(d, "u00", 3);
        d[3] = hex[c >> 4];
        d[4] = hex[c & 15];
        d += 5;
      }
    }
  }
  return d - start;
}

/* Where 'need' bytes can be written straight into o's text, or NULL. */
static char *room(out *o, size_t need) {
  if (o->grow) {
    if (o->rc != AC_OK || need > ((size_t)1 << 20) || ac_buf_reserve(o->grow, need) != AC_OK)
      return NULL;
    return o->grow->data + o->grow->len;
  }
  return o->len <= o->size && o->size - o->len >= need ? o->buf + o->len : NULL;
}

static void wrote(out *o, size_t n) {
  if (o->grow) {
    o->grow->len += n;
    o->grow->data[o->grow->len] = '\0';
  } else {
    o->len += n;
  }
}

/* A JSON string of s[0..n). With check set, s is also checked to be valid
 * UTF-8 in the same pass: -1 when it is not (o then holds a part of it).
 * Written in place when there is room for the worst case, else a piece
 * at a time through a buffer, each piece ending on a character. */
#define PIECE 512
static int put_text(out *o, const char *s, size_t n, int check) {
  put_char(o, '"');
  for (size_t i = 0; i < n;) {
    size_t len = n - i;
    char *d = room(o, 6 * len);
    if (d) {
      ptrdiff_t w = escape_at(d, s + i, len, check);
      if (w < 0)
        return -1;
      wrote(o, (size_t)w);
      break;
    }
    char piece[6 * PIECE];
    if (len > PIECE) {
      len = PIECE;
      for (int back = 0; back < 3 && ((unsigned char)s[i + len] & 0xC0) == 0x80; back++)
        len--;
    }
    ptrdiff_t w = escape_at(piece, s + i, len, check);
    if (w < 0)
      return -1;
    put(o, piece, (size_t)w);
    i += len;
  }
  put_char(o, '"');
  return 0;
}

/* Strings jansson holds are valid UTF-8 already. */
static void put_string(out *o, const char *s, size_t n) { put_text(o, s, n, 0); }

/* "1e+20" -> "1e20", "2.5e-07" -> "2.5e-7": the exponent without a plus
 * sign or leading zeros, as jansson writes it. */
static void tidy_exponent(char *num) {
  char *e = strchr(num, 'e');
  if (!e)
    return;
  char *digits = e + 1 + (e[1] == '-'), *from = e + 1 + (e[1] == '-' || e[1] == '+');
  while (from[0] == '0' && from[1])
    from++;
  memmove(digits, from, strlen(from) + 1);
}

/* Decimal digits, without a format to parse: a response holds many. */
static void put_integer(out *o, long long v) {
  char digits[24];
  size_t n = sizeof digits;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    digits[--n] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    digits[--n] = '-';
  put(o, digits + n, sizeof digits - n);
}

/* As jansson writes a real: 17 significant digits, always with a point or
 * an exponent so it reads back as a real. d is finite. */
static void put_real(out *o, double d) {
  /* answers repeat the same few reals (confidences): the text of the last
   * ones is kept per thread, keyed by the value's bits */
  static _Thread_local struct {
    uint64_t bits;
    size_t len;
    char text[40];
  } recent[8];
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  unsigned slot = (unsigned)((bits * 0x9E3779B97F4A7C15ull) >> 61);
  if (recent[slot].len == 0 || recent[slot].bits != bits) {
    char *num = recent[slot].text;
    snprintf(num, sizeof recent[slot].text - 2, "%.17g", d);
    tidy_exponent(num);
    size_t len = strlen(num);
    if (!strpbrk(num, ".e")) { /* room was kept for it */
      memcpy(num + len, ".0", 3);
      len += 2;
    }
    recent[slot].bits = bits;
    recent[slot].len = len;
  }
  put(o, recent[slot].text, recent[slot].len);
}

static int write_value(out *o, const json_t *v, int depth) {
  if (depth > DEPTH_MAX)
    return -1;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    put_char(o, '{');
    const char *key;
    size_t key_len;
    json_t *member;
    int first = 1;
    json_object_keylen_foreach((json_t *)v, key, key_len, member) {
      if (!first)
        put_char(o, ',');
      first = 0;
      put_string(o, key, key_len);
      put_char(o, ':');
      if (write_value(o, member, depth + 1) != 0)
        return -1;
    }
    put_char(o, '}');
    return 0;
  }
  case JSON_ARRAY:
    put_char(o, '[');
    for (size_t i = 0, count = json_array_size(v); i < count; i++) {
      if (i)
        put_char(o, ',');
      if (write_value(o, json_array_get(v, i), depth + 1) != 0)
        return -1;
    }
    put_char(o, ']');
    return 0;
  case JSON_STRING:
    put_string(o, json_string_value(v), json_string_length(v));
    return 0;
  case JSON_INTEGER:
    put_integer(o, json_integer_value(v));
    return 0;
  case JSON_REAL:
    put_real(o, json_real_value(v));
    return 0;
  case JSON_TRUE:
    put(o, "true", 4);
    return 0;
  case JSON_FALSE:
    put(o, "false", 5);
    return 0;
  case JSON_NULL:
    put(o, "null", 4);
    return 0;
  }
  return -1;
}

size_t ac_json_write(const json_t *v, char *buf, size_t size) {
  out o = {buf, size, 0, NULL, AC_OK};
  return v && write_value(&o, v, 0) == 0 ? o.len : 0;
}

int ac_json_append(ac_buf *b, const json_t *v) {
  out o = {NULL, 0, 0, b, AC_OK};
  if (!v || write_value(&o, v, 0) != 0)
    return AC_ERR_INVALID;
  return o.rc;
}

int ac_json_append_string(ac_buf *b, const char *s, size_t n) {
  size_t start = b->len;
  out o = {NULL, 0, 0, b, AC_OK};
  if (put_text(&o, s, n, 1) != 0) {
    b->len = start;
    if (b->data)
      b->data[start] = '\0';
    return AC_ERR_INVALID;
  }
  return o.rc;
}

int ac_json_append_integer(ac_buf *b, long long v) {
  out o = {NULL, 0, 0, b, AC_OK};
  put_integer(&o, v);
  return o.rc;
}

int ac_json_append_real(ac_buf *b, double d) {
  out o = {NULL, 0, 0, b, AC_OK};
  put_real(&o, d);
  return o.rc;
}
