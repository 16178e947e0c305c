/* context.c — builds the per-call context table and its functions. Every
 * function carries the serial of the call it was made for and refuses to
 * run in any other call (a plugin may keep the table in a global). */
#include "lua/context.h"
#include "core/buf.h"
#include "lua/bind_json.h"
#include "lua/convert.h"
#include "lua/sandbox.h"
#include "lua/vm.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define MASK "********"

const ac_call_context *ac_context_current(lua_State *L) {
  const ac_call_context *ctx = ac_vm_call_data(L);
  if (!ctx)
    luaL_error(L, "context functions work only while a hook runs");
  return ctx;
}

/* ---- log ---------------------------------------------------------------- */

/* Replaces every occurrence of a configured secret in text with the mask. */
static void redact(const json_t *secrets, const char *text, size_t len, ac_buf *out) {
  size_t i = 0;
  while (i < len) {
    size_t hit = 0;
    size_t n;
    json_t *s;
    json_array_foreach(secrets, n, s) {
      size_t sl = json_string_length(s);
      if (sl >= 4 && sl <= len - i && memcmp(text + i, json_string_value(s), sl) == 0) {
        hit = sl;
        break;
      }
    }
    if (hit) {
      ac_buf_puts(out, MASK);
      i += hit;
    } else {
      ac_buf_append(out, text + i, 1);
      i++;
    }
  }
}

static void redact_json(const json_t *secrets, json_t *v) {
  if (json_is_string(v)) {
    ac_buf b = AC_BUF_INIT(AC_LOG_CALL_LIMIT * 2);
    redact(secrets, json_string_value(v), json_string_length(v), &b);
    if (b.data && (b.len != json_string_length(v) || memcmp(b.data, json_string_value(v), b.len)))
      json_string_setn(v, b.data, b.len);
    ac_buf_free(&b);
  } else if (json_is_object(v)) {
    /* keys too: a secret used as a field name must not show either */
    const char *k;
    json_t *x, *renamed = NULL;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, x) {
      redact_json(secrets, x);
      ac_buf b = AC_BUF_INIT(AC_LOG_CALL_LIMIT * 2);
      size_t klen = strlen(k);
      redact(secrets, k, klen, &b);
      if (b.data && (b.len != klen || memcmp(b.data, k, klen) != 0)) {
        if (!renamed)
          renamed = json_object();
        json_object_setn(renamed, b.data, b.len, x);
        json_object_del(v, k);
      }
      ac_buf_free(&b);
    }
    if (renamed) {
      json_object_update(v, renamed);
      json_decref(renamed);
    }
  } else if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) redact_json(secrets, x);
  }
}

void ac_context_log(lua_State *L, ac_log_level level, const char *msg, size_t len, json_t *fields) {
  const ac_call_context *ctx = ac_vm_call_data(L);
  if (ctx && json_array_size(ctx->secrets) > 0) {
    ac_buf b = AC_BUF_INIT(AC_LOG_CALL_LIMIT * 2);
    redact(ctx->secrets, msg, len, &b);
    if (fields)
      redact_json(ctx->secrets, fields);
    ac_vm_log(L, level, b.data ? b.data : "", b.len, fields);
    ac_buf_free(&b);
    return;
  }
  ac_vm_log(L, level, msg, len, fields);
}

static int log_at(lua_State *L, ac_log_level level) {
  ac_context_current(L);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  if (ac_vm_log_full(L))
    return 0; /* nothing more is written: nothing is converted */
  size_t len;
  lua_settop(L, 2); /* the message string goes to slot 3, not into fields' */
  luaL_tolstring(L, 1, &len); /* runs __tostring inside the call, under its deadline */
  json_t *fields = NULL;
  if (!lua_isnoneornil(L, 2)) {
    ac_err err;
    if (ac_lua_to_json(L, 2, 0, &fields, &err) != AC_OK) {
      if (err.code == AC_ERR_TIMEOUT)
        ac_vm_checkpoint(L);
      return luaL_error(L, "log fields: %s", err.msg);
    }
    if (!json_is_object(fields)) {
      json_decref(fields);
      return luaL_error(L, "log fields must be a table with string keys");
    }
  }
  /* the message string is on the stack top until the line is written */
  const char *msg = lua_tolstring(L, -1, &len);
  ac_context_log(L, level, msg, len, fields);
  return 0;
}

