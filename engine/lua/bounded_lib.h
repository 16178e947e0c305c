/* bounded_lib.h — the standard functions that could run for years inside
 * C, where no count hook fires, replaced by versions that keep to the
 * call's deadline.
 *
 * string.rep refuses nothing new but returns at once when the result is
 * empty (stock Lua loops n times to build ""). table.insert, remove, move,
 * concat and sort do their element work in loops that check the deadline
 * every few hundred elements, so a huge __len or range ends as a timeout
 * instead of a stuck thread. Results and errors are those of Lua 5.4's own
 * functions; sort is a heap sort, so, like stock sort, it is not stable. */
#ifndef AC_LUA_BOUNDED_LIB_H
#define AC_LUA_BOUNDED_LIB_H

#include <lua.h>

/* Replaces the functions in the sandbox's string and table tables (stack
 * indices). */
void ac_bounded_install(lua_State *L, int string_table, int table_table);

#endif
