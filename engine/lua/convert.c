/* convert.c — jansson <-> Lua conversion with limits. */
#include "lua/convert.h"
#include "lua/sandbox.h"
#include "lua/vm.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void ac_lua_push_json(lua_State *L, const json_t *value, int readonly, const char *name) {
  luaL_checkstack(L, 4, "JSON nesting");
  switch (json_typeof(value)) {
  case JSON_OBJECT: {
    lua_createtable(L, 0, (int)json_object_size(value));
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)value, key, klen, v) {
      lua_pushlstring(L, key, klen);
      ac_lua_push_json(L, v, readonly, name);
      lua_rawset(L, -3);
    }
    break;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(value);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      ac_lua_push_json(L, json_array_get(value, i), readonly, name);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(value), json_string_length(value));
    return;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(value));
    return;
  case JSON_REAL:
    lua_pushnumber(L, json_real_value(value));
    return;
  case JSON_TRUE:
    lua_pushboolean(L, 1);
    return;
  case JSON_FALSE:
    lua_pushboolean(L, 0);
    return;
  case JSON_NULL:
  default:
    lua_pushlightuserdata(L, NULL); /* cjson.null */
    return;
  }
  if (readonly) {
    ac_sandbox_push_readonly(L, -1, name);
    lua_remove(L, -2);
  }
}

typedef struct conv {
  lua_State *L;
  size_t bytes;
  size_t nodes; /* values converted: shared tables count each time met */
  int empty_as_array;
  ac_err *err;
  size_t path_len;
  char path[512];
} conv;

static int fail(conv *c, const char *fmt, const char *detail) {
  char msg[256];
  snprintf(msg, sizeof msg, fmt, detail);
  return ac_err_set(c->err, AC_ERR_INVALID, "%s: %s", c->path[0] ? c->path : "value", msg);
}

/* Appends a path segment (a key, or "[index]" when index > 0), cut to the
 * buffer, returning the old length to restore. No formatting: it runs for
 * every node converted. */
static size_t push_path(conv *c, const char *seg, size_t seg_len, int index) {
  size_t old = c->path_len, room = sizeof c->path - 1 - old;
  char num[24];
  if (index > 0) {
    char digits[16];
    size_t d = 0;
    for (unsigned v = (unsigned)index; v; v /= 10)
      digits[d++] = (char)('0' + v % 10);
    size_t k = 0;
    num[k++] = '[';
    while (d)
      num[k++] = digits[--d];
    num[k++] = ']';
    seg = num;
    seg_len = k;
  } else if (old && room) {
    c->path[old + 0] = '.';
    c->path_len++;
    room--;
  }
  size_t n = seg_len < room ? seg_len : room;
  memcpy(c->path + c->path_len, seg, n);
  c->path_len += n;
  c->path[c->path_len] = '\0';
  return old;
}

static void pop_path(conv *c, size_t old) {
  c->path_len = old;
  c->path[old] = '\0';
}

int ac_lua_is_array(lua_State *L, int idx, lua_Integer *n) {
  lua_Integer count = 0, max = 0;
  *n = -1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k > max)
      max = k;
    count++;
  }
  *n = count;
  return count > 0 && max == count;
}

static int to_json(conv *c, int idx, int depth, json_t **out);

static int string_value(conv *c, int idx, json_t **out) {
  size_t len;
  const char *s = lua_tolstring(c->L, idx, &len);
  c->bytes += len;
  if (c->bytes > AC_CONVERT_BYTES_MAX)
    return fail(c, "%s", "result is larger than 8 MiB");
  *out = json_stringn(s, len);
  if (!*out)
    return fail(c, "%s", "string is not valid UTF-8");
  return AC_OK;
}

