/* bind_json.h — the sandbox's JSON module: lua-cjson behind size guards. */
#ifndef AC_LUA_BIND_JSON_H
#define AC_LUA_BIND_JSON_H

#include <lua.h>

#define AC_JSON_ENCODE_LIMIT (16u << 20) /* bytes json.encode may produce */
#define AC_JSON_DEPTH_LIMIT 128

/* Loads lua-cjson (linked statically) into L's registry, with nesting
 * limits, and builds the sandbox module {encode, decode, null}. */
void ac_json_open(lua_State *L);

/* Pushes the module built by ac_json_open. */
void ac_json_push_module(lua_State *L);

#endif
