/* sandbox.h — the globals a plugin sees (docs/plugin-authoring.md), built as an allow-list. */
#ifndef AC_LUA_SANDBOX_H
#define AC_LUA_SANDBOX_H

#include <lua.h>

/* Replaces L's globals with the sandbox's: only the allowed base
 * functions and libraries, guarded setmetatable/rawset/load/collectgarbage/
 * require/print, coroutine functions that keep the deadline watchdog on the
 * running coroutine, deadline-bounded string patterns, the read-only
 * PluginCapability table and a protected string metatable. May raise
 * (memory); call it protected. */
void ac_sandbox_open(lua_State *L);

/* Pushes a read-only view of the table at idx: reads, pairs, ipairs and #
 * see the table; writes raise "<name> is read-only". */
void ac_sandbox_push_readonly(lua_State *L, int idx, const char *name);

/* The table a read-only view stands for (pushes it), or returns 0 and
 * pushes nothing when the value at idx is not a view. Raw access only; a
 * view is recognised by a C function plugins cannot reach, so no table a
 * plugin builds passes for one. */
int ac_sandbox_readonly_target(lua_State *L, int idx);

#endif