static int log_debug(lua_State *L) { return log_at(L, AC_LOG_DEBUG); }
static int log_info(lua_State *L) { return log_at(L, AC_LOG_INFO); }
static int log_warn(lua_State *L) { return log_at(L, AC_LOG_WARN); }
static int log_error(lua_State *L) { return log_at(L, AC_LOG_ERROR); }

/* ---- deadline, retry ----------------------------------------------------- */

static int ctx_deadline(lua_State *L) {
  ac_context_current(L);
  lua_pushinteger(L, (lua_Integer)ac_vm_time_left_ms(L));
  return 1;
}

static int ctx_retry(lua_State *L) {
  const ac_call_context *ctx = ac_context_current(L);
  const char *msg = luaL_optstring(L, 1, "retry requested");
  lua_Integer delay = -1;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number d = luaL_checknumber(L, 2);
    luaL_argcheck(L, d >= 0 && d <= 7 * 86400, 2, "delay must be from 0 to 604800 seconds");
    delay = (lua_Integer)d;
  }
  if (!ctx->allow_retry)
    return luaL_error(L, "context.retry is only available in event hooks");
  return ac_vm_raise_retry(L, msg, (int)delay);
}

/* ---- db ------------------------------------------------------------------- */

static const char *check_key(lua_State *L) {
  size_t len;
  const char *key = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len > 0 && len <= AC_KV_KEY_MAX, 1, "key must be 1 to 200 bytes");
  luaL_argcheck(L, strlen(key) == len, 1, "key must not contain NUL bytes");
  return key;
}

static int kv_result(lua_State *L, int rc, const ac_err *err) {
  if (rc == AC_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, err->msg);
  return 2;
}

static int push_decoded(lua_State *L) {
  ac_lua_push_json(L, lua_touserdata(L, lua_upvalueindex(1)), 0, NULL);
  return 1;
}

static int decode_stored(lua_State *L) {
  const char *text = lua_touserdata(L, 1);
  json_error_t jerr;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
  if (!v)
    return luaL_error(L, "db.get: stored value is not valid JSON");
  lua_pushlightuserdata(L, v);
  lua_pushcclosure(L, push_decoded, 1);
  int status = lua_pcall(L, 0, 1, 0);
  json_decref(v);
  if (status != LUA_OK)
    return lua_error(L);
  return 1;
}

static int db_get_now(lua_State *L) {
  const ac_call_context *ctx = ac_context_current(L);
  const char *key = check_key(L);
  if (!ctx->kv)
    return luaL_error(L, "context.db is not available here");
  char *text = NULL;
  ac_err err = {0};
  int rc = ctx->kv->ops->get(ctx->kv, ctx->namespace_id, ctx->plugin_id, key, &text, &err);
  if (rc != AC_OK)
    return kv_result(L, rc, &err);
  if (!text) {
    lua_pushnil(L);
    return 1;
  }
  /* the text is heap memory: decode it in a protected call so a memory
   * error cannot jump over the free */
  lua_pushcfunction(L, decode_stored);
  lua_pushlightuserdata(L, text);
  int status = lua_pcall(L, 1, 1, 0);
  free(text);
  if (status != LUA_OK)
    return lua_error(L);
  return 1;
}

static int db_set_now(lua_State *L) {
  const ac_call_context *ctx = ac_context_current(L);
  const char *key = check_key(L);
  luaL_checkany(L, 2);
  lua_Integer ttl = luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, ttl >= 0 && ttl <= AC_KV_TTL_MAX, 3,
                "ttlSeconds must be from 0 (no expiry) to 315360000 (ten years)");
  if (!ctx->kv)
    return luaL_error(L, "context.db is not available here");
  json_t *v = NULL;
  ac_err err = {0};
  if (ac_lua_to_json(L, 2, 0, &v, &err) != AC_OK) {
    if (err.code == AC_ERR_TIMEOUT)
      ac_vm_checkpoint(L);
    return luaL_error(L, "db.set: %s", err.msg);
  }
  char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(v);
  if (!text)
    return luaL_error(L, "db.set: out of memory");
  int rc;
  if (strlen(text) > AC_KV_VALUE_MAX)
    rc = ac_err_set(&err, AC_ERR_LIMIT, "value is larger than 64 KiB");
  else
    rc = ctx->kv->ops->set(ctx->kv, ctx->namespace_id, ctx->plugin_id, key, text, (int)ttl, &err);
  free(text);
  if (rc == AC_ERR_LIMIT)
    return luaL_error(L, "db.set: %s", err.msg);
  return kv_result(L, rc, &err);
}

