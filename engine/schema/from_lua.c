/* from_lua.c — a plugin's configSchema Lua table to JSON, by raw access
 * only, deciding {} or [] for empty tables from the keyword they stand
 * under. */
#include "schema/schema_int.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LUA_DEPTH_MAX 64          /* nested tables, any kind */
#define LUA_BYTES_MAX (4u << 20)  /* strings and keys one schema may hold */
#define LUA_TABLES_MAX 65536      /* tables written, a shared one each time */

typedef struct lconv {
  lua_State *L;
  ac_err *err;
  size_t bytes;
  size_t tables; /* tables entered: a shared sub-table expands each time */
  int depth;
  const void *open[LUA_DEPTH_MAX + 1]; /* tables on the current path */
  char path[768];
} lconv;

/* ---- paths and errors (the same "configSchema/a/b" form compile uses) ---- */

static size_t path_push(lconv *c, const char *seg, size_t len) {
  return ac_schema_path_push(c->path, sizeof c->path, seg, len);
}

static size_t path_push_index(lconv *c, lua_Integer i) {
  char num[24];
  int n = snprintf(num, sizeof num, "%lld", (long long)i);
  return path_push(c, num, (size_t)n);
}

static int fail(lconv *c, const char *what) {
  return ac_err_set(c->err, AC_ERR_INVALID, "%s: %s", c->path, what);
}

/* ---- tables ---- */

typedef enum { TBL_EMPTY, TBL_ARRAY, TBL_OBJECT, TBL_BAD } tbl_kind;

/* An array has exactly the keys 1..n; an object only string keys. */
static tbl_kind table_kind(lua_State *L, int idx, lua_Integer *n) {
  lua_Integer ints = 0, max = 0, strs = 0, other = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      strs++;
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      ints++;
      if (lua_tointeger(L, -1) > max)
        max = lua_tointeger(L, -1);
    } else {
      other++;
    }
  }
  *n = ints;
  if (other || (ints && strs) || (ints && max != ints))
    return TBL_BAD;
  return ints ? TBL_ARRAY : strs ? TBL_OBJECT : TBL_EMPTY;
}

/* Marks the table at idx open; refuses cycles and excess depth. */
static int enter(lconv *c, int idx) {
  const void *p = lua_topointer(c->L, idx);
  for (int i = 0; i < c->depth; i++)
    if (c->open[i] == p)
      return fail(c, "a table cannot contain itself");
  if (c->depth >= LUA_DEPTH_MAX)
    return fail(c, "tables nested deeper than 64 levels");
  if (++c->tables > LUA_TABLES_MAX)
    return fail(c, "schema holds more than 65536 tables (a shared table counts each time)");
  if (!lua_checkstack(c->L, 8))
    return fail(c, "tables nested too deeply");
  c->open[c->depth++] = p;
  return AC_OK;
}

static void leave(lconv *c) { c->depth--; }

typedef struct lkey {
  const char *s;
  size_t len;
  int vidx; /* stack index of the value */
} lkey;

static int key_cmp(const void *a, const void *b) {
  const lkey *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int r = memcmp(x->s, y->s, n);
  return r ? r : (x->len > y->len) - (x->len < y->len);
}

/* Leaves every (key, value) of the string-keyed table at idx on the stack
 * and returns them sorted by key, so the JSON is the same on every run
 * (Lua's traversal order is not). Keeping them on the stack instead of
 * looking keys up again means nothing is pushed that allocates: a Lua
 * memory error cannot jump over this C code. Caller frees *keys and resets
 * the stack. */
static int collect_pairs(lconv *c, int idx, lkey **keys, size_t *count) {
  lua_State *L = c->L;
  size_t n = 0, cap = 16;
  lkey *k = malloc(cap * sizeof *k);
  if (!k)
    return fail(c, "out of memory");
  if (!lua_checkstack(L, 3)) {
    free(k);
    return fail(c, "table too large");
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (n == cap) {
      lkey *more = realloc(k, 2 * cap * sizeof *k);
      if (!more) {
        free(k);
        return fail(c, "out of memory");
      }
      k = more;
      cap *= 2;
    }
    k[n].s = lua_tolstring(L, -2, &k[n].len); /* a string key: no conversion */
    k[n].vidx = lua_gettop(L);
    n++;
    if (!lua_checkstack(L, 3)) {
      free(k);
      return fail(c, "table too large");
    }
    lua_pushvalue(L, -2);
  }
  if (n > 1)
    qsort(k, n, sizeof *k, key_cmp);
  *keys = k;
  *count = n;
  return AC_OK;
}

