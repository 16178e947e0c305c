/* number.c — exact JSON number comparison, integrality, multipleOf on the
 * decimal form, number formatting and deep equality for enum/const. */
#include "schema/schema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;

/* Every int64 and every double is exact in x86-64's 64-bit-mantissa long
 * double, so comparing there never rounds 2^53+1 against 2^53. */
static long double as_ld(const json_t *v) {
  return json_is_integer(v) ? (long double)json_integer_value(v) : (long double)json_real_value(v);
}

int ac_schema_num_cmp(const json_t *a, const json_t *b) {
  if (json_is_integer(a) && json_is_integer(b)) {
    json_int_t x = json_integer_value(a), y = json_integer_value(b);
    return (x > y) - (x < y);
  }
  long double x = as_ld(a), y = as_ld(b);
  return (x > y) - (x < y);
}

int ac_schema_num_is_integer(const json_t *v) {
  if (json_is_integer(v))
    return 1;
  if (!json_is_real(v))
    return 0;
  double d = json_real_value(v);
  return isfinite(d) && floor(d) == d;
}

/* The fewest significant digits (1..17) that read back as d. */
static int shortest_digits(double d) {
  char tmp[40];
  for (int p = 1; p < 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
    if (strtod(tmp, NULL) == d)
      return p;
  }
  return 17;
}

void ac_schema_num_format(const json_t *v, char *out, size_t outlen) {
  if (json_is_integer(v)) {
    snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
    return;
  }
  double d = json_real_value(v);
  snprintf(out, outlen, "%.*g", shortest_digits(d), d);
}

/* |v| as mantissa * 10^exp with mantissa free of trailing zeros, taken from
 * the shortest decimal that reads back as v: the number the author wrote. */
typedef struct decimal {
  uint64_t mant;
  int exp;
} decimal;

static decimal to_decimal(const json_t *v) {
  decimal r = {0, 0};
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    r.mant = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
  } else {
    double d = fabs(json_real_value(v));
    int p = shortest_digits(d);
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, d); /* "d.ddde+XX" */
    char *e = strchr(tmp, 'e');
    if (!e)
      return r;
    for (const char *c = tmp; c < e; c++)
      if (*c >= '0' && *c <= '9')
        r.mant = r.mant * 10 + (uint64_t)(*c - '0');
    r.exp = atoi(e + 1) - (p - 1);
  }
  while (r.mant && r.mant % 10 == 0) {
    r.mant /= 10;
    r.exp++;
  }
  return r;
}

int ac_schema_num_multiple(const json_t *x, const json_t *m) {
  if (json_is_integer(x) && json_is_integer(m)) {
    json_int_t a = json_integer_value(x), b = json_integer_value(m);
    return b > 0 && a % b == 0;
  }
  if (json_is_real(x) && !isfinite(json_real_value(x)))
    return 0;
  decimal dx = to_decimal(x), dm = to_decimal(m);
  if (dx.mant == 0)
    return 1;
  if (dm.mant == 0)
    return 0;
  if (dx.exp >= dm.exp) {
    /* mant_x * 10^k mod mant_m, one power of ten at a time (k <= ~650). */
    u128 r = dx.mant % dm.mant;
    for (int k = dx.exp - dm.exp; k > 0 && r; k--)
      r = (r * 10) % dm.mant;
    return r == 0;
  }
  int d = dm.exp - dx.exp;
  if (d > 19)
    return 0; /* mant_m * 10^d exceeds any 64-bit mant_x */
  uint64_t p = 1;
  for (int k = 0; k < d; k++)
    p *= 10;
  return dx.mant % p == 0 && (dx.mant / p) % dm.mant == 0;
}

int ac_schema_json_equal(const json_t *a, const json_t *b) {
  if (json_is_number(a) && json_is_number(b))
    return ac_schema_num_cmp(a, b) == 0;
  if (json_typeof(a) != json_typeof(b))
    return 0;
  switch (json_typeof(a)) {
  case JSON_STRING:
    return json_string_length(a) == json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
  case JSON_ARRAY: {
    size_t n = json_array_size(a);
    if (n != json_array_size(b))
      return 0;
    for (size_t i = 0; i < n; i++)
      if (!ac_schema_json_equal(json_array_get(a, i), json_array_get(b, i)))
        return 0;
    return 1;
  }
  case JSON_OBJECT: {
    if (json_object_size(a) != json_object_size(b))
      return 0;
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)a, key, klen, v) {
      json_t *w = json_object_getn(b, key, klen);
      if (!w || !ac_schema_json_equal(v, w))
        return 0;
    }
    return 1;
  }
  default: /* true, false, null: equal by type */
    return 1;
  }
}
