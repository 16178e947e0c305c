/* bind_crypto.c — context.crypto: HMAC, hashing, encodings and random ids
 * on OpenSSL (engine/core/crypto.h). Outputs are built in Lua buffers, so a
 * memory error never leaks C memory. */
#include "core/crypto.h"
#include "lua/bind_services.h"
#include "lua/context.h"
#include "lua/sandbox.h"

#include <lauxlib.h>

/* crypto.hmac_sha256(key, msg) -> 32 raw bytes */
static int c_hmac_sha256(lua_State *L) {
  ac_context_current(L);
  size_t kl, ml;
  const char *key = luaL_checklstring(L, 1, &kl);
  const char *msg = luaL_checklstring(L, 2, &ml);
  unsigned char out[AC_CRYPTO_SHA256_LEN];
  if (ac_crypto_hmac_sha256(key, kl, msg, ml, out) != AC_OK)
    return luaL_error(L, "crypto.hmac_sha256: OpenSSL failed");
  lua_pushlstring(L, (const char *)out, sizeof out);
  return 1;
}

/* crypto.sha256(s) -> 32 raw bytes */
static int c_sha256(lua_State *L) {
  ac_context_current(L);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  unsigned char out[AC_CRYPTO_SHA256_LEN];
  if (ac_crypto_sha256(s, n, out) != AC_OK)
    return luaL_error(L, "crypto.sha256: OpenSSL failed");
  lua_pushlstring(L, (const char *)out, sizeof out);
  return 1;
}

/* crypto.hex(s) -> lower-case hex */
static int c_hex(lua_State *L) {
  ac_context_current(L);
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, AC_CRYPTO_HEX_SIZE(n));
  if (ac_crypto_hex(s, n, out, AC_CRYPTO_HEX_SIZE(n)) != AC_OK)
    return luaL_error(L, "crypto.hex: encoding failed");
  luaL_pushresultsize(&b, 2 * n);
  return 1;
}

/* crypto.base64(s) -> standard base64 with padding */
static int c_base64(lua_State *L) {
  ac_context_current(L);
  size_t n, len = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, AC_CRYPTO_B64_SIZE(n));
  if (ac_crypto_base64_encode(s, n, out, AC_CRYPTO_B64_SIZE(n), &len) != AC_OK)
    return luaL_error(L, "crypto.base64: encoding failed");
  luaL_pushresultsize(&b, len);
  return 1;
}

/* crypto.base64_decode(s) -> bytes, or nil, err for malformed input (an
 * engine extension: webhook secrets in the "whsec_<base64>" form). */
static int c_base64_decode(lua_State *L) {
  ac_context_current(L);
  size_t n, len = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  unsigned char *out =
      (unsigned char *)luaL_buffinitsize(L, &b, AC_CRYPTO_B64_DECODED_SIZE(n) + 1);
  ac_err err = {0};
  if (ac_crypto_base64_decode(s, n, out, AC_CRYPTO_B64_DECODED_SIZE(n) + 1, &len, &err) !=
      AC_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid base64: %s", err.msg);
    return 2;
  }
  luaL_pushresultsize(&b, len);
  return 1;
}

/* crypto.random_id() -> 32 hex chars from the CSPRNG */
static int c_random_id(lua_State *L) {
  ac_context_current(L);
  char id[AC_CRYPTO_RANDOM_ID_SIZE];
  if (ac_crypto_random_id(id) != AC_OK)
    return luaL_error(L, "crypto.random_id: the random generator failed");
  lua_pushstring(L, id);
  return 1;
}

void ac_bind_crypto_push(lua_State *L) {
  lua_createtable(L, 0, 6);
  ac_context_set_fn(L, "hmac_sha256", c_hmac_sha256);
  ac_context_set_fn(L, "sha256", c_sha256);
  ac_context_set_fn(L, "hex", c_hex);
  ac_context_set_fn(L, "base64", c_base64);
  ac_context_set_fn(L, "base64_decode", c_base64_decode);
  ac_context_set_fn(L, "random_id", c_random_id);
  ac_sandbox_push_readonly(L, -1, "context.crypto");
  lua_remove(L, -2);
}