/* Pushes t[name] of the table at idx without pushing a new string (which
 * could allocate and so raise), or returns 0 and pushes nothing. */
static int raw_fieldn(lua_State *L, int idx, const char *name, size_t nlen, int want_type) {
  if (!idx || !lua_checkstack(L, 3))
    return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t len;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tolstring(L, -2, &len);
      if (len == nlen && memcmp(k, name, len) == 0) {
        lua_remove(L, -2);
        if (want_type == LUA_TNONE || lua_type(L, -1) == want_type)
          return lua_gettop(L);
        lua_pop(L, 1);
        return 0;
      }
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* ---- scalars ---- */

static int scalar(lconv *c, int idx, json_t **out) {
  lua_State *L = c->L;
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    *out = json_boolean(lua_toboolean(L, idx));
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      *out = json_integer((json_int_t)lua_tointeger(L, idx));
    } else {
      double d = lua_tonumber(L, idx);
      if (!isfinite(d))
        return fail(c, "NaN and infinity cannot appear in a schema");
      /* 3.0 is written 3: JSON has one number type and readers of the
       * exported schema expect integers where the value is integral. */
      if (floor(d) == d && d >= -9.2e18 && d <= 9.2e18)
        *out = json_integer((json_int_t)d);
      else
        *out = json_real(d);
    }
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    c->bytes += len;
    if (c->bytes > LUA_BYTES_MAX)
      return fail(c, "schema is larger than 4 MiB");
    *out = json_stringn(s, len);
    if (!*out)
      return fail(c, "strings must be valid UTF-8");
    return AC_OK;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) { /* cjson's json.null */
      *out = json_null();
      break;
    }
    /* fall through */
  case LUA_TFUNCTION:
    return fail(c, "functions cannot appear in a schema");
  case LUA_TTHREAD:
    return fail(c, "threads cannot appear in a schema");
  default:
    return fail(c, "userdata cannot appear in a schema");
  }
  return *out ? AC_OK : fail(c, "out of memory");
}

/* ---- data values (default, const, enum, examples) ---- */

static int raw_field(lua_State *L, int idx, const char *name, int want_type) {
  return raw_fieldn(L, idx, name, strlen(name), want_type);
}

static int raw_table_field(lua_State *L, int idx, const char *key) {
  return raw_field(L, idx, key, LUA_TTABLE);
}

/* Whether the schema table at hint describes arrays, so an empty table
 * standing for its value means []. */
