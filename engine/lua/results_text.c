/* results_text.c — onAgentQuery results as JSON text in one walk. */
#include "lua/results_text.h"
#include "core/hash.h"
#include "core/json_write.h"
#include "core/utf8.h"
#include "lua/convert.h"
#include "lua/sandbox.h"
#include "lua/vm.h"
#include "schema/schema.h"

#include <math.h>
#include <string.h>

#define RESULTS_MAX 20 /* AC_QUERY_MAX_RESULTS: more is the general way's */

typedef struct walk {
  lua_State *L;
  ac_buf *out;
  size_t bytes, nodes; /* counted as the general conversion counts them */
} walk;

static int put(walk *w, const char *s, size_t n) { return ac_buf_append(w->out, s, n) == AC_OK; }

/* A string of the state, key or value: counted, and valid UTF-8. */
static int put_string(walk *w, const char *s, size_t len) {
  w->bytes += len;
  return w->bytes <= AC_RESULTS_TEXT_BYTES_MAX &&
         ac_json_append_string(w->out, s, len) == AC_OK;
}

static int put_value(walk *w, int idx, int depth);

static int put_table(walk *w, int idx, int depth) {
  lua_State *L = w->L;
  if (ac_sandbox_readonly_target(L, idx)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_Integer n;
  if (!lua_checkstack(L, 6))
    return 0;
  if (ac_lua_is_array(L, idx, &n) || n == 0) { /* an empty table is [] in a query's results */
    if (!put(w, "[", 1))
      return 0;
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      int ok = (i == 1 || put(w, ",", 1)) && put_value(w, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
      if (!ok)
        return 0;
    }
    return put(w, "]", 1);
  }
  if (!put(w, "{", 1))
    return 0;
  int first = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t klen;
    /* integer keys become strings there, which two keys may share */
    int ok = lua_type(L, -2) == LUA_TSTRING && (first || put(w, ",", 1));
    const char *key = ok ? lua_tolstring(L, -2, &klen) : NULL;
    ok = ok && put_string(w, key, klen) && put(w, ":", 1) &&
         put_value(w, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
    if (!ok) {
      lua_pop(L, 1);
      return 0;
    }
    first = 0;
  }
  return put(w, "}", 1);
}

static int put_value(walk *w, int idx, int depth) {
  lua_State *L = w->L;
  if (depth > AC_CONVERT_DEPTH_MAX || ++w->nodes > AC_RESULTS_TEXT_NODES_MAX)
    return 0;
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? put(w, "true", 4) : put(w, "false", 5);
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      return ac_json_append_integer(w->out, (long long)lua_tointeger(L, idx)) == AC_OK;
    return isfinite(lua_tonumber(L, idx)) &&
           ac_json_append_real(w->out, lua_tonumber(L, idx)) == AC_OK;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return put_string(w, s, len);
  }
  case LUA_TTABLE:
    return put_table(w, idx, depth);
  case LUA_TLIGHTUSERDATA: /* json.null */
    return lua_touserdata(L, idx) == NULL && put(w, "null", 4);
  default:
    return 0;
  }
}

/* A source's url recently found valid on this thread: results name the
 * same few sources over and over, and the check parses the URL. */
#define URI_CACHE 16
#define URI_CACHE_LEN 192
static _Thread_local struct {
  size_t len;
  char text[URI_CACHE_LEN];
} uri_cache[URI_CACHE];

static int uri_ok(const char *s, size_t len) {
  unsigned slot = (unsigned)(ac_hash_bytes(AC_HASH_SEED, s, len) % URI_CACHE);
  if (uri_cache[slot].len == len && memcmp(uri_cache[slot].text, s, len) == 0)
    return 1;
  if (!ac_utf8_valid(s, len) || !ac_schema_uri_ok(s, len))
    return 0;
  if (len <= URI_CACHE_LEN) {
    memcpy(uri_cache[slot].text, s, len);
    uri_cache[slot].len = len;
  }
  return 1;
}

/* The string field `name` of the table at idx, or NULL. */
static const char *string_field(lua_State *L, int idx, const char *name, size_t *len) {
  lua_pushstring(L, name);
  const char *s = lua_rawget(L, idx) == LUA_TSTRING ? lua_tolstring(L, -1, len) : NULL;
  lua_pop(L, 1); /* the string stays: the table holds it */
  return s;
}