static int db_delete_now(lua_State *L) {
  const ac_call_context *ctx = ac_context_current(L);
  const char *key = check_key(L);
  if (!ctx->kv)
    return luaL_error(L, "context.db is not available here");
  ac_err err = {0};
  int rc = ctx->kv->ops->del(ctx->kv, ctx->namespace_id, ctx->plugin_id, key, &err);
  return kv_result(L, rc, &err);
}

/* The database calls wait on PostgreSQL: off a request thread first. */
static int db_get_k(lua_State *L, int status, lua_KContext c) { return db_get_now(L); }
static int db_set_k(lua_State *L, int status, lua_KContext c) { return db_set_now(L); }
static int db_delete_k(lua_State *L, int status, lua_KContext c) { return db_delete_now(L); }
static int db_get(lua_State *L) { return ac_vm_block_point(L, db_get_k, 0); }
static int db_set(lua_State *L) { return ac_vm_block_point(L, db_set_k, 0); }
static int db_delete(lua_State *L) { return ac_vm_block_point(L, db_delete_k, 0); }

/* ---- assembling the table ------------------------------------------------ */

void ac_context_set_fn(lua_State *L, const char *name, lua_CFunction fn) {
  lua_pushcfunction(L, fn);
  lua_setfield(L, -2, name);
}

static void set_str(lua_State *L, const char *name, const char *value) {
  if (value) {
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);
  }
}

static void context_build(lua_State *L, const ac_call_context *ctx);

/* registry key of a state's cached context: {serial, table} */
static const char cache_key = 'c';

void ac_context_push(lua_State *L) {
  const ac_call_context *ctx = ac_vm_call_data(L);
  if (!ctx->config_serial) {
    context_build(L, ctx);
    return;
  }
  luaL_checkstack(L, 4, "context");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    if ((uint64_t)lua_tointeger(L, -1) == ctx->config_serial) {
      lua_pop(L, 1);
      lua_rawgeti(L, -1, 2);
      lua_remove(L, -2);
      return;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  context_build(L, ctx);
  lua_createtable(L, 2, 0);
  lua_pushinteger(L, (lua_Integer)ctx->config_serial);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
}

static void context_build(lua_State *L, const ac_call_context *ctx) {
  luaL_checkstack(L, 8, "context");
  lua_createtable(L, 0, 12);
  int t = lua_gettop(L);
  set_str(L, "namespaceId", ctx->namespace_id);
  set_str(L, "departmentId", ctx->department_id);
  set_str(L, "pluginId", ctx->plugin_id);

  if (ctx->config)
    ac_lua_push_json(L, ctx->config, 1, "context.config");
  else {
    lua_newtable(L);
    ac_sandbox_push_readonly(L, -1, "context.config");
    lua_remove(L, -2);
  }
  lua_setfield(L, t, "config");

  lua_createtable(L, 0, 4);
  ac_context_set_fn(L, "debug", log_debug);
  ac_context_set_fn(L, "info", log_info);
  ac_context_set_fn(L, "warn", log_warn);
  ac_context_set_fn(L, "error", log_error);
  ac_sandbox_push_readonly(L, -1, "context.log");
  lua_remove(L, -2);
  lua_setfield(L, t, "log");

  lua_createtable(L, 0, 3);
  ac_context_set_fn(L, "get", db_get);
  ac_context_set_fn(L, "set", db_set);
  ac_context_set_fn(L, "delete", db_delete);
  ac_sandbox_push_readonly(L, -1, "context.db");
  lua_remove(L, -2);
  lua_setfield(L, t, "db");

  ac_json_push_module(L);
  lua_setfield(L, t, "json");
  ac_context_set_fn(L, "deadline", ctx_deadline);
  ac_context_set_fn(L, "retry", ctx_retry);

  ac_context_add_services(L, ctx);

  ac_sandbox_push_readonly(L, t, "context");
  lua_remove(L, t);
}