static int hint_is_array(lua_State *L, int hint) {
  if (!hint)
    return 0;
  int top = lua_gettop(L), arr = 0, obj = 0;
  if (!raw_field(L, hint, "type", LUA_TNONE)) {
    arr = raw_table_field(L, hint, "items") || raw_table_field(L, hint, "prefixItems");
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    arr = strcmp(lua_tostring(L, -1), "array") == 0;
  } else if (lua_type(L, -1) == LUA_TTABLE) {
    int t = lua_gettop(L);
    for (lua_Integer i = 1; i <= 8; i++) {
      lua_rawgeti(L, t, i);
      if (lua_type(L, -1) == LUA_TSTRING) {
        arr |= strcmp(lua_tostring(L, -1), "array") == 0;
        obj |= strcmp(lua_tostring(L, -1), "object") == 0;
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  return arr && !obj;
}

static int conv_value(lconv *c, int idx, int hint, json_t **out);

/* The subschema describing member key of an object described by hint. */
static int hint_member(lua_State *L, int hint, const char *key, size_t len) {
  int props = raw_table_field(L, hint, "properties");
  if (props) {
    int sub = raw_fieldn(L, props, key, len, LUA_TTABLE);
    lua_remove(L, props);
    if (sub)
      return sub - 1;
  }
  return raw_table_field(L, hint, "additionalProperties");
}

/* The subschema describing element i (1-based) of an array under hint. */
static int hint_element(lua_State *L, int hint, lua_Integer i) {
  int prefix = raw_table_field(L, hint, "prefixItems");
  if (prefix) {
    lua_rawgeti(L, prefix, i);
    lua_remove(L, prefix);
    if (lua_type(L, -1) == LUA_TTABLE)
      return lua_gettop(L);
    lua_pop(L, 1);
  }
  return raw_table_field(L, hint, "items");
}

static int conv_array_elems(lconv *c, int idx, lua_Integer n, int hint, int elem_hint_mode,
                            json_t **out);

/* elem_hint_mode: 0 no hint, 1 the same hint for every element (enum),
 * 2 the element's own subschema under hint (an array value). */
static int conv_value_table(lconv *c, int idx, int hint, json_t **out) {
  lua_Integer n;
  tbl_kind kind = table_kind(c->L, idx, &n);
  if (kind == TBL_BAD)
    return fail(c, "tables must be arrays (keys 1..n) or have only string keys");
  if (kind == TBL_EMPTY) {
    *out = hint_is_array(c->L, hint) ? json_array() : json_object();
    return *out ? AC_OK : fail(c, "out of memory");
  }
  if (kind == TBL_ARRAY)
    return conv_array_elems(c, idx, n, hint, 2, out);
  size_t count = 0;
  lkey *keys = NULL;
  int base = lua_gettop(c->L);
  int rc = collect_pairs(c, idx, &keys, &count);
  json_t *obj = rc ? NULL : json_object();
  if (!obj) {
    free(keys);
    lua_settop(c->L, base);
    return rc ? rc : fail(c, "out of memory");
  }
  for (size_t i = 0; i < count && rc == AC_OK; i++) {
    int top = lua_gettop(c->L);
    c->bytes += keys[i].len;
    size_t old = path_push(c, keys[i].s, keys[i].len);
    int sub = hint ? hint_member(c->L, hint, keys[i].s, keys[i].len) : 0;
    json_t *v = NULL;
    rc = c->bytes > LUA_BYTES_MAX ? fail(c, "schema is larger than 4 MiB")
                                  : conv_value(c, keys[i].vidx, sub, &v);
    if (rc == AC_OK && json_object_setn_new(obj, keys[i].s, keys[i].len, v))
      rc = fail(c, "keys must be valid UTF-8");
    c->path[old] = '\0';
    lua_settop(c->L, top);
  }
  free(keys);
  lua_settop(c->L, base);
  if (rc) {
    json_decref(obj);
    return rc;
  }
  *out = obj;
  return AC_OK;
}

static int conv_value(lconv *c, int idx, int hint, json_t **out) {
  *out = NULL;
  if (lua_type(c->L, idx) != LUA_TTABLE)
    return scalar(c, idx, out);
  int rc = enter(c, idx);
  if (rc)
    return rc;
  rc = conv_value_table(c, idx, hint, out);
  leave(c);
  return rc;
}

static int conv_array_elems(lconv *c, int idx, lua_Integer n, int hint, int elem_hint_mode,
                            json_t **out) {
  json_t *arr = json_array();
  if (!arr)
    return fail(c, "out of memory");
  for (lua_Integer i = 1; i <= n; i++) {
    int top = lua_gettop(c->L);
    int sub = elem_hint_mode == 1 ? hint : elem_hint_mode == 2 && hint ? hint_element(c->L, hint, i) : 0;
    lua_rawgeti(c->L, idx, i);
    size_t old = path_push_index(c, i - 1);
    json_t *v = NULL;
    int rc = conv_value(c, lua_gettop(c->L), sub, &v);
    c->path[old] = '\0';
    lua_settop(c->L, top);
    if (rc == AC_OK && json_array_append_new(arr, v))
      rc = fail(c, "out of memory");
    if (rc) {
      json_decref(arr);
      return rc;
    }
  }
  *out = arr;
  return AC_OK;
}

/* ---- schema positions ---- */

static int conv_schema(lconv *c, int idx, json_t **out);

/* What a keyword's value is, which decides how an empty table reads. */
typedef enum {
  V_SCHEMA,      /* additionalProperties, items, not, ... -> {} */
  V_SCHEMA_MAP,  /* properties, $defs-like -> {} of schemas */
  V_SCHEMA_LIST, /* allOf, anyOf, oneOf, prefixItems -> [] of schemas */
  V_LIST,        /* required, type -> [] */
  V_DATA_LIST,   /* enum, examples -> [] of values shaped like the schema */
  V_DATA,        /* default, const -> shaped like the schema */
  V_OTHER        /* anything else -> {} when empty */
} vkind;

static vkind keyword_kind(const char *k) {
  static const char *const schema[] = {"additionalProperties", "items", "not", "contains", "if",
                                       "then", "else", "propertyNames", "unevaluatedItems",
                                       "unevaluatedProperties", "additionalItems",
                                       "contentSchema", NULL};
  static const char *const map[] = {"properties", "$defs", "definitions", "patternProperties",
                                    "dependentSchemas", NULL};
  static const char *const list[] = {"allOf", "anyOf", "oneOf", "prefixItems", NULL};
  for (int i = 0; schema[i]; i++)
    if (strcmp(k, schema[i]) == 0)
      return V_SCHEMA;
  for (int i = 0; map[i]; i++)
    if (strcmp(k, map[i]) == 0)
      return V_SCHEMA_MAP;
  for (int i = 0; list[i]; i++)
    if (strcmp(k, list[i]) == 0)
      return V_SCHEMA_LIST;
  if (strcmp(k, "required") == 0 || strcmp(k, "type") == 0)
    return V_LIST;
  if (strcmp(k, "enum") == 0 || strcmp(k, "examples") == 0)
    return V_DATA_LIST;
  if (strcmp(k, "default") == 0 || strcmp(k, "const") == 0)
    return V_DATA;
  return V_OTHER;
}

/* A table of schemas, keyed by name or by position. */
static int conv_schema_collection(lconv *c, int idx, int as_list, json_t **out) {
  lua_Integer n;
  tbl_kind kind = table_kind(c->L, idx, &n);
  if (kind == TBL_EMPTY) {
    *out = as_list ? json_array() : json_object();
    return *out ? AC_OK : fail(c, "out of memory");
  }
  if (kind == TBL_BAD)
    return fail(c, "tables must be arrays (keys 1..n) or have only string keys");
  if (kind == TBL_ARRAY) {
    json_t *arr = json_array();
    if (!arr)
      return fail(c, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(c->L, idx, i);
      size_t old = path_push_index(c, i - 1);
      json_t *v = NULL;
      int rc = conv_schema(c, lua_gettop(c->L), &v);
      c->path[old] = '\0';
      lua_pop(c->L, 1);
      if (rc == AC_OK && json_array_append_new(arr, v))
        rc = fail(c, "out of memory");
      if (rc) {
        json_decref(arr);
        return rc;
      }
    }
    *out = arr;
    return AC_OK;
  }
  size_t count = 0;
  lkey *keys = NULL;
  int base = lua_gettop(c->L);
  int rc = collect_pairs(c, idx, &keys, &count);
  json_t *obj = rc ? NULL : json_object();
  if (!obj) {
    free(keys);
    lua_settop(c->L, base);
    return rc ? rc : fail(c, "out of memory");
  }
  for (size_t i = 0; i < count && rc == AC_OK; i++) {
    c->bytes += keys[i].len;
    size_t old = path_push(c, keys[i].s, keys[i].len);
    json_t *v = NULL;
    rc = c->bytes > LUA_BYTES_MAX ? fail(c, "schema is larger than 4 MiB")
                                  : conv_schema(c, keys[i].vidx, &v);
    if (rc == AC_OK && json_object_setn_new(obj, keys[i].s, keys[i].len, v))
      rc = fail(c, "keys must be valid UTF-8");
    c->path[old] = '\0';
  }
  free(keys);
  lua_settop(c->L, base);
  if (rc) {
    json_decref(obj);
    return rc;
  }
  *out = obj;
  return AC_OK;
}

/* The value of keyword k of the schema table at schema_idx, at idx. */
static int conv_keyword(lconv *c, const char *k, int schema_idx, int idx, json_t **out) {
  vkind kind = keyword_kind(k);
  if (kind == V_SCHEMA)
    return conv_schema(c, idx, out);
  if (kind == V_DATA)
    return conv_value(c, idx, schema_idx, out);
  if (lua_type(c->L, idx) != LUA_TTABLE || kind == V_OTHER)
    return conv_value(c, idx, 0, out);
  int rc = enter(c, idx);
  if (rc)
    return rc;
  if (kind == V_SCHEMA_MAP || kind == V_SCHEMA_LIST) {
    rc = conv_schema_collection(c, idx, kind == V_SCHEMA_LIST, out);
  } else {
    lua_Integer n;
    tbl_kind tk = table_kind(c->L, idx, &n);
    if (tk == TBL_EMPTY) {
      *out = json_array();
      rc = *out ? AC_OK : fail(c, "out of memory");
    } else if (tk == TBL_ARRAY) {
      rc = conv_array_elems(c, idx, n, kind == V_DATA_LIST ? schema_idx : 0,
                            kind == V_DATA_LIST ? 1 : 0, out);
    } else {
      rc = conv_value_table(c, idx, 0, out); /* compile will say what is wrong */
    }
  }
  leave(c);
  return rc;
}

static int conv_schema(lconv *c, int idx, json_t **out) {
  *out = NULL;
  lua_State *L = c->L;
  if (lua_type(L, idx) != LUA_TTABLE)
    return scalar(c, idx, out); /* true/false; anything else compile refuses */
  int rc = enter(c, idx);
  if (rc)
    return rc;
  lua_Integer n;
  tbl_kind kind = table_kind(L, idx, &n);
  if (kind != TBL_OBJECT && kind != TBL_EMPTY) {
    rc = conv_value_table(c, idx, 0, out);
    leave(c);
    return rc;
  }
  size_t count = 0;
  lkey *keys = NULL;
  int base = lua_gettop(L);
  rc = collect_pairs(c, idx, &keys, &count);
  json_t *obj = rc ? NULL : json_object();
  if (!obj) {
    free(keys);
    lua_settop(L, base);
    leave(c);
    return rc ? rc : fail(c, "out of memory");
  }
  for (size_t i = 0; i < count && rc == AC_OK; i++) {
    c->bytes += keys[i].len;
    size_t old = path_push(c, keys[i].s, keys[i].len);
    json_t *v = NULL;
    /* A key with a NUL byte is no keyword; convert it plainly so compile
     * refuses it by name. */
    const char *name = strlen(keys[i].s) == keys[i].len ? keys[i].s : "";
    rc = c->bytes > LUA_BYTES_MAX ? fail(c, "schema is larger than 4 MiB")
                                  : conv_keyword(c, name, idx, keys[i].vidx, &v);
    if (rc == AC_OK && json_object_setn_new(obj, keys[i].s, keys[i].len, v))
      rc = fail(c, "keys must be valid UTF-8");
    c->path[old] = '\0';
  }
  free(keys);
  lua_settop(L, base);
  leave(c);
  if (rc) {
    json_decref(obj);
    return rc;
  }
  *out = obj;
  return AC_OK;
}

int ac_schema_from_lua(lua_State *L, int idx, json_t **out, ac_err *err) {
  *out = NULL;
  lconv *c = calloc(1, sizeof *c);
  if (!c)
    return ac_err_set(err, AC_ERR_NOMEM, "configSchema: out of memory");
  c->L = L;
  c->err = err;
  snprintf(c->path, sizeof c->path, "configSchema");
  int top = lua_gettop(L);
  int rc = lua_checkstack(L, 16) ? conv_schema(c, lua_absindex(L, idx), out)
                                 : fail(c, "Lua stack exhausted");
  lua_settop(L, top);
  free(c);
  return rc;
}
