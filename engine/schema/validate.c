/* validate.c — checks an instance against a compiled schema with JSON
 * Schema 2020-12 semantics, collecting every error with its JSON Pointer. */
#include "core/buf.h"
#include "schema/schema_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The JSON Pointer of the instance location under check. */
#define PATH_LIMIT (1u << 20)

typedef struct vctx {
  const ac_schema *s;
  json_t *errors; /* NULL: only validity matters, stop at the first failure */
  ac_buf *path;
  int *oom;
} vctx;

/* ---- error collection ---- */

static void add_error(vctx *c, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(vctx *c, const char *keyword, const char *fmt, ...) {
  if (!c->errors || json_array_size(c->errors) >= AC_SCHEMA_ERRORS_MAX)
    return;
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *e = json_object();
  if (!e || json_object_set_new(e, "path", json_stringn(c->path->data ? c->path->data : "",
                                                        c->path->len)) ||
      json_object_set_new(e, "keyword", json_string(keyword)) ||
      json_object_set_new(e, "message", json_string(msg))) {
    *c->oom = 1;
    json_decref(e);
    return;
  }
  if (json_array_append_new(c->errors, e)) /* which took e, even when failing */
    *c->oom = 1;
}

/* Moves the errors of a failed branch into c, up to the cap. */
static void take_errors(vctx *c, json_t *from) {
  if (!c->errors || !from)
    return;
  for (size_t i = 0; i < json_array_size(from); i++) {
    if (json_array_size(c->errors) >= AC_SCHEMA_ERRORS_MAX)
      return;
    json_array_append(c->errors, json_array_get(from, i));
  }
}

/* ---- path ---- */

static size_t path_push_key(vctx *c, const char *key, size_t len) {
  size_t old = c->path->len;
  int rc = ac_buf_append(c->path, "/", 1);
  for (size_t i = 0; i < len && rc == AC_OK; i++) {
    if (key[i] == '~')
      rc = ac_buf_append(c->path, "~0", 2);
    else if (key[i] == '/')
      rc = ac_buf_append(c->path, "~1", 2);
    else
      rc = ac_buf_append(c->path, key + i, 1);
  }
  if (rc)
    *c->oom = 1;
  return old;
}

static size_t path_push_index(vctx *c, size_t i) {
  size_t old = c->path->len;
  if (ac_buf_printf(c->path, "/%zu", i))
    *c->oom = 1;
  return old;
}

static void path_pop(vctx *c, size_t old) {
  if (c->path->data && old <= c->path->len) {
    c->path->len = old;
    c->path->data[old] = '\0';
  }
}

/* ---- helpers ---- */

static const char *plural(int64_t n, const char *one, const char *many) { return n == 1 ? one : many; }

static unsigned type_bits(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_NULL: return T_NULL;
  case JSON_TRUE:
  case JSON_FALSE: return T_BOOLEAN;
  case JSON_OBJECT: return T_OBJECT;
  case JSON_ARRAY: return T_ARRAY;
  case JSON_STRING: return T_STRING;
  case JSON_INTEGER: return T_NUMBER | T_INTEGER;
  case JSON_REAL: return T_NUMBER | (ac_schema_num_is_integer(v) ? T_INTEGER : 0);
  }
  return 0;
}

/* "string", "string or null", "array, object or null": in schema order. */
static void type_message(const json_t *type, char *out, size_t outlen) {
  size_t n = json_is_array(type) ? json_array_size(type) : 1, at = 0;
  at += (size_t)snprintf(out, outlen, "must be ");
  for (size_t i = 0; i < n && at < outlen; i++) {
    const json_t *t = json_is_array(type) ? json_array_get(type, i) : type;
    const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
    at += (size_t)snprintf(out + at, outlen - at, "%s%s", sep, json_string_value(t));
  }
}

