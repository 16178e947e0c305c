/* json_write.c — a compact JSON writer over jansson values. */
#include "core/json_write.h"

#include <stdio.h>
#include <string.h>

#define DEPTH_MAX 2048

typedef struct out {
  char *buf;
  size_t size, len; /* len counts past size: the length the text needs */
} out;

static void put(out *o, const char *s, size_t n) {
  if (o->len < o->size)
    memcpy(o->buf + o->len, s, o->size - o->len < n ? o->size - o->len : n);
  o->len += n;
}

static void put_char(out *o, char c) {
  if (o->len < o->size)
    o->buf[o->len] = c;
  o->len++;
}

static void put_string(out *o, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  put_char(o, '"');
  size_t run = 0; /* bytes since the last escape, copied in one go */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    put(o, s + run, i - run);
    run = i + 1;
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
  put(o, s + run, n - run);
  put_char(o, '"');
}

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

static int write_value(out *o, const json_t *v, int depth) {
  if (depth > DEPTH_MAX)
    return -1;
  char num[40];
  int n;
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
    n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    put(o, num, (size_t)n);
    return 0;
  case JSON_REAL:
    /* as jansson writes it: 17 significant digits, always with a point or
     * an exponent so it reads back as a real */
    n = snprintf(num, sizeof num, "%.17g", json_real_value(v));
    tidy_exponent(num);
    put(o, num, strlen(num));
    if (!strpbrk(num, ".e")) /* nan and inf cannot occur: jansson refuses them */
      put(o, ".0", 2);
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
  out o = {buf, size, 0};
  return v && write_value(&o, v, 0) == 0 ? o.len : 0;
}
