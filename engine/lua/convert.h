/* convert.h — moving values between jansson and Lua, with raw access only
 * (no metamethod of plugin values ever runs) and hard limits. */
#ifndef AC_LUA_CONVERT_H
#define AC_LUA_CONVERT_H

#include "core/err.h"

#include <jansson.h>
#include <lua.h>

#define AC_CONVERT_DEPTH_MAX 64
#define AC_CONVERT_BYTES_MAX (8u << 20) /* strings and keys one result may hold */
#define AC_CONVERT_NODES_MAX (1u << 18) /* values one result may hold */

/* Pushes value as Lua: objects and arrays become tables, null becomes
 * json.null (cjson's null), integers stay integers. With readonly set,
 * every table is pushed as a read-only view named `name`. May raise
 * (memory); call inside a vm call or protected. */
void ac_lua_push_json(lua_State *L, const json_t *value, int readonly, const char *name);

/* Converts the Lua value at idx to JSON. A table whose keys are exactly
 * 1..n is an array; an empty table is an object unless empty_as_array.
 * Other tables need string keys (integer keys are written as strings).
 * Refuses functions, userdata (but json.null), threads, NaN/inf, invalid
 * UTF-8, nesting beyond AC_CONVERT_DEPTH_MAX (and so cycles) and results
 * over AC_CONVERT_BYTES_MAX or AC_CONVERT_NODES_MAX values (a table
 * referenced twice counts twice: the JSON holds it twice). Read-only views
 * convert as their tables, one level deeper. Errors name the path
 * ("result[1].data.x: functions cannot be JSON"). The JSON is allocated
 * outside the state and counted against what its cap leaves (strings and
 * about 64 bytes a value). Inside a call, a walk past the call's deadline,
 * or one that does not fit the cap, stops with AC_ERR_TIMEOUT: the caller
 * then ends the call (timeout or memory) with ac_vm_checkpoint. Never
 * raises itself.
 * *out: caller decrefs. */
int ac_lua_to_json(lua_State *L, int idx, int empty_as_array, json_t **out, ac_err *err);

/* 1 if the keys of the table at idx (absolute) are exactly 1..n (n > 0).
 * *n is the key count, or -1 when some key is not a positive integer. Raw
 * access; needs 2 free stack slots. */
int ac_lua_is_array(lua_State *L, int idx, lua_Integer *n);

#endif
