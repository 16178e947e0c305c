/* context_services.c — context.http and context.crypto. */
#include "lua/context.h"

#include <lua.h>

void ac_context_add_services(lua_State *L, const ac_call_context *ctx);

void ac_context_add_services(lua_State *L, const ac_call_context *ctx) {
  (void)L;
  (void)ctx;
}