/* The value at idx is a table written as an object ('{' at from). */
static int wrote_object(walk *w, size_t from) { return w->out->data[from] == '{'; }

/* One result: what the PluginResult schema accepts, nothing else. */
static int put_result(walk *w, int idx, const char *plugin_id) {
  lua_State *L = w->L;
  if (++w->nodes > AC_RESULTS_TEXT_NODES_MAX || lua_type(L, idx) != LUA_TTABLE ||
      !lua_checkstack(L, 6))
    return 0;
  if (ac_sandbox_readonly_target(L, idx)) {
    lua_pop(L, 1);
    return 0;
  }
  int has_type = 0, has_title = 0, first = 1;
  if (!put(w, "{", 1))
    return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int v = lua_gettop(L), t = lua_type(L, v), ok = lua_type(L, -2) == LUA_TSTRING;
    size_t klen = 0, at;
    const char *key = ok ? lua_tolstring(L, -2, &klen) : "";
    if (strcmp(key, "type") == 0 && klen == 4) {
      ok = t == LUA_TSTRING && lua_rawlen(L, v) > 0;
      has_type = 1;
    } else if (strcmp(key, "title") == 0 && klen == 5) {
      ok = t == LUA_TSTRING;
      has_title = 1;
    } else if (strcmp(key, "summary") == 0 && klen == 7) {
      ok = t == LUA_TSTRING;
    } else if (strcmp(key, "confidence") == 0 && klen == 10) {
      double c = t == LUA_TNUMBER ? lua_tonumber(L, v) : NAN;
      ok = c >= 0 && c <= 1;
    } else if (strcmp(key, "source") == 0 && klen == 6) {
      size_t nlen, ulen;
      const char *url;
      ok = t == LUA_TTABLE && !ac_sandbox_readonly_target(L, v) &&
           string_field(L, v, "name", &nlen) && (url = string_field(L, v, "url", &ulen)) &&
           uri_ok(url, ulen);
    } else {
      ok = ok && strcmp(key, "data") == 0 && klen == 4 && t == LUA_TTABLE;
    }
    /* a view was pushed by the check above: the general way takes it */
    if (lua_gettop(L) > v)
      ok = 0;
    at = w->out->len + (first ? 0 : 1) + klen + 3; /* where the value starts: ,"key": */
    ok = ok && (first || put(w, ",", 1)) && put_string(w, key, klen) && put(w, ":", 1) &&
         put_value(w, v, 2);
    /* data and source must be objects: a table with keys 1..n, or none,
     * is an array */
    if (ok && t == LUA_TTABLE && !wrote_object(w, at))
      ok = 0;
    lua_settop(L, v - 1);
    if (!ok) {
      lua_pop(L, 1);
      return 0;
    }
    first = 0;
  }
  return has_type && has_title && (first || put(w, ",", 1)) && put(w, "\"pluginId\":\"", 12) &&
         ac_buf_puts(w->out, plugin_id) == AC_OK && put(w, "\"}", 2);
}

int ac_lua_results_text(lua_State *L, int idx, const char *plugin_id, ac_buf *out) {
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  size_t start = out->len;
  walk w = {L, out, 0, 1};
  int t = lua_type(L, idx), ok = 1;
  lua_Integer n = 0;
  if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA && !lua_touserdata(L, idx)))
    ok = 1; /* null: no results */
  else if (t != LUA_TTABLE || !lua_checkstack(L, 6) || ac_sandbox_readonly_target(L, idx))
    ok = 0;
  else if (!ac_lua_is_array(L, idx, &n))
    ok = n == 0; /* an empty table: no results */
  if (ok && n > RESULTS_MAX)
    ok = 0;
  for (lua_Integer i = 1; ok && i <= n; i++) {
    lua_rawgeti(L, idx, i);
    ok = (start == out->len || put(&w, ",", 1)) && put_result(&w, lua_gettop(L), plugin_id);
    lua_settop(L, top);
  }
  /* the general way counts strings and about 64 bytes a value */
  if (ok && ac_vm_charge_outside(L, w.bytes + w.nodes * 64) != 0)
    ok = 0;
  if (!ok) {
    lua_settop(L, top);
    out->len = start;
    if (out->data)
      out->data[start] = '\0';
  }
  return ok;
}
