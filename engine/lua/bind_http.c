/* bind_http.c — context.http.request/get/post on the outbound client of the
 * thread running the call (docs/plugin-authoring.md).
 *
 * Programming errors (wrong argument types) raise; everything a request can
 * run into at run time — a header value with CR/LF, a body over the cap, an
 * address the guard refuses, a timeout — comes back as nil, "<kind>: ...".
 * A Lua error jumps over C frames, so the binding reads and checks every
 * argument first (values stay anchored on the Lua stack), then copies what
 * the request needs into one heap block, performs the request, frees the
 * block, and builds the response table inside a protected call so a memory
 * error cannot leak the response. */
#include "lua/bind_json.h"
#include "lua/bind_services.h"
#include "lua/context.h"
#include "lua/sandbox.h"
#include "lua/vm.h"
#include "outbound/http_client.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define METHOD_MAX 16              /* longer names are no method we allow */
#define TIMEOUT_MAX_MS 86400000LL  /* the call's deadline bounds it anyway */

/* Stack slots do_request works on (filled by the entry points). */
enum { S_METHOD = 1, S_URL, S_HEADERS, S_BODY, S_TIMEOUT, S_NAMES, S_SCRATCH };

/* What the checked arguments amount to; strings point into values anchored
 * on the stack until the copy is made. */
typedef struct plan {
  const char *fn; /* "http.request", ... for messages */
  const char *method;
  size_t method_len;
  const char *url;
  size_t url_len;
  const char *body; /* NULL: no body */
  size_t body_len;
  int json_body;    /* the body was a table, sent as JSON */
  int has_type;     /* the caller set content-type */
  size_t header_count;
  size_t header_bytes;
  int64_t timeout_ms; /* 0: the client's default */
} plan;

/* nil, message: the request could not be made. fmt is a lua_pushfstring
 * format (%s %d %f %p %c %U %% only). */
static int fail(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushnil(L);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return 2;
}

/* Replaces the read-only view at idx (context.config.headers, ...) by the
 * table it stands for, so raw traversal sees its entries. */
static void unview(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TTABLE && ac_sandbox_readonly_target(L, idx))
    lua_replace(L, idx);
}

/* Pushes t[key] with raw access, or nil when t is not a table. */
static void field(lua_State *L, int t, const char *key) {
  if (lua_type(L, t) != LUA_TTABLE) {
    lua_pushnil(L);
    return;
  }
  lua_pushstring(L, key);
  lua_rawget(L, t);
}

/* ---- argument checks (may raise; nothing held yet) ----------------------- */

static int check_method(lua_State *L, plan *p) {
  int t = lua_type(L, S_METHOD);
  if (t == LUA_TNIL) {
    p->method = "GET";
    p->method_len = 3;
    return 0;
  }
  if (t != LUA_TSTRING)
    return luaL_error(L, "%s: method must be a string, got %s", p->fn, lua_typename(L, t));
  p->method = lua_tolstring(L, S_METHOD, &p->method_len);
  if (p->method_len == 0 || p->method_len > METHOD_MAX || strlen(p->method) != p->method_len)
    return fail(L, "denied: method is not allowed (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)");
  return 0;
}

static int check_url(lua_State *L, plan *p) {
  int t = lua_type(L, S_URL);
  if (t != LUA_TSTRING)
    return luaL_error(L, "%s: url must be a string, got %s", p->fn, lua_typename(L, t));
  p->url = lua_tolstring(L, S_URL, &p->url_len);
  if (strlen(p->url) != p->url_len)
    return fail(L, "denied: URL contains a NUL byte");
  if (p->url_len > AC_HTTP_MAX_URL)
    return fail(L, "denied: URL longer than %d bytes", AC_HTTP_MAX_URL);
  return 0;
}

static int check_body(lua_State *L, plan *p) {
  int t = lua_type(L, S_BODY);
  if (t == LUA_TNIL)
    return 0;
  if (t == LUA_TTABLE) {
    /* the sandbox's json.encode: size and depth guards, views handled */
    ac_json_push_module(L);
    lua_getfield(L, -1, "encode");
    lua_remove(L, -2);
    lua_pushvalue(L, S_BODY);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "%s: json.encode did not return a string", p->fn);
    lua_replace(L, S_BODY);
    p->json_body = 1;
  } else if (t != LUA_TSTRING) {
    return luaL_error(L, "%s: body must be a string or a table, got %s", p->fn,
                      lua_typename(L, t));
  }
  p->body = lua_tolstring(L, S_BODY, &p->body_len);
  if (p->body_len > AC_HTTP_MAX_BODY)
    return fail(L, "denied: request body of %d bytes exceeds %d bytes", (int)p->body_len,
                AC_HTTP_MAX_BODY);
  return 0;
}

