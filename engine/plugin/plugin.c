/* plugin.c — loading a plugin file and checking its contract; calling its
 * hooks. All reads of plugin values use raw access inside the deadline-bound
 * call, so no metamethod of the plugin runs outside its limits. */
#include "plugin/plugin.h"
#include "core/clock.h"
#include "lua/convert.h"
#include "lua/guard.h"
#include "lua/results_text.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLUGIN_KEY "ac.plugin" /* registry slot of the plugin table */

struct ac_plugin {
  ac_plugin_info info;
  ac_plugin_limits limits;
  char *path;      /* chunk name as given */
  char *source;
  size_t source_len;
  ac_vm *vm;       /* the state it was loaded in, until taken */
};

static const struct {
  const char *name;
  unsigned bit;
  const char *fn;
} capability_table[] = {
    {"agent_query", AC_CAP_AGENT_QUERY, AC_HOOK_QUERY},
    {"approval_hook", AC_CAP_APPROVAL_HOOK, AC_HOOK_APPROVAL},
    {"document_hook", AC_CAP_DOCUMENT_HOOK, AC_HOOK_DOCUMENT},
    {"tools", AC_CAP_TOOLS, NULL},
};
#define N_CAPS (sizeof capability_table / sizeof capability_table[0])

int ac_plugin_hook_known(const char *name) {
  return strcmp(name, AC_HOOK_INIT) == 0 || strcmp(name, AC_HOOK_APPROVAL) == 0 ||
         strcmp(name, AC_HOOK_DOCUMENT) == 0 || strcmp(name, AC_HOOK_QUERY) == 0;
}

/* ---- contract ----------------------------------------------------------- */

