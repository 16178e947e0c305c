/* bind_services.h — the context's outbound services: context.http and
 * context.crypto (docs/plugin-authoring.md), pushed by context_services.c. */
#ifndef AC_LUA_BIND_SERVICES_H
#define AC_LUA_BIND_SERVICES_H

#include <lua.h>

/* Pushes a read-only table {request, get, post} bound to the running call:
 * requests go through the call context's ac_http_client, end before the
 * call's deadline and answer {status, headers, body} or nil, err. May raise
 * (memory); call while building the context. */
void ac_bind_http_push(lua_State *L);

/* Pushes a read-only table {hmac_sha256, sha256, hex, base64,
 * base64_decode, random_id} bound to the running call, all on OpenSSL.
 * May raise (memory). */
void ac_bind_crypto_push(lua_State *L);

#endif