static int check_timeout(lua_State *L, plan *p) {
  int t = lua_type(L, S_TIMEOUT);
  if (t == LUA_TNIL)
    return 0;
  if (t != LUA_TNUMBER)
    return luaL_error(L, "%s: timeoutMs must be a number, got %s", p->fn, lua_typename(L, t));
  lua_Number ms = lua_tonumber(L, S_TIMEOUT);
  if (!(ms >= 1 && ms <= (lua_Number)TIMEOUT_MAX_MS))
    return luaL_error(L, "%s: timeoutMs must be from 1 to %d", p->fn, (int)TIMEOUT_MAX_MS);
  p->timeout_ms = (int64_t)ms;
  return 0;
}

/* Collects the headers into the scratch array at S_NAMES as name, value,
 * name, value... (numbers turned into strings), checking each. */
static int check_headers(lua_State *L, plan *p) {
  int t = lua_type(L, S_HEADERS);
  lua_newtable(L);
  lua_replace(L, S_NAMES);
  if (t == LUA_TNIL)
    return 0;
  if (t != LUA_TTABLE)
    return luaL_error(L, "%s: headers must be a table, got %s", p->fn, lua_typename(L, t));
  unview(L, S_HEADERS);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, S_HEADERS)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "%s: header names must be strings, got %s", p->fn,
                        lua_typename(L, lua_type(L, -2)));
    int vt = lua_type(L, -1);
    if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
      return luaL_error(L, "%s: header \"%s\" must be a string, got %s", p->fn,
                        lua_tostring(L, -2), lua_typename(L, vt));
    if (++p->header_count > AC_HTTP_MAX_HEADERS)
      return fail(L, "denied: more than %d request headers", AC_HTTP_MAX_HEADERS);
    size_t nl, vl;
    const char *name = lua_tolstring(L, -2, &nl);
    lua_pushvalue(L, -1); /* converting a copy keeps lua_next's key intact */
    const char *value = lua_tolstring(L, -1, &vl);
    ac_err err;
    if (ac_http_check_header(name, nl, value, vl, &err) != AC_OK)
      return fail(L, "%s", err.msg);
    p->header_bytes += nl + vl + 4;
    if (p->header_bytes > AC_HTTP_MAX_HEADER_BYTES)
      return fail(L, "denied: request headers exceed %d bytes", AC_HTTP_MAX_HEADER_BYTES);
    if (nl == 12 && strncasecmp(name, "content-type", 12) == 0)
      p->has_type = 1;
    lua_rawseti(L, S_NAMES, ++n * 2); /* the value copy */
    lua_pushvalue(L, -2);
    lua_rawseti(L, S_NAMES, n * 2 - 1);
    lua_pop(L, 1); /* the value; the key stays for lua_next */
  }
  return 0;
}

/* ---- the request (nothing may raise while the copy is held) ------------- */

static int push_response(lua_State *L) {
  const ac_http_response *r = lua_touserdata(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)r->status);
  lua_setfield(L, -2, "status");
  lua_createtable(L, 0, (int)json_object_size(r->headers));
  const char *k;
  json_t *v;
  json_object_foreach(r->headers, k, v) {
    lua_pushlstring(L, json_string_value(v), json_string_length(v));
    lua_setfield(L, -2, k);
  }
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, r->body ? r->body : "", r->body_len);
  lua_setfield(L, -2, "body");
  return 1;
}

static char *put(char **at, const char *s, size_t n) {
  char *start = *at;
  memcpy(start, s, n);
  start[n] = '\0';
  *at += n + 1;
  return start;
}

static int finish_k(lua_State *L, int status, lua_KContext k);

/* Copies the plan into one heap block, sends it and answers. */
static int send_plan(lua_State *L, const ac_call_context *ctx, const plan *p) {
  size_t count = p->header_count + (p->json_body && !p->has_type ? 1 : 0);
  size_t strings = p->method_len + 1 + p->url_len + 1 + p->body_len + 1 + p->header_bytes;
  size_t size = sizeof(ac_http_header) * (count + 1) + strings;
  ac_http_header *hdrs = malloc(size);
  if (!hdrs)
    return fail(L, "transport: out of memory");
  char *at = (char *)(hdrs + count + 1);
  ac_http_req req = {0};
  req.method = put(&at, p->method, p->method_len);
  req.url = put(&at, p->url, p->url_len);
  if (p->body) {
    req.body = put(&at, p->body, p->body_len);
    req.body_len = p->body_len;
  }
  for (size_t i = 0; i < p->header_count; i++) {
    size_t nl, vl;
    lua_rawgeti(L, S_NAMES, (lua_Integer)(2 * i + 1)); /* strings: no allocation */
    const char *name = lua_tolstring(L, -1, &nl);
    lua_rawgeti(L, S_NAMES, (lua_Integer)(2 * i + 2));
    const char *value = lua_tolstring(L, -1, &vl);
    hdrs[i].name = put(&at, name, nl);
    hdrs[i].value = put(&at, value, vl);
    lua_pop(L, 2);
  }
  if (count > p->header_count) {
    hdrs[p->header_count].name = "content-type";
    hdrs[p->header_count].value = "application/json";
  }
  req.headers = hdrs;
  req.header_count = count;
  req.timeout_ms = p->timeout_ms;
  req.plugin_id = ctx->plugin_id;
  req.namespace_id = ctx->namespace_id;

  ac_err err = {0};
  int rc = ac_http_request_begin(ctx->http, &req, ac_vm_deadline_ms(L), &err);
  free(hdrs);
  if (rc != AC_OK)
    return fail(L, "%s", err.msg);
  /* the transfer runs on the event loop while the call is parked (or,
   * where it cannot be, here on this thread in finish) */
  if (ac_vm_can_wait(L))
    return ac_vm_wait(L, finish_k, 0);
  return finish_k(L, LUA_OK, 0);
}

