/* compile.c — checks a schema against the keyword set of docs/plugin-authoring.md and builds
 * the compiled tree (regexes, formats, limits) the other walks use. */
#include "schema/schema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Work caps for one regex match, so a hostile `pattern` cannot pin a
 * request thread (PCRE2's defaults allow ten million steps). */
#define MATCH_LIMIT 1000000
#define DEPTH_LIMIT 10000

typedef enum {
  K_TYPE, K_PROPERTIES, K_REQUIRED, K_ADDITIONAL, K_ITEMS, K_PREFIX_ITEMS, K_MIN_ITEMS,
  K_MAX_ITEMS, K_UNIQUE_ITEMS, K_MIN_PROPS, K_MAX_PROPS, K_ENUM, K_CONST, K_MIN_LENGTH,
  K_MAX_LENGTH, K_PATTERN, K_MINIMUM, K_MAXIMUM, K_EX_MINIMUM, K_EX_MAXIMUM, K_MULTIPLE_OF,
  K_ALL_OF, K_ANY_OF, K_ONE_OF, K_NOT, K_FORMAT, K_SCHEMA, K_TITLE, K_DESCRIPTION, K_DEFAULT,
  K_EXAMPLES, K_WRITE_ONLY, K_COMMENT
} keyword;

/* docs/plugin-authoring.md's list; anything else is refused, never ignored. */
static const struct {
  const char *name;
  keyword kw;
} keywords[] = {
    {"type", K_TYPE},
    {"properties", K_PROPERTIES},
    {"required", K_REQUIRED},
    {"additionalProperties", K_ADDITIONAL},
    {"items", K_ITEMS},
    {"prefixItems", K_PREFIX_ITEMS},
    {"minItems", K_MIN_ITEMS},
    {"maxItems", K_MAX_ITEMS},
    {"uniqueItems", K_UNIQUE_ITEMS},
    {"minProperties", K_MIN_PROPS},
    {"maxProperties", K_MAX_PROPS},
    {"enum", K_ENUM},
    {"const", K_CONST},
    {"minLength", K_MIN_LENGTH},
    {"maxLength", K_MAX_LENGTH},
    {"pattern", K_PATTERN},
    {"minimum", K_MINIMUM},
    {"maximum", K_MAXIMUM},
    {"exclusiveMinimum", K_EX_MINIMUM},
    {"exclusiveMaximum", K_EX_MAXIMUM},
    {"multipleOf", K_MULTIPLE_OF},
    {"allOf", K_ALL_OF},
    {"anyOf", K_ANY_OF},
    {"oneOf", K_ONE_OF},
    {"not", K_NOT},
    {"format", K_FORMAT},
    {"$schema", K_SCHEMA},
    {"title", K_TITLE},
    {"description", K_DESCRIPTION},
    {"default", K_DEFAULT},
    {"examples", K_EXAMPLES},
    {"writeOnly", K_WRITE_ONLY},
    {"$comment", K_COMMENT},
};

static const struct {
  const char *name;
  unsigned bit;
} type_names[] = {
    {"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT},   {"array", T_ARRAY},
    {"number", T_NUMBER}, {"string", T_STRING},   {"integer", T_INTEGER},
};

typedef struct cctx {
  ac_schema *s;
  ac_err *err;
  pcre2_compile_context *pctx;
  char path[768]; /* "configSchema/properties/url", for messages only */
} cctx;

/* ---- paths ---- */

/* Appends "/seg" (RFC 6901-escaped) to the path; returns the old length. */
static size_t path_push(cctx *c, const char *seg, size_t len) {
  return ac_schema_path_push(c->path, sizeof c->path, seg, len);
}

static size_t path_push_index(cctx *c, size_t i) {
  char num[24];
  int n = snprintf(num, sizeof num, "%zu", i);
  return path_push(c, num, (size_t)n);
}

static void path_pop(cctx *c, size_t old) { c->path[old] = '\0'; }

static int fail(cctx *c, int code, const char *what) {
  return ac_err_set(c->err, code, "%s: %s", c->path, what);
}

/* ---- nodes ---- */

static node *node_new(const json_t *json, int boolean) {
  node *n = calloc(1, sizeof *n);
  if (!n)
    return NULL;
  n->boolean = boolean;
  n->json = json;
  n->min_length = n->max_length = -1;
  n->min_props = n->max_props = -1;
  n->min_items = n->max_items = -1;
  return n;
}

static void node_free(node *n);

static void node_list_free(node **list, size_t count) {
  if (!list)
    return;
  for (size_t i = 0; i < count; i++)
    node_free(list[i]);
  free(list);
}

static void node_free(node *n) {
  if (!n)
    return;
  pcre2_code_free(n->pattern);
  for (size_t i = 0; i < n->nprops; i++)
    node_free(n->props[i].schema);
  free(n->props);
  node_free(n->additional);
  node_free(n->items);
  node_free(n->not_);
  node_list_free(n->prefix, n->nprefix);
  node_list_free(n->all_of, n->nall);
  node_list_free(n->any_of, n->nany);
  node_list_free(n->one_of, n->none);
  free(n);
}

/* ---- keyword value checks ---- */

static int compile_node(cctx *c, const json_t *json, int depth, node **out);

/* A JSON Schema "non-negative integer": 3 and 3.0 both count. */
static int non_negative(cctx *c, const json_t *v, int64_t *out) {
  if (json_is_integer(v) && json_integer_value(v) >= 0) {
    *out = json_integer_value(v);
    return AC_OK;
  }
  if (json_is_real(v) && ac_schema_num_is_integer(v) && json_real_value(v) >= 0) {
    double d = json_real_value(v);
    *out = d >= 9.2e18 ? INT64_MAX : (int64_t)d;
    return AC_OK;
  }
  return fail(c, AC_ERR_INVALID, "must be a non-negative integer");
}

static int type_keyword(cctx *c, const json_t *v, node *n) {
  size_t count = json_is_array(v) ? json_array_size(v) : 1;
  if (!json_is_string(v) && !(json_is_array(v) && count > 0))
    return fail(c, AC_ERR_INVALID, "must be a type name or a non-empty array of type names");
  for (size_t i = 0; i < count; i++) {
    const json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
    unsigned bit = 0;
    for (size_t k = 0; json_is_string(t) && k < sizeof type_names / sizeof type_names[0]; k++)
      if (strcmp(json_string_value(t), type_names[k].name) == 0)
        bit = type_names[k].bit;
    if (!bit)
      return fail(c, AC_ERR_INVALID,
                  "type names are null, boolean, object, array, number, string and integer");
    if (n->types & bit)
      return fail(c, AC_ERR_INVALID, "type names must be unique");
    n->types |= bit;
  }
  return AC_OK;
}

static int required_keyword(cctx *c, const json_t *v) {
  if (!json_is_array(v))
    return fail(c, AC_ERR_INVALID, "must be an array of unique strings");
  for (size_t i = 0; i < json_array_size(v); i++) {
    const json_t *a = json_array_get(v, i);
    if (!json_is_string(a))
      return fail(c, AC_ERR_INVALID, "must be an array of unique strings");
    for (size_t j = 0; j < i; j++)
      if (ac_schema_json_equal(a, json_array_get(v, j)))
        return fail(c, AC_ERR_INVALID, "must be an array of unique strings");
  }
  return AC_OK;
}

/* ECMA-262 spells Unicode properties out (\p{Letter}, \p{Script=Greek});
 * PCRE2 10.42 knows only the short forms (\p{L}, \p{Greek}). */
static const struct {
  const char *ecma, *pcre;
} property_names[] = {
    {"Letter", "L"}, {"Cased_Letter", "L&"}, {"LC", "L&"}, {"Uppercase_Letter", "Lu"},
    {"Lowercase_Letter", "Ll"}, {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"}, {"Mark", "M"}, {"Combining_Mark", "M"}, {"Nonspacing_Mark", "Mn"},
    {"Spacing_Mark", "Mc"}, {"Enclosing_Mark", "Me"}, {"Number", "N"}, {"Decimal_Number", "Nd"},
    {"digit", "Nd"}, {"Letter_Number", "Nl"}, {"Other_Number", "No"}, {"Punctuation", "P"},
    {"punct", "P"}, {"Connector_Punctuation", "Pc"}, {"Dash_Punctuation", "Pd"},
    {"Open_Punctuation", "Ps"}, {"Close_Punctuation", "Pe"}, {"Initial_Punctuation", "Pi"},
    {"Final_Punctuation", "Pf"}, {"Other_Punctuation", "Po"}, {"Symbol", "S"},
    {"Math_Symbol", "Sm"}, {"Currency_Symbol", "Sc"}, {"Modifier_Symbol", "Sk"},
    {"Other_Symbol", "So"}, {"Separator", "Z"}, {"Space_Separator", "Zs"},
    {"Line_Separator", "Zl"}, {"Paragraph_Separator", "Zp"}, {"Other", "C"}, {"Control", "Cc"},
    {"cntrl", "Cc"}, {"Format", "Cf"}, {"Surrogate", "Cs"}, {"Private_Use", "Co"},
    {"Unassigned", "Cn"},
};

/* Copies src into out (at least len + 1 bytes), rewriting ECMA-262 property
 * names inside \p{...} and \P{...}; everything else is copied as is. */
static size_t ecma_properties(const char *src, size_t len, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    if (src[i] == '\\' && i + 2 < len && (src[i + 1] == 'p' || src[i + 1] == 'P') &&
        src[i + 2] == '{') {
      const char *close = memchr(src + i + 3, '}', len - i - 3);
      if (close) {
        const char *name = src + i + 3;
        size_t nlen = (size_t)(close - name);
        /* "Script=Greek", "sc=Greek", "General_Category=Letter", "gc=L" */
        const char *eq = memchr(name, '=', nlen);
        if (eq) {
          nlen -= (size_t)(eq + 1 - name);
          name = eq + 1;
        }
        const char *mapped = NULL;
        for (size_t k = 0; k < sizeof property_names / sizeof property_names[0]; k++)
          if (strlen(property_names[k].ecma) == nlen &&
              memcmp(property_names[k].ecma, name, nlen) == 0)
            mapped = property_names[k].pcre;
        out[o++] = '\\';
        out[o++] = src[i + 1];
        out[o++] = '{';
        size_t mlen = mapped ? strlen(mapped) : nlen;
        memcpy(out + o, mapped ? mapped : name, mlen);
        o += mlen;
        out[o++] = '}';
        i = (size_t)(close - src) + 1;
        continue;
      }
    }
    size_t step = src[i] == '\\' && i + 1 < len ? 2 : 1; /* keep escapes whole */
    memcpy(out + o, src + i, step);
    o += step;
    i += step;
  }
  out[o] = '\0';
  return o;
}

static int pattern_keyword(cctx *c, const json_t *v, node *n) {
  if (!json_is_string(v))
    return fail(c, AC_ERR_INVALID, "must be a string");
  int code;
  PCRE2_SIZE offset;
  /* UTF + UCP for code-point semantics; DOLLAR_ENDONLY because ECMA-262's $
   * does not match before a final newline. Not anchored: JSON Schema
   * patterns match anywhere unless they say ^ or $. */
  char *src = malloc(json_string_length(v) + 1);
  if (!src)
    return fail(c, AC_ERR_NOMEM, "out of memory");
  size_t len = ecma_properties(json_string_value(v), json_string_length(v), src);
  n->pattern = pcre2_compile((PCRE2_SPTR)src, len, PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                             &code, &offset, c->pctx);
  free(src);
  if (!n->pattern) {
    PCRE2_UCHAR text[160];
    pcre2_get_error_message(code, text, sizeof text);
    char msg[256];
    snprintf(msg, sizeof msg, "invalid regular expression at offset %zu: %s", (size_t)offset,
             (const char *)text);
    return fail(c, AC_ERR_INVALID, msg);
  }
  n->pattern_src = json_string_value(v);
  return AC_OK;
}

static int format_keyword(cctx *c, const json_t *v, node *n) {
  if (!json_is_string(v))
    return fail(c, AC_ERR_INVALID, "must be a string");
  n->format = ac_schema_format_kind(json_string_value(v));
  if (n->format == FMT_NONE) {
    char msg[160];
    snprintf(msg, sizeof msg, "unsupported format \"%.100s\"", json_string_value(v));
    return fail(c, AC_ERR_UNSUPPORTED, msg);
  }
  n->format_name = json_string_value(v);
  return AC_OK;
}

static int schema_keyword(cctx *c, const json_t *v, int depth) {
  if (depth != 0)
    return fail(c, AC_ERR_UNSUPPORTED, "\"$schema\" is only supported at the schema root");
  const char *uri = json_string_value(v);
  if (!uri || (strcmp(uri, AC_SCHEMA_DIALECT) != 0 && strcmp(uri, AC_SCHEMA_DIALECT "#") != 0)) {
    char msg[256];
    snprintf(msg, sizeof msg, "unsupported dialect \"%.100s\" (only " AC_SCHEMA_DIALECT ")",
             uri ? uri : "(not a string)");
    return fail(c, AC_ERR_UNSUPPORTED, msg);
  }
  return AC_OK;
}

/* A non-empty array of subschemas (allOf, anyOf, oneOf, prefixItems). */
static int schema_list(cctx *c, const json_t *v, int depth, node ***list, size_t *count) {
  if (!json_is_array(v) || json_array_size(v) == 0)
    return fail(c, AC_ERR_INVALID, "must be a non-empty array of schemas");
  size_t n = json_array_size(v);
  *list = calloc(n, sizeof **list);
  if (!*list)
    return fail(c, AC_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    size_t old = path_push_index(c, i);
    int rc = compile_node(c, json_array_get(v, i), depth + 1, &(*list)[i]);
    path_pop(c, old);
    *count = i + 1; /* so node_free releases what was built */
    if (rc)
      return rc;
  }
  return AC_OK;
}

static int properties_keyword(cctx *c, const json_t *v, int depth, node *n) {
  if (!json_is_object(v))
    return fail(c, AC_ERR_INVALID, "must be an object of schemas");
  n->props = calloc(json_object_size(v) + 1, sizeof *n->props);
  if (!n->props)
    return fail(c, AC_ERR_NOMEM, "out of memory");
  const char *key;
  size_t klen;
  json_t *sub;
  json_object_keylen_foreach((json_t *)v, key, klen, sub) {
    size_t old = path_push(c, key, klen);
    prop *p = &n->props[n->nprops++];
    p->name = key;
    p->len = klen;
    int rc = compile_node(c, sub, depth + 1, &p->schema);
    path_pop(c, old);
    if (rc)
      return rc;
  }
  return AC_OK;
}

static int number_keyword(cctx *c, const json_t *v, const json_t **slot) {
  if (!json_is_number(v))
    return fail(c, AC_ERR_INVALID, "must be a number");
  *slot = v;
  return AC_OK;
}

static int keyword_value(cctx *c, keyword kw, const json_t *v, int depth, node *n) {
  switch (kw) {
  case K_TYPE: return type_keyword(c, v, n);
  case K_PROPERTIES: return properties_keyword(c, v, depth, n);
  case K_REQUIRED:
    n->required = v;
    return required_keyword(c, v);
  case K_ADDITIONAL: return compile_node(c, v, depth + 1, &n->additional);
  case K_ITEMS:
    if (json_is_array(v))
      return fail(c, AC_ERR_INVALID, "must be a schema (a tuple is written with prefixItems)");
    return compile_node(c, v, depth + 1, &n->items);
  case K_NOT: return compile_node(c, v, depth + 1, &n->not_);
  case K_PREFIX_ITEMS: return schema_list(c, v, depth, &n->prefix, &n->nprefix);
  case K_ALL_OF: return schema_list(c, v, depth, &n->all_of, &n->nall);
  case K_ANY_OF: return schema_list(c, v, depth, &n->any_of, &n->nany);
  case K_ONE_OF: return schema_list(c, v, depth, &n->one_of, &n->none);
  case K_MIN_ITEMS: return non_negative(c, v, &n->min_items);
  case K_MAX_ITEMS: return non_negative(c, v, &n->max_items);
  case K_MIN_PROPS: return non_negative(c, v, &n->min_props);
  case K_MAX_PROPS: return non_negative(c, v, &n->max_props);
  case K_MIN_LENGTH: return non_negative(c, v, &n->min_length);
  case K_MAX_LENGTH: return non_negative(c, v, &n->max_length);
  case K_UNIQUE_ITEMS:
  case K_WRITE_ONLY:
    if (!json_is_boolean(v))
      return fail(c, AC_ERR_INVALID, "must be a boolean");
    if (kw == K_UNIQUE_ITEMS)
      n->unique_items = json_is_true(v);
    else
      n->write_only = json_is_true(v);
    return AC_OK;
  case K_ENUM:
    if (!json_is_array(v))
      return fail(c, AC_ERR_INVALID, "must be an array");
    n->enum_values = v;
    return AC_OK;
  case K_EXAMPLES:
    return json_is_array(v) ? AC_OK : fail(c, AC_ERR_INVALID, "must be an array");
  case K_CONST:
    n->const_value = v;
    return AC_OK;
  case K_DEFAULT:
    n->default_value = v;
    return AC_OK;
  case K_PATTERN: return pattern_keyword(c, v, n);
  case K_FORMAT: return format_keyword(c, v, n);
  case K_MINIMUM: return number_keyword(c, v, &n->minimum);
  case K_MAXIMUM: return number_keyword(c, v, &n->maximum);
  case K_EX_MINIMUM: return number_keyword(c, v, &n->ex_minimum);
  case K_EX_MAXIMUM: return number_keyword(c, v, &n->ex_maximum);
  case K_MULTIPLE_OF: {
    int rc = number_keyword(c, v, &n->multiple_of);
    if (rc == AC_OK && !(json_is_integer(v) ? json_integer_value(v) > 0 : json_real_value(v) > 0))
      rc = fail(c, AC_ERR_INVALID, "must be a number greater than 0");
    return rc;
  }
  case K_SCHEMA: return schema_keyword(c, v, depth);
  case K_TITLE:
  case K_DESCRIPTION:
  case K_COMMENT:
    return json_is_string(v) ? AC_OK : fail(c, AC_ERR_INVALID, "must be a string");
  }
  return fail(c, AC_ERR_INTERNAL, "unhandled keyword");
}

static int lookup_keyword(const char *name, keyword *kw) {
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (strcmp(keywords[i].name, name) == 0) {
      *kw = keywords[i].kw;
      return 1;
    }
  return 0;
}

static int compile_node(cctx *c, const json_t *json, int depth, node **out) {
  *out = NULL;
  if (depth > AC_SCHEMA_DEPTH_MAX)
    return fail(c, AC_ERR_INVALID, "schema nested deeper than 64 levels");
  if (json_is_boolean(json)) {
    *out = node_new(json, json_is_true(json));
    return *out ? AC_OK : fail(c, AC_ERR_NOMEM, "out of memory");
  }
  if (!json_is_object(json))
    return fail(c, AC_ERR_INVALID, "a schema must be an object or a boolean");
  node *n = node_new(json, -1);
  if (!n)
    return fail(c, AC_ERR_NOMEM, "out of memory");
  *out = n;
  const char *key;
  size_t klen;
  json_t *v;
  /* Refuse unknown keywords first, so the message names the keyword rather
   * than a malformed neighbour. */
  json_object_keylen_foreach((json_t *)json, key, klen, v) {
    keyword kw;
    if (klen != strlen(key) || !lookup_keyword(key, &kw)) {
      char msg[160];
      snprintf(msg, sizeof msg, "unsupported keyword \"%.100s\"", key);
      return fail(c, AC_ERR_UNSUPPORTED, msg);
    }
  }
  json_object_keylen_foreach((json_t *)json, key, klen, v) {
    keyword kw = K_TYPE;
    lookup_keyword(key, &kw);
    size_t old = path_push(c, key, klen);
    int rc = keyword_value(c, kw, v, depth, n);
    path_pop(c, old);
    if (rc)
      return rc;
  }
  return AC_OK;
}

int ac_schema_compile(const json_t *schema, ac_schema **out, ac_err *err) {
  *out = NULL;
  if (!schema)
    return ac_err_set(err, AC_ERR_INVALID, "configSchema: no schema");
  ac_schema *s = calloc(1, sizeof *s);
  if (!s)
    return ac_err_set(err, AC_ERR_NOMEM, "configSchema: out of memory");
  cctx c = {.s = s, .err = err, .path = "configSchema"};
  s->json = json_deep_copy(schema);
  s->mctx = pcre2_match_context_create(NULL);
  c.pctx = pcre2_compile_context_create(NULL);
  int rc;
  if (!s->json || !s->mctx || !c.pctx) {
    rc = ac_err_set(err, AC_ERR_NOMEM, "configSchema: out of memory");
  } else {
    /* ECMA-262's `.` stops at CR as well as LF. */
    pcre2_set_newline(c.pctx, PCRE2_NEWLINE_ANYCRLF);
    pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, DEPTH_LIMIT);
    rc = compile_node(&c, s->json, 0, &s->root);
  }
  pcre2_compile_context_free(c.pctx);
  if (rc) {
    ac_schema_free(s);
    return rc;
  }
  *out = s;
  return AC_OK;
}

void ac_schema_free(ac_schema *s) {
  if (!s)
    return;
  node_free(s->root);
  pcre2_match_context_free(s->mctx);
  json_decref(s->json);
  free(s);
}

const json_t *ac_schema_json(const ac_schema *s) { return s ? s->json : NULL; }
