/* context_services.c — adds context.http and context.crypto to the
 * context table while it is built (context.c). */
#include "lua/bind_services.h"
#include "lua/context.h"

#include <lua.h>

void ac_context_add_services(lua_State *L, const ac_call_context *ctx) {
  (void)ctx; /* the bindings read it at call time: it may change per call */
  ac_bind_http_push(L);
  lua_setfield(L, -2, "http");
  ac_bind_crypto_push(L);
  lua_setfield(L, -2, "crypto");
}
