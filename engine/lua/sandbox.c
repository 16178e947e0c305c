/* sandbox.c — allow-listed globals and the guards around them. */
#include "lua/sandbox.h"
#include "lua/bind_json.h"
#include "lua/bounded_lib.h"
#include "lua/context.h"
#include "lua/lpattern.h"
#include "lua/vm.h"
#include "lua/watchdog.h"

#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

/* ---- read-only views -------------------------------------------------- */

/* A view is an empty table whose metatable has __index = the target and
 * __newindex = ro_newindex. It is recognised by that C function, which no
 * plugin can obtain (the metatable is protected and the debug library is
 * absent): a metatable a plugin builds can never pass for a view. */

static int ro_newindex(lua_State *L) {
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__name");
  return luaL_error(L, "%s is read-only", lua_tostring(L, -1));
}

int ac_sandbox_readonly_target(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
    return 0;
  lua_pushliteral(L, "__newindex");
  lua_rawget(L, -2);
  int is_view = lua_tocfunction(L, -1) == ro_newindex;
  lua_pop(L, 1);
  if (is_view) {
    lua_pushliteral(L, "__index");
    is_view = lua_rawget(L, -2) == LUA_TTABLE;
    if (!is_view)
      lua_pop(L, 1);
  }
  if (!is_view) {
    lua_pop(L, 1);
    return 0;
  }
  lua_remove(L, -2);
  return 1;
}

static int ro_len(lua_State *L) {
  lua_Integer n = 0;
  if (ac_sandbox_readonly_target(L, 1))
    n = (lua_Integer)lua_rawlen(L, -1);
  lua_pushinteger(L, n);
  return 1;
}

/* pairs(view) walks the target without handing it out */
static int ro_next(lua_State *L) {
  lua_settop(L, 2);
  if (!ac_sandbox_readonly_target(L, 1))
    return luaL_argerror(L, 1, "read-only table expected");
  lua_insert(L, 2);
  if (lua_next(L, 2))
    return 2;
  lua_pushnil(L);
  return 1;
}

static int ro_pairs(lua_State *L) {
  lua_pushcfunction(L, ro_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

void ac_sandbox_push_readonly(lua_State *L, int idx, const char *name) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);          /* the view */
  lua_createtable(L, 0, 6); /* its metatable: light C functions, no closures */
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ro_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, ro_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, ro_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

/* ---- guarded base functions ------------------------------------------ */

/* setmetatable refuses __gc: finalizers run with hooks off (no deadline can
 * stop them) and at lua_close. Only a __gc present when the metatable is
 * set marks an object for finalization, so checking here is enough. */
static int sb_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    int t = lua_rawget(L, 2);
    lua_pop(L, 1);
    if (t != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
    /* a __call that is itself a callable table lets Lua chain calls inside
     * C, growing the stack each time, for minutes */
    lua_pushliteral(L, "__call");
    t = lua_rawget(L, 2);
    lua_pop(L, 1);
    if (t != LUA_TNIL && t != LUA_TFUNCTION)
      return luaL_error(L, "setmetatable: __call must be a function in the sandbox");
  }
  if (ac_sandbox_readonly_target(L, 1))
    return luaL_error(L, "setmetatable: cannot change a read-only table");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* xpcall's message handler runs inside the raise. When the raise is the
 * deadline hook's, Lua has hooks switched off there, so a looping handler
 * could never be stopped: once the call is stopping, the error passes
 * through untouched instead. */
static int guarded_handler(lua_State *L) {
  if (ac_vm_stopping(L))
    return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int xpcall_done(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L);
}

static int sb_xpcall(lua_State *L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_handler, 1);
  lua_replace(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  /* with a continuation, so the engine can move a call that is inside an
   * xpcall to a worker */
  lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, xpcall_done);
  return lua_gettop(L);
}