static int valid_id(const char *s, size_t len) {
  if (len < 1 || len > 64 || !(s[0] >= 'a' && s[0] <= 'z'))
    return 0;
  for (size_t i = 1; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH[-pre][+build], numeric parts
 * without leading zeros. */
static int valid_semver(const char *s) {
  for (int part = 0; part < 3; part++) {
    if (!(*s >= '0' && *s <= '9'))
      return 0;
    if (*s == '0' && s[1] >= '0' && s[1] <= '9')
      return 0;
    while (*s >= '0' && *s <= '9')
      s++;
    if (part < 2 && *s++ != '.')
      return 0;
  }
  for (char sep = '-'; sep; sep = (sep == '-' ? '+' : 0)) {
    if (*s != sep)
      continue;
    s++;
    int ident = 0;
    while ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
           *s == '-' || *s == '.') {
      if (*s == '.' && ident == 0)
        return 0;
      ident = *s == '.' ? 0 : ident + 1;
      s++;
    }
    if (ident == 0)
      return 0;
  }
  return *s == '\0';
}

/* Raw string field of the table at t, or NULL when absent. Raises a
 * contract error when present but not a string. */
static const char *opt_string(lua_State *L, int t, const char *field) {
  lua_pushstring(L, field);
  int type = lua_rawget(L, t);
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (type != LUA_TSTRING)
    ac_vm_raise_contract(L, "field \"%s\" must be a string, got %s", field, lua_typename(L, type));
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the plugin table keeps it alive */
  return s;
}

static int raw_type(lua_State *L, int t, const char *field) {
  lua_pushstring(L, field);
  int type = lua_rawget(L, t);
  lua_pop(L, 1);
  return type;
}

static char *dup_or_raise(lua_State *L, const char *s) {
  char *d = strdup(s);
  if (!d)
    luaL_error(L, "out of memory");
  return d;
}

static void read_capabilities(lua_State *L, int t, ac_plugin_info *info) {
  info->capabilities = json_array();
  lua_pushliteral(L, "capabilities");
  int type = lua_rawget(L, t);
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  if (type != LUA_TTABLE)
    ac_vm_raise_contract(L, "field \"capabilities\" must be an array of strings, got %s",
                         lua_typename(L, type));
  int caps = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, caps);
  lua_pushnil(L);
  lua_Integer count = 0;
  while (lua_next(L, caps)) {
    count++;
    lua_pop(L, 1);
  }
  if (count != n)
    ac_vm_raise_contract(L, "field \"capabilities\" must be an array of strings");
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, caps, i) != LUA_TSTRING)
      ac_vm_raise_contract(L, "capabilities[%d] must be a string, got %s", (int)i,
                           luaL_typename(L, -1));
    const char *name = lua_tostring(L, -1);
    size_t k = 0;
    while (k < N_CAPS && strcmp(capability_table[k].name, name) != 0)
      k++;
    if (k == N_CAPS)
      ac_vm_raise_contract(L,
                           "capabilities[%d]: unknown capability \"%s\" (known: agent_query, "
                           "approval_hook, document_hook, tools)",
                           (int)i, name);
    if (info->caps & capability_table[k].bit)
      ac_vm_raise_contract(L, "capabilities[%d]: \"%s\" is listed twice", (int)i, name);
    info->caps |= capability_table[k].bit;
    json_array_append_new(info->capabilities, json_string(name));
    if (capability_table[k].fn && raw_type(L, t, capability_table[k].fn) != LUA_TFUNCTION)
      ac_vm_raise_contract(L, "capability \"%s\" needs function \"%s\", got %s", name,
                           capability_table[k].fn,
                           lua_typename(L, raw_type(L, t, capability_table[k].fn)));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void read_tools(lua_State *L, int t, ac_plugin_info *info) {
  lua_pushliteral(L, "tools");
  int type = lua_rawget(L, t);
  if (type == LUA_TNIL) {
    lua_pop(L, 1);
    if (info->caps & AC_CAP_TOOLS)
      ac_vm_raise_contract(L, "capability \"tools\" needs a \"tools\" array");
    info->tools = json_array();
    return;
  }
  if (type != LUA_TTABLE)
    ac_vm_raise_contract(L, "field \"tools\" must be an array, got %s", lua_typename(L, type));
  json_t *tools = NULL;
  ac_err err;
  if (ac_lua_to_json(L, -1, 1, &tools, &err) != AC_OK) {
    if (err.code == AC_ERR_TIMEOUT)
      ac_vm_checkpoint(L);
    ac_vm_raise_contract(L, "field \"tools\": %s", err.msg);
  }
  info->tools = tools;
  if (!json_is_array(tools))
    ac_vm_raise_contract(L, "field \"tools\" must be an array");
  if ((info->caps & AC_CAP_TOOLS) && json_array_size(tools) == 0)
    ac_vm_raise_contract(L, "capability \"tools\" needs at least one tool");
  size_t i;
  json_t *tool;
  json_array_foreach(tools, i, tool) {
    const char *name = json_string_value(json_object_get(tool, "name"));
    if (!json_is_object(tool) || !name || !*name || strlen(name) > 64)
      ac_vm_raise_contract(L, "tools[%d].name must be a string of 1 to 64 characters", (int)i + 1);
    for (const char *c = name; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '_' || *c == '-' || *c == '.'))
        ac_vm_raise_contract(L, "tools[%d].name \"%s\" may only hold letters, digits, _ - .",
                             (int)i + 1, name);
    if (!json_is_string(json_object_get(tool, "description")))
      ac_vm_raise_contract(L, "tools[%d].description must be a string", (int)i + 1);
    json_t *schema = json_object_get(tool, "inputSchema");
    if (!json_is_object(schema))
      ac_vm_raise_contract(L, "tools[%d].inputSchema must be a table", (int)i + 1);
    for (size_t j = 0; j < i; j++)
      if (strcmp(name, json_string_value(json_object_get(json_array_get(tools, j), "name"))) == 0)
        ac_vm_raise_contract(L, "tools[%d].name \"%s\" is used twice", (int)i + 1, name);
  }
  lua_pop(L, 1);
}

static void read_schema(lua_State *L, int t, ac_plugin_info *info) {
  lua_pushliteral(L, "configSchema");
  int type = lua_rawget(L, t);
  ac_err err = {0};
  json_t *schema = NULL;
  if (type == LUA_TNIL) {
    schema = json_pack("{s:s}", "type", "object");
  } else if (type != LUA_TTABLE && type != LUA_TBOOLEAN) {
    ac_vm_raise_contract(L, "field \"configSchema\" must be a table, got %s", lua_typename(L, type));
  } else if (ac_schema_from_lua(L, lua_gettop(L), &schema, &err) != AC_OK) {
    ac_vm_raise_contract(L, "%s", err.msg);
  }
  lua_pop(L, 1);
  info->config_schema = schema;
  if (ac_schema_compile(schema, &info->schema, &err) != AC_OK)
    ac_vm_raise_contract(L, "%s", err.msg);
}