static size_t code_points(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

static const node *find_prop(const node *n, const char *key, size_t len) {
  for (size_t i = 0; i < n->nprops; i++)
    if (n->props[i].len == len && memcmp(n->props[i].name, key, len) == 0)
      return n->props[i].schema;
  return NULL;
}

static int check(vctx *c, const node *n, const json_t *v);

/* Applies a subschema; a `false` one fails with the applicator's own keyword
 * and message, which says more than "boolean schema is false". */
static int apply(vctx *c, const node *n, const json_t *v, const char *keyword, const char *msg) {
  if (n->boolean == 0) {
    add_error(c, keyword, "%s", msg);
    return 1;
  }
  return check(c, n, v);
}

/* Runs n on v in a context of its own, for branches whose errors count only
 * if the whole anyOf/oneOf fails. *errors: new array or NULL (quick mode). */
static int branch(vctx *c, const node *n, const json_t *v, const char *keyword, json_t **errors) {
  vctx sub = *c;
  sub.errors = c->errors ? json_array() : NULL;
  if (c->errors && !sub.errors)
    *c->oom = 1;
  int bad = apply(&sub, n, v, keyword, "boolean schema is false");
  *errors = sub.errors;
  return bad;
}

/* ---- keyword groups; each returns 1 if v failed (and stops early when no
 * errors are being collected) ---- */

#define FAILED()                                                                                   \
  do {                                                                                             \
    bad = 1;                                                                                       \
    if (!c->errors)                                                                                \
      return 1;                                                                                    \
  } while (0)

static int check_number(vctx *c, const node *n, const json_t *v) {
  int bad = 0;
  char num[40];
  if (n->minimum && ac_schema_num_cmp(v, n->minimum) < 0) {
    ac_schema_num_format(n->minimum, num, sizeof num);
    add_error(c, "minimum", "must be >= %s", num);
    FAILED();
  }
  if (n->maximum && ac_schema_num_cmp(v, n->maximum) > 0) {
    ac_schema_num_format(n->maximum, num, sizeof num);
    add_error(c, "maximum", "must be <= %s", num);
    FAILED();
  }
  if (n->ex_minimum && ac_schema_num_cmp(v, n->ex_minimum) <= 0) {
    ac_schema_num_format(n->ex_minimum, num, sizeof num);
    add_error(c, "exclusiveMinimum", "must be > %s", num);
    FAILED();
  }
  if (n->ex_maximum && ac_schema_num_cmp(v, n->ex_maximum) >= 0) {
    ac_schema_num_format(n->ex_maximum, num, sizeof num);
    add_error(c, "exclusiveMaximum", "must be < %s", num);
    FAILED();
  }
  if (n->multiple_of && !ac_schema_num_multiple(v, n->multiple_of)) {
    ac_schema_num_format(n->multiple_of, num, sizeof num);
    add_error(c, "multipleOf", "must be multiple of %s", num);
    FAILED();
  }
  return bad;
}

static int check_string(vctx *c, const node *n, const json_t *v) {
  int bad = 0;
  const char *s = json_string_value(v);
  size_t len = json_string_length(v);
  if (n->min_length >= 0 || n->max_length >= 0) {
    size_t cp = code_points(s, len);
    if (n->min_length >= 0 && cp < (uint64_t)n->min_length) {
      add_error(c, "minLength", "must have at least %lld %s", (long long)n->min_length,
                plural(n->min_length, "character", "characters"));
      FAILED();
    }
    if (n->max_length >= 0 && cp > (uint64_t)n->max_length) {
      add_error(c, "maxLength", "must NOT have more than %lld %s", (long long)n->max_length,
                plural(n->max_length, "character", "characters"));
      FAILED();
    }
  }
  if (n->pattern) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(n->pattern, NULL);
    int rc = md ? pcre2_match(n->pattern, (PCRE2_SPTR)s, len, 0, 0, md, c->s->mctx)
                : PCRE2_ERROR_NOMEMORY;
    pcre2_match_data_free(md);
    if (rc == PCRE2_ERROR_NOMEMORY)
      *c->oom = 1;
    if (rc < 0) {
      add_error(c, "pattern", "must match pattern \"%.200s\"%s", n->pattern_src,
                rc == PCRE2_ERROR_NOMATCH ? "" : " (match limit reached)");
      FAILED();
    }
  }
  if (n->format != FMT_NONE && !ac_schema_format_check(n->format, s, len)) {
    add_error(c, "format", "must match format \"%s\"", n->format_name);
    FAILED();
  }
  return bad;
}

