/* bind_json.c — json.encode/decode for plugins, on lua-cjson.
 *
 * cjson builds its output with malloc, outside the state's memory cap, and
 * follows shared references: a 30 MB string referenced a thousand times
 * would encode to 30 GB. So encode first walks the value (raw access, depth
 * capped) adding up a worst-case output size, and refuses past
 * AC_JSON_ENCODE_LIMIT. Read-only views (context.config) are copied to
 * plain tables first, since cjson does not see through metatables. */
#include "lua/bind_json.h"
#include "lua/sandbox.h"
#include "lua/vm.h"

#include <lauxlib.h>
#include <lua-cjson.h>

#define MODULE_KEY "ac.json"
#define CJSON_KEY "ac.cjson"

typedef struct walk {
  size_t bytes;
  size_t nodes;
  int views; /* read-only views met */
} walk;

static void add_bytes(lua_State *L, walk *w, size_t n) {
  w->bytes += n;
  if (w->bytes > AC_JSON_ENCODE_LIMIT)
    luaL_error(L, "json.encode: result would exceed %d MiB", (int)(AC_JSON_ENCODE_LIMIT >> 20));
}

static void measure(lua_State *L, int idx, int depth, walk *w) {
  if (depth > AC_JSON_DEPTH_LIMIT)
    luaL_error(L, "json.encode: nesting deeper than %d (cyclic table?)", AC_JSON_DEPTH_LIMIT);
  /* shared tables are walked each time they are met: the deadline holds */
  if ((++w->nodes & 4095) == 0)
    ac_vm_checkpoint(L);
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    add_bytes(L, w, lua_rawlen(L, idx) * 6 + 2); /* every byte may be escaped */
    return;
  case LUA_TTABLE:
    break;
  default:
    add_bytes(L, w, 32);
    return;
  }
  if (ac_sandbox_readonly_target(L, idx)) {
    w->views++;
    measure(L, -1, depth + 1, w);
    lua_pop(L, 1);
    return;
  }
  luaL_checkstack(L, 4, "json.encode");
  add_bytes(L, w, 2);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    measure(L, -2, depth + 1, w);
    measure(L, -1, depth + 1, w);
    add_bytes(L, w, 2);
    lua_pop(L, 1);
  }
}

/* Pushes a plain copy of the value at idx with views replaced by copies of
 * their tables, in the state's memory. No metatable is copied: cjson reads
 * tables raw, and a copied metatable could bring a __gc that setmetatable
 * would have refused. Depth and size were already checked by measure. */
static void unview(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) {
    lua_pushvalue(L, idx);
    return;
  }
  if (ac_sandbox_readonly_target(L, idx)) {
    unview(L, -1);
    lua_remove(L, -2);
    return;
  }
  luaL_checkstack(L, 6, "json.encode");
  lua_newtable(L);
  int copy = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    unview(L, -2);
    unview(L, -2);
    lua_rawset(L, copy);
    lua_pop(L, 1);
  }
}

static int json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  walk w = {0, 0, 0};
  measure(L, 1, 0, &w);
  /* cjson builds the text with malloc, then Lua copies it: count it */
  if (ac_vm_charge_outside(L, 2 * w.bytes) != 0)
    return luaL_error(L, "json.encode: the result would not fit in the state's memory limit");
  if (w.views) {
    unview(L, 1);
    lua_replace(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

static int call_config(lua_State *L, int cjson, const char *fn, int value) {
  lua_getfield(L, cjson, fn);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushinteger(L, value);
  lua_call(L, 1, 0);
  return 1;
}

void ac_json_open(lua_State *L) {
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  int cjson = lua_gettop(L);
  call_config(L, cjson, "encode_max_depth", AC_JSON_DEPTH_LIMIT);
  call_config(L, cjson, "decode_max_depth", AC_JSON_DEPTH_LIMIT);
  lua_pushvalue(L, cjson);
  lua_setfield(L, LUA_REGISTRYINDEX, CJSON_KEY);

  lua_createtable(L, 0, 3);
  lua_getfield(L, cjson, "encode");
  lua_pushcclosure(L, json_encode, 1);
  lua_setfield(L, -2, "encode");
  lua_getfield(L, cjson, "decode");
  lua_setfield(L, -2, "decode");
  lua_getfield(L, cjson, "null");
  lua_setfield(L, -2, "null");
  /* one module table serves every call of the state: read-only, so no
   * call can change json.encode under the next */
  ac_sandbox_push_readonly(L, -1, "json");
  lua_setfield(L, LUA_REGISTRYINDEX, MODULE_KEY);
  lua_pop(L, 2);
}

void ac_json_push_module(lua_State *L) { lua_getfield(L, LUA_REGISTRYINDEX, MODULE_KEY); }