/* The transfer has run: answer with its response or error. */
static int finish_k(lua_State *L, int resumed, lua_KContext k) {
  (void)resumed;
  (void)k;
  const ac_call_context *ctx = ac_context_current(L);
  ac_http_response resp;
  ac_err err = {0};
  if (ac_http_request_finish(ctx->http, &resp, &err) != AC_OK)
    return fail(L, "%s", err.msg);
  lua_pushcfunction(L, push_response);
  lua_pushlightuserdata(L, &resp);
  int status = lua_pcall(L, 1, 1, 0);
  ac_http_response_free(&resp);
  if (status != LUA_OK)
    return lua_error(L);
  return 1;
}

/* Works on the five values at S_METHOD..S_TIMEOUT. */
static int request_now(lua_State *L, const char *fn) {
  const ac_call_context *ctx = ac_context_current(L);
  lua_settop(L, S_SCRATCH);
  luaL_checkstack(L, 12, fn);
  plan p = {0};
  p.fn = fn;
  int r;
  if ((r = check_method(L, &p)) || (r = check_url(L, &p)) || (r = check_body(L, &p)) ||
      (r = check_timeout(L, &p)) || (r = check_headers(L, &p)))
    return r;
  if (!ctx->http && ctx->http_take)
    ctx->http_take(ctx->http_ud); /* calls that never use HTTP never take a client */
  if (!ctx->http)
    return fail(L, "transport: HTTP is not available here");
  return send_plan(L, ctx, &p);
}

static int request_k(lua_State *L, int status, lua_KContext fn) {
  (void)status;
  return request_now(L, (const char *)fn);
}

/* The request waits on the network: where the call can be parked while
 * the event loop runs the transfer, right here; otherwise off a request
 * thread first. */
static int do_request(lua_State *L, const char *fn) {
  if (ac_vm_can_wait(L))
    return request_now(L, fn);
  return ac_vm_block_point(L, request_k, (lua_KContext)fn);
}

/* http.request{method, url, headers, body, timeoutMs} */
static int http_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  unview(L, 1);
  int t = lua_absindex(L, 1);
  field(L, t, "method");
  field(L, t, "url");
  field(L, t, "headers");
  field(L, t, "body");
  field(L, t, "timeoutMs");
  lua_remove(L, t);
  return do_request(L, "http.request");
}

/* Arranges method, url, opts.headers, body, opts.timeoutMs for get/post. */
static int shortcut(lua_State *L, const char *fn, const char *method, int has_body) {
  int opts_idx = has_body ? 3 : 2;
  lua_settop(L, opts_idx);
  int ot = lua_type(L, opts_idx);
  if (ot != LUA_TNIL && ot != LUA_TTABLE)
    return luaL_error(L, "%s: opts must be a table, got %s", fn, lua_typename(L, ot));
  unview(L, opts_idx);
  lua_pushstring(L, method); /* S_METHOD..S_TIMEOUT, above the arguments */
  lua_pushvalue(L, 1);
  field(L, opts_idx, "headers");
  if (has_body)
    lua_pushvalue(L, 2);
  else
    lua_pushnil(L);
  field(L, opts_idx, "timeoutMs");
  for (int i = 0; i < opts_idx; i++)
    lua_remove(L, 1);
  return do_request(L, fn);
}

static int http_get(lua_State *L) { return shortcut(L, "http.get", "GET", 0); }
static int http_post(lua_State *L) { return shortcut(L, "http.post", "POST", 1); }

void ac_bind_http_push(lua_State *L) {
  lua_createtable(L, 0, 3);
  ac_context_set_fn(L, "request", http_request);
  ac_context_set_fn(L, "get", http_get);
  ac_context_set_fn(L, "post", http_post);
  ac_sandbox_push_readonly(L, -1, "context.http");
  lua_remove(L, -2);
}
