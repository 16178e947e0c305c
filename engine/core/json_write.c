/* json_write.c — a compact JSON writer over jansson values. */
#include "core/json_write.h"
#include "core/err.h"
#include "core/utf8.h"

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

/* A JSON string of s[0..n). With check set, s is also checked to be valid
 * UTF-8 in the same pass: -1 when it is not (o then holds a part of it). */
static int put_text(out *o, const char *s, size_t n, int check) {
  static const char hex[] = "0123456789ABCDEF";
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  put_char(o, '"');
  size_t run = 0; /* bytes since the last escape, copied in one go */
  for (size_t i = 0; i < n;) {
    if (n - i >= 8) { /* eight plain ASCII bytes at a time */
      uint64_t w, quote, slash;
      memcpy(&w, s + i, 8);
      quote = w ^ (ones * '"');
      slash = w ^ (ones * '\\');
      uint64_t special = (w & highs) | ((w - ones * 0x20) & ~w & highs) |
                         ((quote - ones) & ~quote & highs) | ((slash - ones) & ~slash & highs);
      if (!special) {
        i += 8;
        continue;
      }
    }
    /* else the next eight bytes one at a time */
    for (size_t end = n - i > 8 ? i + 8 : n; i < end;) {
      unsigned char c = (unsigned char)s[i];
      if (c >= 0x80) {
        size_t len = 1;
        if (check) {
          if (c >= 0xC2 && c <= 0xDF && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80)
            len = 2; /* the common two-byte case (Cyrillic, Latin-1) */
          else if (!(len = ac_utf8_sequence_length((const unsigned char *)s + i, n - i)))
            return -1;
        }
        i += len;
        continue;
      }
      if (c >= 0x20 && c != '"' && c != '\\') {
        i++;
        continue;
      }
      put(o, s + run, i - run);
      run = ++i;
      char esc[7] = {'\\', 0};
      size_t len = 2;
      switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default:
        memcpy(esc + 1, "u00", 3);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        len = 6;
      }
      put(o, esc, len);
    }
  }
  put(o, s + run, n - run);
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
  /* room for the worst case (every byte \u00XX) lets the string be
   * written in place, in runs; past the buffer's limit, a byte at a time */
  if (n < ((size_t)1 << 24) && ac_buf_reserve(b, 6 * n + 2) == AC_OK) {
    out o = {b->data + b->len, b->cap - b->len, 0, NULL, AC_OK};
    int bad = put_text(&o, s, n, 1);
    b->len += bad ? 0 : o.len;
    b->data[b->len] = '\0';
    return bad ? AC_ERR_INVALID : AC_OK;
  }
  out o = {NULL, 0, 0, b, AC_OK};
  if (put_text(&o, s, n, 1) != 0) {
    b->len = start;
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