static int sb_rawset(lua_State *L) {
  if (ac_sandbox_readonly_target(L, 1))
    return luaL_error(L, "rawset: cannot write to a read-only table");
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

static int sb_collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "count") != 0)
    return luaL_error(L, "collectgarbage: only \"count\" is allowed in the sandbox");
  int kb = lua_gc(L, LUA_GCCOUNT);
  int b = lua_gc(L, LUA_GCCOUNTB);
  lua_pushnumber(L, (lua_Number)kb + ((lua_Number)b / 1024));
  return 1;
}

/* load: text chunks only; the environment defaults to the sandbox globals
 * (an explicit env table is allowed: it can only hold sandbox values). */
static int sb_load(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checkany(L, 1);
  if (n < 2)
    lua_pushnil(L);
  if (lua_gettop(L) < 3)
    lua_pushliteral(L, "t");
  else {
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
  }
  n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static int sb_print(lua_State *L) {
  if (ac_vm_log_full(L))
    return 0; /* nothing more is written: nothing is built */
  luaL_Buffer b;
  int n = lua_gettop(L);
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    /* the separator first: luaL_addchar may grow the buffer, which must
     * then be on the stack top */
    if (i > 1)
      luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL); /* may run __tostring: inside the call */
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  ac_context_log(L, AC_LOG_INFO, msg, len, NULL);
  return 0;
}

static int sb_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strcmp(name, "cjson") == 0) {
    ac_json_push_module(L);
    return 1;
  }
  return luaL_error(L, "module '%s' not found: the sandbox provides only \"cjson\"", name);
}

/* ---- coroutines ------------------------------------------------------- */

#define RESUME_ENGINE_YIELD (-2)

/* Resumes co from L with narg arguments on L's stack top, keeping the
 * watchdog pointed at whichever state is running. Returns the number of
 * results moved to L, -1 with the error value on L's top, or
 * RESUME_ENGINE_YIELD when co gave its thread back to the engine (a time
 * slice ended or a binding must wait) and L must yield too: the caller
 * yields with a continuation that resumes co again. */