struct load_args {
  const char *chunkname;
  const char *src;
  size_t len;
  ac_plugin_info *info;
};

static void load_body(lua_State *L, void *ud) {
  struct load_args *a = ud;
  int st = luaL_loadbufferx(L, a->src, a->len, a->chunkname, "t");
  if (st != LUA_OK) {
    if (st == LUA_ERRSYNTAX)
      ac_vm_raise_contract(L, "%s", lua_tostring(L, -1));
    lua_error(L);
  }
  lua_call(L, 0, 1);
  if (lua_type(L, -1) != LUA_TTABLE)
    ac_vm_raise_contract(L, "the file must return a table, got %s", luaL_typename(L, -1));
  int t = lua_gettop(L);
  ac_plugin_info *info = a->info;

  size_t idlen = 0;
  const char *id = opt_string(L, t, "id");
  if (!id)
    ac_vm_raise_contract(L, "field \"id\" is required");
  idlen = strlen(id);
  if (!valid_id(id, idlen))
    ac_vm_raise_contract(L, "field \"id\" must match ^[a-z][a-z0-9_-]{0,63}$, got \"%s\"", id);
  memcpy(info->id, id, idlen + 1);

  const char *name = opt_string(L, t, "name");
  info->name = dup_or_raise(L, name ? name : id);
  const char *category = opt_string(L, t, "category");
  info->category = dup_or_raise(L, category ? category : "general");
  const char *version = opt_string(L, t, "version");
  if (version) {
    if (!valid_semver(version))
      ac_vm_raise_contract(L, "field \"version\" must be a semantic version like 1.0.0, got \"%s\"",
                           version);
    info->version = dup_or_raise(L, version);
  }
  int init_type = raw_type(L, t, "init");
  if (init_type != LUA_TNIL && init_type != LUA_TFUNCTION)
    ac_vm_raise_contract(L, "field \"init\" must be a function, got %s", lua_typename(L, init_type));
  info->has_init = init_type == LUA_TFUNCTION;

  read_capabilities(L, t, info);
  read_tools(L, t, info);
  read_schema(L, t, info);

  lua_pushvalue(L, t);
  lua_setfield(L, LUA_REGISTRYINDEX, PLUGIN_KEY);
}

static void info_clear(ac_plugin_info *info) {
  free(info->name);
  free(info->category);
  free(info->version);
  json_decref(info->capabilities);
  json_decref(info->config_schema);
  json_decref(info->tools);
  ac_schema_free(info->schema);
  memset(info, 0, sizeof *info);
}

static int run_load(ac_vm *vm, const char *chunkname, const char *src, size_t len,
                    ac_plugin_info *info, ac_outcome *out) {
  struct load_args args = {chunkname, src, len, info};
  ac_vm_run(vm, NULL, load_body, &args, out);
  return out->kind == AC_OUTCOME_OK ? AC_OK : AC_ERR_INVALID;
}

static ac_vm_config vm_config(const ac_plugin_limits *limits, const char *plugin_id) {
  ac_vm_config c = {limits->timeout_ms, limits->memory_limit, limits->log, plugin_id};
  return c;
}

static void fail(ac_outcome *out, ac_outcome_kind kind, const char *fmt, const char *a,
                 const char *b) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  out->retry_delay_s = -1;
  snprintf(out->message, sizeof out->message, fmt, a, b);
}

/* ---- guarded loading ------------------------------------------------------ */

#define LOAD_GRACE_MS 500 /* past the timeout, before a stuck load is left */

typedef struct load_job {
  ac_plugin *p;
  ac_outcome out;
  int ok;
} load_job;

static void load_run(void *arg) {
  load_job *job = arg;
  ac_plugin *p = job->p;
  ac_vm_config cfg = vm_config(&p->limits, NULL);
  ac_err err = {0};
  if (ac_vm_new(&cfg, &p->vm, &err) != AC_OK) {
    fail(&job->out, AC_OUTCOME_MEMORY, "%s%s", "", err.msg);
    return;
  }
  if (run_load(p->vm, p->path, p->source, p->source_len, &p->info, &job->out) != AC_OK)
    return;
  ac_vm_set_plugin_id(p->vm, p->info.id);
  job->ok = 1;
}

