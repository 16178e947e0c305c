/* lpattern.h — Lua 5.4 string patterns (find/match/gmatch/gsub) whose
 * matcher checks the plugin's deadline while it runs.
 *
 * Stock string.find & co. run the whole match inside C, where the VM's count
 * hook never fires, so an exponential pattern can hold a worker for minutes.
 * This module is a separate implementation of the same pattern language
 * (Reference Manual §6.4.1) with the same results, errors and limits as
 * Lua 5.4.4, that calls a caller-supplied check every AC_LPATTERN_CHECK_STEPS
 * matching steps; the check raises a Lua error once the deadline passed. */
#ifndef AC_LUA_LPATTERN_H
#define AC_LUA_LPATTERN_H

#include <lua.h>

/* Matching steps (pattern items tried, backtracking attempts, bytes scanned
 * in bulk / 8) between two calls of the check. */
#define AC_LPATTERN_CHECK_STEPS 1000

/* Called periodically while a pattern function runs. It returns normally to
 * let matching go on, or raises a Lua error (lua_error / luaL_error) to stop
 * it; the matcher holds no C heap memory, so the jump leaks nothing. It must
 * leave L's stack as it found it when it returns. */
typedef void (*ac_lpattern_check)(lua_State *L, void *ud);

/* Sets find, match, gmatch and gsub in the table at string_table_idx (raw
 * sets, no metamethods) to this module's versions, which call check(L, ud)
 * while matching (check may be NULL: never interrupted). ud is borrowed and
 * must outlive every closure and gmatch iterator made from it. May raise
 * (memory); call it protected or at state setup. */
void ac_lpattern_install(lua_State *L, int string_table_idx,
                         ac_lpattern_check check, void *ud);

#endif