static int resume_tracked(lua_State *L, lua_State *co, int narg) {
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  int st = lua_status(co);
  if (st == LUA_OK && lua_gettop(co) == 0) {
    lua_pushliteral(L, "cannot resume dead coroutine");
    return -1;
  }
  if (st != LUA_OK && st != LUA_YIELD) {
    lua_pushliteral(L, "cannot resume dead coroutine");
    return -1;
  }
  ac_vm_checkpoint(L); /* past the deadline: stop here, not inside co */
  lua_xmove(L, co, narg);
  int nres = 0, status;
  for (;;) {
    ac_watchdog_set_running(co);
    status = lua_resume(co, L, narg, &nres);
    ac_watchdog_set_running(L);
    ac_vm_checkpoint(L); /* a timeout inside co must unwind L too */
    if (status != LUA_YIELD || !ac_vm_engine_yield_pending(L))
      break;
    lua_pop(co, nres);
    if (lua_isyieldable(L))
      return RESUME_ENGINE_YIELD;
    /* L cannot yield (a C call is in between): go on here */
    ac_vm_cancel_engine_yield(L);
    narg = 0;
  }
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

static lua_State *check_co(lua_State *L, int idx) {
  lua_State *co = lua_tothread(L, idx);
  luaL_argexpected(L, co, idx, "coroutine");
  return co;
}

static int resume_finish(lua_State *L, int r) {
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

/* coroutine.resume after the engine moved the call: co is still at 1 */
static int resume_again(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lua_State *co = lua_tothread(L, 1);
  lua_settop(L, 1);
  int r = resume_tracked(L, co, 0);
  if (r == RESUME_ENGINE_YIELD)
    return lua_yieldk(L, 0, 0, resume_again);
  return resume_finish(L, r);
}

static int sb_resume(lua_State *L) {
  lua_State *co = check_co(L, 1);
  int r = resume_tracked(L, co, lua_gettop(L) - 1);
  if (r == RESUME_ENGINE_YIELD)
    return lua_yieldk(L, 0, 0, resume_again);
  return resume_finish(L, r);
}

static int wrap_finish(lua_State *L, lua_State *co, int r) {
  if (r < 0) {
    int st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD) {
      ac_watchdog_set_running(co);
      lua_resetthread(co); /* run its pending __close handlers */
      ac_watchdog_set_running(L);
      ac_vm_checkpoint(L);
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  return r;
}

static int wrap_again(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  lua_settop(L, 0);
  int r = resume_tracked(L, co, 0);
  if (r == RESUME_ENGINE_YIELD)
    return lua_yieldk(L, 0, 0, wrap_again);
  return wrap_finish(L, co, r);
}

static int wrap_call(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int r = resume_tracked(L, co, lua_gettop(L));
  if (r == RESUME_ENGINE_YIELD)
    return lua_yieldk(L, 0, 0, wrap_again);
  return wrap_finish(L, co, r);
}

/* coroutine.yield and isyieldable: the plugin's top level runs on the
 * engine's own coroutine, which is not the plugin's to yield */
static int sb_yield(lua_State *L) {
  if (ac_vm_is_call_root(L) || !lua_isyieldable(L))
    return luaL_error(L, "attempt to yield from outside a coroutine");
  return lua_yield(L, lua_gettop(L));
}

static int sb_isyieldable(lua_State *L) {
  lua_State *co = lua_isnone(L, 1) ? L : check_co(L, 1);
  lua_pushboolean(L, !ac_vm_is_call_root(co) && lua_isyieldable(co));
  return 1;
}

static int sb_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, wrap_call, 1);
  return 1;
}

/* "running", "suspended", "normal" or "dead", as coroutine.status says. */
static const char *co_status(lua_State *L, lua_State *co) {
  if (L == co)
    return "running";
  switch (lua_status(co)) {
  case LUA_YIELD:
    return "suspended";
  case LUA_OK: {
    lua_Debug ar;
    if (lua_getstack(co, 0, &ar))
      return "normal";
    return lua_gettop(co) == 0 ? "dead" : "suspended";
  }
  default:
    return "dead";
  }
}

static int sb_close(lua_State *L) {
  lua_State *co = check_co(L, 1);
  const char *st = co_status(L, co);
  if (strcmp(st, "running") == 0 || strcmp(st, "normal") == 0)
    return luaL_error(L, "cannot close a %s coroutine", st);
  ac_watchdog_set_running(co);
  int status = lua_resetthread(co); /* runs pending __close handlers */
  ac_watchdog_set_running(L);
  ac_vm_checkpoint(L);
  if (status == LUA_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  return 2;
}

/* ---- building the globals -------------------------------------------- */

/* The stock pattern functions cannot be interrupted (they never return to
 * the VM); the engine's own matcher checks the deadline as it goes. */
static void pattern_check(lua_State *L, void *ud) {
  (void)ud;
  ac_vm_checkpoint(L);
}

static void install_patterns(lua_State *L, int string_table) {
  ac_lpattern_install(L, string_table, pattern_check, NULL);
}

/* Copies the named fields of the table at src into the table at dst. */
static void copy_fields(lua_State *L, int src, int dst, const char *const names[]) {
  src = lua_absindex(L, src);
  dst = lua_absindex(L, dst);
  for (int i = 0; names[i]; i++) {
    lua_getfield(L, src, names[i]);
    lua_setfield(L, dst, names[i]);
  }
}

/* Opens a standard library into a scratch table and returns (pushes) a
 * fresh table holding only the allowed names. */
static void allowed_lib(lua_State *L, lua_CFunction open, const char *const names[]) {
  lua_pushcfunction(L, open);
  lua_call(L, 0, 1);
  lua_newtable(L);
  copy_fields(L, -2, -1, names);
  lua_remove(L, -2);
}

static const char *const base_names[] = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
    "rawlen", "select", "getmetatable", "tonumber", "tostring", "type", "_VERSION", NULL};
static const char *const string_names[] = {
    "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match",
    "rep", "reverse", "sub", "upper", "pack", "packsize", "unpack", NULL};
static const char *const table_names[] = {"concat", "insert", "move", "pack", "remove",
                                          "sort", "unpack", NULL};
static const char *const math_names[] = {
    "abs", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log", "max", "maxinteger",
    "min", "mininteger", "modf", "pi", "rad", "random", "randomseed", "sin", "sqrt", "tan",
    "tointeger", "type", "ult", "acos", "asin", "atan", NULL};
static const char *const utf8_names[] = {"char", "charpattern", "codes", "codepoint", "len",
                                         "offset", NULL};
static const char *const os_names[] = {"time", "clock", "date", "difftime", NULL};
static const char *const coroutine_names[] = {"create", "isyieldable", "running", "status",
                                              "yield", NULL};

static void set_capabilities(lua_State *L, int globals) {
  static const char *const caps[][2] = {{"AgentQuery", "agent_query"},
                                        {"ApprovalHook", "approval_hook"},
                                        {"DocumentHook", "document_hook"},
                                        {"Tools", "tools"}};
  lua_newtable(L);
  for (int i = 0; i < 4; i++) {
    lua_pushstring(L, caps[i][1]);
    lua_setfield(L, -2, caps[i][0]);
  }
  ac_sandbox_push_readonly(L, -1, "PluginCapability");
  lua_setfield(L, globals, "PluginCapability");
  lua_pop(L, 1);
}

void ac_sandbox_open(lua_State *L) {
  /* the full base library lands in the original globals table, which the
   * sandbox then drops: only the allow-listed names are copied out */
  luaL_requiref(L, "_G", luaopen_base, 0);
  int stock = lua_gettop(L);
  lua_newtable(L);
  int G = lua_gettop(L);
  copy_fields(L, stock, G, base_names);

  lua_getfield(L, stock, "setmetatable");
  lua_pushcclosure(L, sb_setmetatable, 1);
  lua_setfield(L, G, "setmetatable");
  lua_getfield(L, stock, "load");
  lua_pushcclosure(L, sb_load, 1);
  lua_setfield(L, G, "load");
  lua_getfield(L, stock, "xpcall");
  lua_pushcclosure(L, sb_xpcall, 1);
  lua_setfield(L, G, "xpcall");
  lua_pushcfunction(L, sb_rawset);
  lua_setfield(L, G, "rawset");
  lua_pushcfunction(L, sb_collectgarbage);
  lua_setfield(L, G, "collectgarbage");
  lua_pushcfunction(L, sb_print);
  lua_setfield(L, G, "print");
  lua_pushcfunction(L, sb_require);
  lua_setfield(L, G, "require");

  allowed_lib(L, luaopen_string, string_names);
  install_patterns(L, lua_gettop(L));
  /* strings index the sandbox's string table; the metatable is hidden */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "protected");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  lua_setfield(L, G, "string");

  allowed_lib(L, luaopen_table, table_names);
  lua_getfield(L, G, "string");
  ac_bounded_install(L, -1, -2);
  lua_pop(L, 1);
  lua_setfield(L, G, "table");
  allowed_lib(L, luaopen_math, math_names);
  lua_setfield(L, G, "math");
  allowed_lib(L, luaopen_utf8, utf8_names);
  lua_setfield(L, G, "utf8");
  allowed_lib(L, luaopen_os, os_names);
  lua_setfield(L, G, "os");
  allowed_lib(L, luaopen_coroutine, coroutine_names);
  lua_pushcfunction(L, sb_resume);
  lua_setfield(L, -2, "resume");
  lua_pushcfunction(L, sb_yield);
  lua_setfield(L, -2, "yield");
  lua_pushcfunction(L, sb_isyieldable);
  lua_setfield(L, -2, "isyieldable");
  lua_pushcfunction(L, sb_wrap);
  lua_setfield(L, -2, "wrap");
  lua_pushcfunction(L, sb_close);
  lua_setfield(L, -2, "close");
  lua_setfield(L, G, "coroutine");

  set_capabilities(L, G);
  ac_json_open(L);

  lua_pushvalue(L, G);
  lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_settop(L, stock - 1);
}