static void load_abandoned(void *arg) {
  load_job *job = arg;
  ac_plugin_free(job->p);
  free(job);
}

void ac_plugin_load_source(const char *chunkname, const char *src, size_t len,
                           const ac_plugin_limits *limits, ac_plugin **plugin, ac_outcome *out) {
  *plugin = NULL;
  ac_plugin *p = calloc(1, sizeof *p);
  char *name = malloc(strlen(chunkname) + 2);
  char *copy = malloc(len + 1);
  if (!p || !name || !copy) {
    free(p);
    free(name);
    free(copy);
    fail(out, AC_OUTCOME_MEMORY, "%s%s", "out of memory loading ", chunkname);
    return;
  }
  name[0] = '@'; /* Lua then reports "file:line:" positions */
  memcpy(name + 1, chunkname, strlen(chunkname) + 1);
  memcpy(copy, src, len);
  copy[len] = '\0';
  p->path = name;
  p->source = copy;
  p->source_len = len;
  p->limits = *limits;

  /* the file's top level is plugin code like any hook: it runs on a
   * guarded thread, so a stall inside C cannot hold the caller (the reload
   * thread, `plugin check`) past the timeout */
  load_job *job = calloc(1, sizeof *job);
  if (!job) {
    fail(out, AC_OUTCOME_MEMORY, "%s%s", "out of memory loading ", chunkname);
    ac_plugin_free(p);
    return;
  }
  job->p = p;
  ac_guard_job gj = {load_run, load_abandoned, job};
  int rc = ac_guard_run(&gj, ac_clock_mono_ms() + limits->timeout_ms + LOAD_GRACE_MS);
  if (rc == AC_ERR_TIMEOUT) { /* the thread frees the job when it ends */
    char msg[128];
    snprintf(msg, sizeof msg, "timeout: loading did not end within %d ms (stuck in a C function)",
             limits->timeout_ms);
    fail(out, AC_OUTCOME_TIMEOUT, "%s%s", "", msg);
    return;
  }
  if (rc != AC_OK) {
    fail(out, AC_OUTCOME_ERROR, "%s%s", "", rc == AC_ERR_BUSY ? "busy: too many plugin loads are "
         "stuck in C functions" : "out of memory starting the load");
    ac_plugin_free(p);
    free(job);
    return;
  }
  *out = job->out;
  if (job->ok)
    *plugin = p;
  else
    ac_plugin_free(p);
  free(job);
}

void ac_plugin_load(const char *path, const ac_plugin_limits *limits, ac_plugin **plugin,
                    ac_outcome *out) {
  *plugin = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    fail(out, AC_OUTCOME_CONTRACT, "%s: cannot open: %s", path, strerror(errno));
    return;
  }
  char *buf = malloc(AC_PLUGIN_FILE_MAX + 1);
  size_t len = buf ? fread(buf, 1, AC_PLUGIN_FILE_MAX + 1, f) : 0;
  int read_error = ferror(f);
  fclose(f);
  if (!buf || read_error) {
    free(buf);
    fail(out, AC_OUTCOME_CONTRACT, "%s: %s", path, buf ? "read error" : "out of memory");
    return;
  }
  if (len > AC_PLUGIN_FILE_MAX) {
    free(buf);
    fail(out, AC_OUTCOME_CONTRACT, "%s: %s", path, "file is larger than 4 MiB");
    return;
  }
  ac_plugin_load_source(path, buf, len, limits, plugin, out);
  free(buf);
}

void ac_plugin_free(ac_plugin *p) {
  if (!p)
    return;
  ac_vm_free(p->vm);
  info_clear(&p->info);
  free(p->path);
  free(p->source);
  free(p);
}

const ac_plugin_info *ac_plugin_get_info(const ac_plugin *p) { return &p->info; }
const char *ac_plugin_path(const ac_plugin *p) { return p->path + 1; }

ac_vm *ac_plugin_take_state(ac_plugin *p) {
  ac_vm *vm = p->vm;
  p->vm = NULL;
  return vm;
}