static int check_object(vctx *c, const node *n, const json_t *v) {
  int bad = 0;
  size_t size = json_object_size(v);
  if (n->min_props >= 0 && size < (uint64_t)n->min_props) {
    add_error(c, "minProperties", "must have at least %lld %s", (long long)n->min_props,
              plural(n->min_props, "property", "properties"));
    FAILED();
  }
  if (n->max_props >= 0 && size > (uint64_t)n->max_props) {
    add_error(c, "maxProperties", "must NOT have more than %lld %s", (long long)n->max_props,
              plural(n->max_props, "property", "properties"));
    FAILED();
  }
  for (size_t i = 0; n->required && i < json_array_size(n->required); i++) {
    const json_t *name = json_array_get(n->required, i);
    if (!json_object_getn(v, json_string_value(name), json_string_length(name))) {
      add_error(c, "required", "must have required property \"%.200s\"", json_string_value(name));
      FAILED();
    }
  }
  for (size_t i = 0; i < n->nprops; i++) {
    const prop *p = &n->props[i];
    const json_t *child = json_object_getn(v, p->name, p->len);
    if (!child)
      continue;
    size_t old = path_push_key(c, p->name, p->len);
    int b = apply(c, p->schema, child, "properties", "must NOT be present");
    path_pop(c, old);
    if (b)
      FAILED();
  }
  if (n->additional) {
    const char *key;
    size_t klen;
    json_t *child;
    json_object_keylen_foreach((json_t *)v, key, klen, child) {
      if (find_prop(n, key, klen))
        continue;
      size_t old = path_push_key(c, key, klen);
      char msg[300];
      snprintf(msg, sizeof msg, "must NOT have additional property \"%.200s\"", key);
      int b = apply(c, n->additional, child, "additionalProperties", msg);
      path_pop(c, old);
      if (b)
        FAILED();
    }
  }
  return bad;
}

static int check_array(vctx *c, const node *n, const json_t *v) {
  int bad = 0;
  size_t size = json_array_size(v);
  if (n->min_items >= 0 && size < (uint64_t)n->min_items) {
    add_error(c, "minItems", "must have at least %lld %s", (long long)n->min_items,
              plural(n->min_items, "item", "items"));
    FAILED();
  }
  if (n->max_items >= 0 && size > (uint64_t)n->max_items) {
    add_error(c, "maxItems", "must NOT have more than %lld %s", (long long)n->max_items,
              plural(n->max_items, "item", "items"));
    FAILED();
  }
  if (n->unique_items) {
    int dup = 0;
    for (size_t j = 1; j < size && !dup; j++)
      for (size_t i = 0; i < j && !dup; i++)
        if (ac_schema_json_equal(json_array_get(v, i), json_array_get(v, j))) {
          add_error(c, "uniqueItems", "must NOT have duplicate items (items %zu and %zu are identical)",
                    i, j);
          dup = 1;
        }
    if (dup)
      FAILED();
  }
  size_t i = 0;
  for (; i < size && i < n->nprefix; i++) {
    size_t old = path_push_index(c, i);
    int b = apply(c, n->prefix[i], json_array_get(v, i), "prefixItems", "must NOT be present");
    path_pop(c, old);
    if (b)
      FAILED();
  }
  if (n->items && i < size) {
    if (n->items->boolean == 0) {
      /* One error for the array rather than one per extra item. */
      add_error(c, "items", "must NOT have more than %zu %s", n->nprefix,
                plural((int64_t)n->nprefix, "item", "items"));
      FAILED();
    } else {
      for (; i < size; i++) {
        size_t old = path_push_index(c, i);
        int b = check(c, n->items, json_array_get(v, i));
        path_pop(c, old);
        if (b)
          FAILED();
      }
    }
  }
  return bad;
}

