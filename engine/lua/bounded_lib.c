/* bounded_lib.c — string.rep and the table functions, kept to the call's
 * deadline. Their loops run in C, where no count hook fires: a table whose
 * __len answers math.maxinteger, or table.move over the whole integer
 * range, would otherwise hold a thread for years. Results and errors follow
 * Lua 5.4's ltablib.c and lstrlib.c, Copyright (C) 1994-2022 Lua.org,
 * PUC-Rio, under the MIT license (see LICENSE). */
#include "lua/bounded_lib.h"
#include "lua/vm.h"

#include <lauxlib.h>
#include <limits.h>

#define CHECK_EVERY 256 /* elements between two deadline checks */

static inline void tick(lua_State *L, unsigned *n) {
  if (++*n % CHECK_EVERY == 0)
    ac_vm_checkpoint(L);
}

/* ---- string.rep ---------------------------------------------------------- */

/* The stock function builds an empty result by looping n times. */
static int rep(lua_State *L) {
  size_t len, sep_len;
  luaL_checklstring(L, 1, &len);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &sep_len);
  if (n <= 0 || (len == 0 && sep_len == 0)) {
    lua_pushliteral(L, "");
    return 1;
  }
  /* a non-empty result is allocated first, inside the state's memory cap,
   * and then costs time in proportion to its size */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* ---- table.insert, table.remove ------------------------------------------ */

static int insert(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  /* the first free slot; wraps like stock Lua when # is maxinteger */
  lua_Integer free_slot = (lua_Integer)((lua_Unsigned)luaL_len(L, 1) + 1u);
  lua_Integer pos = free_slot;
  switch (lua_gettop(L)) {
  case 2:
    break;
  case 3: {
    pos = luaL_checkinteger(L, 2);
    luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)free_slot, 2,
                  "position out of bounds");
    unsigned ticks = 0;
    for (lua_Integer i = free_slot; i > pos; i--) { /* shift up */
      lua_geti(L, 1, i - 1);
      lua_seti(L, 1, i);
      tick(L, &ticks);
    }
    break;
  }
  default:
    return luaL_error(L, "wrong number of arguments to 'insert'");
  }
  lua_seti(L, 1, pos); /* the value is on top */
  return 0;
}

static int remove_at(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer size = luaL_len(L, 1);
  lua_Integer pos = luaL_optinteger(L, 2, size);
  if (pos != size)
    luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
  lua_geti(L, 1, pos); /* the result */
  unsigned ticks = 0;
  for (; pos < size; pos++) { /* shift down */
    lua_geti(L, 1, pos + 1);
    lua_seti(L, 1, pos);
    tick(L, &ticks);
  }
  lua_pushnil(L);
  lua_seti(L, 1, pos);
  return 1;
}

/* ---- table.move ------------------------------------------------------------ */

static int move(lua_State *L) {
  lua_Integer from = luaL_checkinteger(L, 2);
  lua_Integer to_end = luaL_checkinteger(L, 3);
  lua_Integer dest = luaL_checkinteger(L, 4);
  int target = lua_isnoneornil(L, 5) ? 1 : 5;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, target, LUA_TTABLE);
  if (to_end >= from) {
    luaL_argcheck(L, from > 0 || to_end < LUA_MAXINTEGER + from, 3, "too many elements to move");
    lua_Integer n = to_end - from; /* elements minus one */
    luaL_argcheck(L, dest <= LUA_MAXINTEGER - n, 4, "destination wrap around");
    unsigned ticks = 0;
    /* copy forwards unless the ranges overlap with the destination after
     * the source in the same table */
    int forwards = dest > to_end || dest <= from ||
                   (target != 1 && !lua_compare(L, 1, target, LUA_OPEQ));
    for (lua_Integer k = 0; k <= n; k++) {
      lua_Integer i = forwards ? k : n - k;
      lua_geti(L, 1, from + i);
      lua_seti(L, target, dest + i);
      tick(L, &ticks);
    }
  }
  lua_pushvalue(L, target);
  return 1;
}

/* ---- table.concat ---------------------------------------------------------- */

static int concat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t sep_len;
  const char *sep = luaL_optlstring(L, 2, "", &sep_len);
  lua_Integer i = luaL_optinteger(L, 3, 1);
  lua_Integer last = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  unsigned ticks = 0;
  for (; i <= last; i++) {
    lua_geti(L, 1, i);
    if (!lua_isstring(L, -1))
      return luaL_error(L, "invalid value (at index %I) in table for 'concat'", (LUAI_UACINT)i);
    luaL_addvalue(&b);
    if (i == last) /* not i + 1: last may be maxinteger */
      break;
    luaL_addlstring(&b, sep, sep_len);
    tick(L, &ticks);
  }
  luaL_pushresult(&b);
  return 1;
}

/* ---- table.sort: a heap sort, O(n log n) whatever the input ---------------- */

typedef struct sorter {
  lua_State *L;
  int has_order; /* an order function at index 2 */
  unsigned ticks;
} sorter;

/* Whether the value at stack index a sorts before the one at b. */
static int sorts_before(sorter *st, int a, int b) {
  lua_State *L = st->L;
  tick(L, &st->ticks);
  if (!st->has_order)
    return lua_compare(L, a, b, LUA_OPLT);
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, a);
  lua_pushvalue(L, b);
  lua_call(L, 2, 1);
  int before = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return before;
}

/* Moves t[i] down the heap t[1..n] until neither child sorts after it. */
static void sift_down(sorter *st, lua_Integer i, lua_Integer n) {
  lua_State *L = st->L;
  for (;;) {
    lua_Integer child = 2 * i;
    if (child > n)
      return;
    lua_geti(L, 1, child);
    if (child < n) { /* take the later of the two children */
      lua_geti(L, 1, child + 1);
      if (sorts_before(st, -2, -1)) {
        lua_remove(L, -2);
        child++;
      } else {
        lua_pop(L, 1);
      }
    }
    lua_geti(L, 1, i);
    if (!sorts_before(st, -1, -2)) {
      lua_pop(L, 2);
      return;
    }
    lua_seti(L, 1, child); /* the parent goes down */
    lua_seti(L, 1, i);     /* the child comes up */
    i = child;
  }
}

static int sort(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  if (n > 1) {
    luaL_argcheck(L, n < INT_MAX, 1, "array too big");
    if (!lua_isnoneornil(L, 2))
      luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    sorter st = {L, !lua_isnil(L, 2), 0};
    for (lua_Integer i = n / 2; i >= 1; i--)
      sift_down(&st, i, n);
    for (lua_Integer last = n; last > 1; last--) { /* the greatest to the end */
      lua_geti(L, 1, 1);
      lua_geti(L, 1, last);
      lua_seti(L, 1, 1);
      lua_seti(L, 1, last);
      sift_down(&st, 1, last - 1);
    }
  }
  return 0;
}

void ac_bounded_install(lua_State *L, int string_table, int table_table) {
  string_table = lua_absindex(L, string_table);
  table_table = lua_absindex(L, table_table);
  lua_getfield(L, string_table, "rep");
  lua_pushcclosure(L, rep, 1);
  lua_setfield(L, string_table, "rep");
  static const luaL_Reg table_fns[] = {{"insert", insert}, {"remove", remove_at},
                                       {"move", move},     {"concat", concat},
                                       {"sort", sort},     {NULL, NULL}};
  for (const luaL_Reg *f = table_fns; f->name; f++) {
    lua_pushcfunction(L, f->func);
    lua_setfield(L, table_table, f->name);
  }
}