int ac_plugin_new_state(const ac_plugin *p, ac_vm **vm, ac_outcome *out) {
  ac_vm_config cfg = vm_config(&p->limits, p->info.id);
  ac_err err = {0};
  if (ac_vm_new(&cfg, vm, &err) != AC_OK) {
    fail(out, AC_OUTCOME_MEMORY, "%s%s", "", err.msg);
    return AC_ERR_NOMEM;
  }
  /* the contract was checked at load; this reads it again into a scratch
   * info only to run the file in the new state */
  ac_plugin_info scratch = {0};
  int rc = run_load(*vm, p->path, p->source, p->source_len, &scratch, out);
  info_clear(&scratch);
  if (rc != AC_OK) {
    ac_vm_free(*vm);
    *vm = NULL;
  }
  return rc;
}

/* ---- calls ---------------------------------------------------------------- */

struct call_args {
  const char *hook;
  const json_t *arg;
  json_t *result;
  ac_results_text *text;
};

/* Leaves hook, its argument (unless init) and a context on the stack. */
static void call_setup(lua_State *L, void *ud) {
  struct call_args *a = ud;
  lua_getfield(L, LUA_REGISTRYINDEX, PLUGIN_KEY);
  lua_pushstring(L, a->hook);
  if (lua_rawget(L, -2) != LUA_TFUNCTION)
    ac_vm_raise_contract(L, "plugin does not define %s", a->hook);
  lua_remove(L, -2);
  if (a->arg)
    ac_lua_push_json(L, a->arg, 0, NULL);
  ac_context_push(L);
}

/* The hook's first result, written as results text when asked and sure,
 * else converted to JSON. */
static void call_collect(lua_State *L, void *ud) {
  struct call_args *a = ud;
  lua_settop(L, 1);
  ac_err err = {0};
  int is_query = strcmp(a->hook, AC_HOOK_QUERY) == 0;
  if (a->text) {
    ac_buf_reset(&a->text->buf);
    a->text->ready = 0;
    if (is_query && ac_lua_results_text(L, 1, a->text->plugin_id, &a->text->buf)) {
      a->text->ready = 1;
      return;
    }
  }
  if (ac_lua_to_json(L, 1, is_query, &a->result, &err) != AC_OK) {
    if (err.code == AC_ERR_TIMEOUT)
      ac_vm_checkpoint(L);
    luaL_error(L, "%s returned a value that is not JSON: %s", a->hook, err.msg);
  }
}

static ac_vm_step call_step(ac_vm *vm, struct call_args *args, int64_t slice_us,
                            json_t **result, ac_outcome *out) {
  ac_vm_step st = ac_vm_call_resume(vm, slice_us, call_collect, args, out);
  if (st != AC_VM_STEP_DONE)
    return st;
  if (out->kind != AC_OUTCOME_OK) {
    json_decref(args->result);
    args->result = NULL;
    if (args->text)
      args->text->ready = 0;
  }
  if (result)
    *result = args->result;
  else
    json_decref(args->result);
  return AC_VM_STEP_DONE;
}

ac_vm_step ac_plugin_call_begin(ac_vm *vm, const char *hook, const json_t *arg,
                                const ac_call_context *ctx, int64_t deadline_ms, int64_t slice_us,
                                json_t **result, ac_results_text *text, ac_outcome *out) {
  if (result)
    *result = NULL;
  if (text)
    text->ready = 0;
  struct call_args args = {hook, arg, NULL, text};
  ac_vm_set_call_data(vm, (void *)ctx);
  if (ac_vm_call_start(vm, ctx ? ctx->namespace_id : NULL, deadline_ms, call_setup, &args, out) !=
      AC_OK)
    return AC_VM_STEP_DONE;
  return call_step(vm, &args, slice_us, result, out);
}

ac_vm_step ac_plugin_call_continue(ac_vm *vm, const char *hook, int64_t slice_us, json_t **result,
                                   ac_results_text *text, ac_outcome *out) {
  if (result)
    *result = NULL;
  struct call_args args = {hook, NULL, NULL, text};
  return call_step(vm, &args, slice_us, result, out);
}

void ac_plugin_call(ac_vm *vm, const char *hook, const json_t *arg, const ac_call_context *ctx,
                    json_t **result, ac_outcome *out) {
  int64_t deadline = ac_clock_mono_ms() + ac_vm_config_of(vm)->timeout_ms;
  ac_plugin_call_begin(vm, hook, arg, ctx, deadline, 0, result, NULL, out);
}