static int check_combinators(vctx *c, const node *n, const json_t *v) {
  int bad = 0;
  for (size_t i = 0; i < n->nall; i++)
    if (apply(c, n->all_of[i], v, "allOf", "boolean schema is false"))
      FAILED();
  if (n->nany) {
    json_t *collected = c->errors ? json_array() : NULL;
    int matched = 0;
    for (size_t i = 0; i < n->nany && !matched; i++) {
      json_t *errs = NULL;
      matched = !branch(c, n->any_of[i], v, "anyOf", &errs);
      take_errors(&(vctx){.errors = collected}, errs);
      json_decref(errs);
    }
    if (!matched) {
      take_errors(c, collected);
      add_error(c, "anyOf", "must match a schema in anyOf");
    }
    json_decref(collected);
    if (!matched)
      FAILED();
  }
  if (n->none) {
    json_t *collected = c->errors ? json_array() : NULL;
    size_t matched = 0, first = 0, second = 0;
    for (size_t i = 0; i < n->none && matched < 2; i++) {
      json_t *errs = NULL;
      /* Quick mode once one branch matched: only a second match matters. */
      vctx probe = *c;
      if (matched)
        probe.errors = NULL;
      if (!branch(&probe, n->one_of[i], v, "oneOf", &errs)) {
        if (matched++ == 0)
          first = i;
        else
          second = i;
      }
      take_errors(&(vctx){.errors = collected}, errs);
      json_decref(errs);
    }
    if (matched == 0) {
      take_errors(c, collected);
      add_error(c, "oneOf", "must match exactly one schema in oneOf");
    } else if (matched > 1) {
      add_error(c, "oneOf", "must match exactly one schema in oneOf (schemas %zu and %zu both match)",
                first, second);
    }
    json_decref(collected);
    if (matched != 1)
      FAILED();
  }
  if (n->not_) {
    vctx quick = *c;
    quick.errors = NULL;
    if (!check(&quick, n->not_, v)) {
      add_error(c, "not", "must NOT be valid");
      FAILED();
    }
  }
  return bad;
}

/* ---- one subschema ---- */

static int check(vctx *c, const node *n, const json_t *v) {
  if (n->boolean >= 0) {
    if (n->boolean)
      return 0;
    add_error(c, "false schema", "boolean schema is false");
    return 1;
  }
  int bad = 0;
  unsigned bits = type_bits(v);
  if (n->types && !(n->types & bits)) {
    char msg[200];
    type_message(json_object_get(n->json, "type"), msg, sizeof msg);
    add_error(c, "type", "%s", msg);
    FAILED();
  }
  if (n->const_value && !ac_schema_json_equal(v, n->const_value)) {
    add_error(c, "const", "must be equal to constant");
    FAILED();
  }
  if (n->enum_values) {
    int found = 0;
    for (size_t i = 0; i < json_array_size(n->enum_values) && !found; i++)
      found = ac_schema_json_equal(v, json_array_get(n->enum_values, i));
    if (!found) {
      add_error(c, "enum", "must be equal to one of the allowed values");
      FAILED();
    }
  }
  int (*group)(vctx *, const node *, const json_t *) =
      json_is_number(v) ? check_number
      : json_is_string(v) ? check_string
      : json_is_object(v) ? check_object
      : json_is_array(v)  ? check_array
                          : NULL;
  if (group && group(c, n, v))
    FAILED();
  if (check_combinators(c, n, v))
    FAILED();
  return bad;
}

int ac_schema_validate(const ac_schema *s, const json_t *instance, json_t **errors) {
  if (errors)
    *errors = NULL;
  if (!s || !instance)
    return AC_ERR_INVALID;
  ac_buf path = AC_BUF_INIT(PATH_LIMIT);
  int oom = 0;
  vctx c = {.s = s, .errors = errors ? json_array() : NULL, .path = &path, .oom = &oom};
  if (ac_buf_append(&path, "", 0))
    oom = 1;
  int bad = (errors && !c.errors) ? 0 : check(&c, s->root, instance);
  ac_buf_free(&path);
  if (oom || (errors && !c.errors)) {
    json_decref(c.errors);
    return AC_ERR_NOMEM;
  }
  if (errors)
    *errors = c.errors;
  return bad ? AC_ERR_INVALID : AC_OK;
}
