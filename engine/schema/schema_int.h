/* schema_int.h — private to engine/schema: the compiled schema tree that
 * compile.c builds and validate.c, defaults.c and secrets.c walk. */
#ifndef AC_SCHEMA_SCHEMA_INT_H
#define AC_SCHEMA_SCHEMA_INT_H

#include "schema/schema.h"

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Nesting limits: a schema deeper than this is refused at compile, which
 * also bounds the recursion of every walk over an instance. */
#define AC_SCHEMA_DEPTH_MAX 64
/* Errors one validation keeps; past this they are counted, not stored. */
#define AC_SCHEMA_ERRORS_MAX 1000

/* Bits of the `type` keyword. */
enum {
  T_NULL = 1 << 0,
  T_BOOLEAN = 1 << 1,
  T_OBJECT = 1 << 2,
  T_ARRAY = 1 << 3,
  T_NUMBER = 1 << 4,
  T_STRING = 1 << 5,
  T_INTEGER = 1 << 6
};

/* Formats of docs/plugin-authoring.md. FMT_NONE: no format keyword. */
typedef enum {
  FMT_NONE = 0,
  FMT_URI,
  FMT_EMAIL,
  FMT_HOSTNAME,
  FMT_IPV4,
  FMT_IPV6,
  FMT_UUID,
  FMT_DATE_TIME
} fmt_kind;

typedef struct node node;

/* One named property of `properties`; name is borrowed from the schema. */
typedef struct prop {
  const char *name;
  size_t len;
  node *schema;
} prop;

/* A compiled (sub)schema. Every json_t here is borrowed from the schema copy
 * the ac_schema owns. Absent limits are -1; absent subschemas are NULL. */
struct node {
  int boolean;          /* -1: object schema; 0: false; 1: true */
  const json_t *json;   /* this subschema's JSON */
  unsigned types;       /* T_* bits; 0 when `type` is absent */
  const json_t *minimum, *maximum, *ex_minimum, *ex_maximum, *multiple_of;
  int64_t min_length, max_length;
  pcre2_code *pattern;
  const char *pattern_src;
  fmt_kind format;
  const char *format_name;
  prop *props;
  size_t nprops;
  node *additional;
  const json_t *required; /* array of strings */
  int64_t min_props, max_props;
  node **prefix;
  size_t nprefix;
  node *items;
  int64_t min_items, max_items;
  int unique_items;
  const json_t *enum_values;
  const json_t *const_value; /* NULL when absent (a JSON null const is json_null()) */
  node **all_of, **any_of, **one_of;
  size_t nall, nany, none;
  node *not_;
  int write_only;
  const json_t *default_value;
};

struct ac_schema {
  json_t *json; /* owned copy */
  node *root;
  pcre2_match_context *mctx; /* bounds the work one regex match may do */
};

/* --- formats.c --- */

/* Format name to kind; FMT_NONE for names the engine does not support. */
fmt_kind ac_schema_format_kind(const char *name);

/* 1 if the string s (len bytes, valid UTF-8) is in the format, else 0. */
int ac_schema_format_check(fmt_kind kind, const char *s, size_t len);

/* --- number.c --- */

/* Exact comparison of two JSON numbers (integers or reals): <0, 0, >0. */
int ac_schema_num_cmp(const json_t *a, const json_t *b);

/* 1 if the JSON number x is an integer multiple of the positive number m,
 * reasoning on the shortest decimal form of each so 0.3 is a multiple of
 * 0.1 as written; else 0. */
int ac_schema_num_multiple(const json_t *x, const json_t *m);

/* 1 if v is a JSON integer or a real with no fractional part. */
int ac_schema_num_is_integer(const json_t *v);

/* Shortest text that reads back as the JSON number v ("1", "0.1", "1e+300"). */
void ac_schema_num_format(const json_t *v, char *out, size_t outlen);

/* Deep JSON equality where 1 equals 1.0 and object key order is ignored. */
int ac_schema_json_equal(const json_t *a, const json_t *b);

/* --- secrets.c --- */

/* 1 if n marks a secret: writeOnly true on n or on any allOf/anyOf/oneOf
 * branch of n. */
int ac_schema_node_is_secret(const node *n);

/* Appends "/seg" (RFC 6901-escaped, cut at size) to the NUL-terminated
 * path and returns its old length, so the caller can restore it with
 * path[old] = '\0'. Shared by the Lua conversion and the compiler, whose
 * messages name schema locations the same way. */
size_t ac_schema_path_push(char *path, size_t size, const char *seg, size_t len);

#endif