static int table_value(conv *c, int idx, int depth, json_t **out) {
  lua_State *L = c->L;
  if (ac_sandbox_readonly_target(L, idx)) {
    int rc = to_json(c, lua_gettop(L), depth + 1, out);
    lua_pop(L, 1);
    return rc;
  }
  if (!lua_checkstack(L, 6))
    return fail(c, "%s", "too deep");
  lua_Integer n;
  if (ac_lua_is_array(L, idx, &n) || (n == 0 && c->empty_as_array)) {
    json_t *arr = json_array();
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      size_t old = push_path(c, NULL, 0, (int)i);
      json_t *v = NULL;
      int rc = to_json(c, lua_gettop(L), depth + 1, &v);
      pop_path(c, old);
      lua_pop(L, 1);
      if (rc) {
        json_decref(arr);
        return rc;
      }
      json_array_append_new(arr, v);
    }
    *out = arr;
    return AC_OK;
  }
  json_t *obj = json_object();
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    char num[32];
    const char *key;
    size_t klen;
    if (lua_type(L, -2) == LUA_TSTRING) {
      key = lua_tolstring(L, -2, &klen);
    } else if (lua_isinteger(L, -2)) {
      snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -2));
      key = num;
      klen = strlen(num);
    } else {
      lua_pop(L, 2);
      json_decref(obj);
      return fail(c, "%s", "table keys must be strings");
    }
    c->bytes += klen;
    size_t old = push_path(c, key, klen, 0);
    json_t *v = NULL;
    int rc = c->bytes > AC_CONVERT_BYTES_MAX ? fail(c, "%s", "result is larger than 8 MiB")
                                             : to_json(c, lua_gettop(L), depth + 1, &v);
    if (rc == AC_OK && json_object_setn_new(obj, key, klen, v) != 0)
      rc = fail(c, "%s", "key is not valid UTF-8");
    pop_path(c, old);
    lua_pop(L, 1);
    if (rc) {
      lua_pop(L, 1);
      json_decref(obj);
      return rc;
    }
  }
  *out = obj;
  return AC_OK;
}

static int to_json(conv *c, int idx, int depth, json_t **out) {
  lua_State *L = c->L;
  *out = NULL;
  if (depth > AC_CONVERT_DEPTH_MAX)
    return fail(c, "nesting deeper than %s levels (cyclic table?)", "64");
  if (++c->nodes > AC_CONVERT_NODES_MAX)
    return fail(c, "more than %s values (a table met twice counts twice)", "262144");
  /* the JSON is allocated outside the state: every few thousand values,
   * what it holds so far (strings, and about 64 bytes a value) must fit in
   * what the state's cap leaves */
  if ((c->nodes & 4095) == 0 && ac_vm_charge_outside(L, c->bytes + c->nodes * 64) != 0)
    return ac_err_set(c->err, AC_ERR_TIMEOUT, "the result does not fit in the state's memory limit");
  /* a walk of many nodes stays inside the call's time */
  if ((c->nodes & 4095) == 0 && ac_vm_stopping(L))
    return ac_err_set(c->err, AC_ERR_TIMEOUT, "the call's time ran out");
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    *out = json_null();
    return AC_OK;
  case LUA_TBOOLEAN:
    *out = json_boolean(lua_toboolean(L, idx));
    return AC_OK;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      *out = json_integer((json_int_t)lua_tointeger(L, idx));
      return AC_OK;
    } else {
      double d = lua_tonumber(L, idx);
      if (!isfinite(d))
        return fail(c, "%s", "NaN and infinity cannot be JSON");
      *out = json_real(d);
      return AC_OK;
    }
  case LUA_TSTRING:
    return string_value(c, idx, out);
  case LUA_TTABLE:
    return table_value(c, idx, depth, out);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) {
      *out = json_null();
      return AC_OK;
    }
    /* fall through */
  default:
    return fail(c, "%ss cannot be JSON", lua_typename(L, lua_type(L, idx)));
  }
}

int ac_lua_to_json(lua_State *L, int idx, int empty_as_array, json_t **out, ac_err *err) {
  conv c = {L, 0, 0, empty_as_array, err, 0, ""};
  int rc = to_json(&c, lua_absindex(L, idx), 0, out);
  if (rc == AC_OK && ac_vm_charge_outside(L, c.bytes + c.nodes * 64) != 0) {
    json_decref(*out);
    *out = NULL;
    rc = ac_err_set(err, AC_ERR_TIMEOUT, "the result does not fit in the state's memory limit");
  }
  return rc;
}
