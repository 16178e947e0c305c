/* vm.c — the sandboxed state: capped allocator, deadline hook, protected
 * calls with typed outcomes. */
#include "lua/vm.h"
#include "core/clock.h"
#include "lua/sandbox.h"
#include "lua/watchdog.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ac_vm {
  lua_State *L;
  ac_vm_config cfg;
  char plugin_id[80];

  /* allocator */
  size_t used;
  int memory_exceeded;

  /* the call in flight */
  int in_call;
  int64_t deadline_ms;
  int timed_out;
  int contract_failed;
  int retry_requested;
  int retry_delay_s;
  const char *ns;
  size_t logged_bytes;
  int log_truncated;

  int broken; /* timeout or memory: the state must be rebuilt */

  void *call_data;      /* what the caller attached to the running call */
  uint64_t call_serial; /* bumped per call: stale context tables notice */
};

const char *ac_outcome_kind_name(ac_outcome_kind kind) {
  static const char *const names[] = {"ok", "error", "timeout", "memory", "contract", "retry"};
  return kind <= AC_OUTCOME_RETRY ? names[kind] : "error";
}

/* ---- allocator -------------------------------------------------------- */

/* Every byte of the state goes through here, so the cap is exact. Growth
 * past the cap fails (Lua raises "not enough memory") and arms the hook so
 * a plugin that catches the error with pcall is still stopped. */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  ac_vm *vm = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    vm->used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > vm->cfg.memory_limit - vm->used) {
    if (vm->in_call && !vm->memory_exceeded) {
      vm->memory_exceeded = 1;
      ac_watchdog_arm(ac_watchdog_running());
    }
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p)
    vm->used = vm->used - old + nsize;
  return p;
}

/* ---- hook ------------------------------------------------------------- */

ac_vm *ac_vm_of(lua_State *L) { return *(ac_vm **)lua_getextraspace(L); }

static void deadline_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  ac_vm *vm = ac_vm_of(L);
  if (!vm->in_call) {
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  if (vm->memory_exceeded) {
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "memory limit of %d MB exceeded", (int)(vm->cfg.memory_limit >> 20));
  }
  if (vm->timed_out || ac_clock_mono_ms() >= vm->deadline_ms) {
    vm->timed_out = 1;
    /* keep firing at every instruction: the plugin's own pcall cannot
     * swallow the timeout for more than one instruction */
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "timeout: call exceeded %d ms", vm->cfg.timeout_ms);
  }
  /* armed early (a stale arming from an earlier call): run free again */
  lua_sethook(L, NULL, 0, 0);
}

int ac_vm_stopping(lua_State *L) {
  ac_vm *vm = ac_vm_of(L);
  return vm->in_call &&
         (vm->memory_exceeded || vm->timed_out || ac_clock_mono_ms() >= vm->deadline_ms);
}

void ac_vm_checkpoint(lua_State *L) {
  ac_vm *vm = ac_vm_of(L);
  if (!vm->in_call)
    return;
  if (vm->memory_exceeded || vm->timed_out || ac_clock_mono_ms() >= vm->deadline_ms) {
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1);
    deadline_hook(L, NULL);
  }
}

/* ---- lifecycle -------------------------------------------------------- */

static int open_protected(lua_State *L) {
  ac_sandbox_open(L);
  return 0;
}

int ac_vm_new(const ac_vm_config *cfg, ac_vm **out, ac_err *err) {
  *out = NULL;
  ac_watchdog_init(deadline_hook);
  ac_vm *vm = calloc(1, sizeof *vm);
  if (!vm)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory creating a Lua state");
  vm->cfg = *cfg;
  snprintf(vm->plugin_id, sizeof vm->plugin_id, "%s", cfg->plugin_id ? cfg->plugin_id : "");
  vm->cfg.plugin_id = vm->plugin_id;
  vm->L = lua_newstate(vm_alloc, vm);
  if (!vm->L) {
    free(vm);
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory creating a Lua state");
  }
  *(ac_vm **)lua_getextraspace(vm->L) = vm;
  lua_pushcfunction(vm->L, open_protected);
  if (lua_pcall(vm->L, 0, 0, 0) != LUA_OK) {
    ac_err_set(err, AC_ERR_NOMEM, "cannot build the sandbox: %s",
               lua_type(vm->L, -1) == LUA_TSTRING ? lua_tostring(vm->L, -1) : "?");
    ac_vm_free(vm);
    return err ? err->code : AC_ERR_NOMEM;
  }
  *out = vm;
  return AC_OK;
}

void ac_vm_free(ac_vm *vm) {
  if (!vm)
    return;
  /* __gc metamethods are refused by the sandbox, so closing cannot run
   * plugin code */
  lua_close(vm->L);
  free(vm);
}

lua_State *ac_vm_state(ac_vm *vm) { return vm->L; }

void ac_vm_set_plugin_id(ac_vm *vm, const char *id) {
  snprintf(vm->plugin_id, sizeof vm->plugin_id, "%s", id);
}
const ac_vm_config *ac_vm_config_of(const ac_vm *vm) { return &vm->cfg; }
int ac_vm_usable(const ac_vm *vm) { return !vm->broken; }
size_t ac_vm_memory_used(const ac_vm *vm) { return vm->used; }

int64_t ac_vm_deadline_ms(lua_State *L) { return ac_vm_of(L)->deadline_ms; }

int64_t ac_vm_time_left_ms(lua_State *L) {
  ac_vm *vm = ac_vm_of(L);
  if (!vm->in_call)
    return -1;
  int64_t left = vm->deadline_ms - ac_clock_mono_ms();
  return left > 0 ? left : 0;
}

const char *ac_vm_namespace(lua_State *L) { return ac_vm_of(L)->ns; }

/* ---- raising typed failures ------------------------------------------ */

int ac_vm_raise_contract(lua_State *L, const char *fmt, ...) {
  ac_vm_of(L)->contract_failed = 1;
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

int ac_vm_raise_retry(lua_State *L, const char *message, int delay_s) {
  ac_vm *vm = ac_vm_of(L);
  vm->retry_requested = 1;
  vm->retry_delay_s = delay_s;
  luaL_where(L, 1);
  lua_pushstring(L, message);
  lua_concat(L, 2);
  return lua_error(L);
}

/* ---- logging from plugins -------------------------------------------- */

void ac_vm_log(lua_State *L, ac_log_level level, const char *msg, size_t len, json_t *fields) {
  ac_vm *vm = ac_vm_of(L);
  if (vm->log_truncated || !ac_log_enabled(vm->cfg.log, level)) {
    json_decref(fields);
    return;
  }
  /* a line costs its text plus the fixed members; checked before writing
   * so no single line crosses the cap */
  if (vm->logged_bytes + len + 128 > AC_LOG_CALL_LIMIT) {
    vm->log_truncated = 1;
    json_decref(fields);
    json_t *f = json_pack("{s:s, s:s?}", "plugin", vm->plugin_id, "namespace", vm->ns);
    ac_log(vm->cfg.log, AC_LOG_WARN, "log truncated", f);
    return;
  }
  if (!json_is_object(fields)) {
    json_decref(fields);
    fields = json_object();
  }
  json_object_set_new(fields, "plugin", json_string(vm->plugin_id));
  if (vm->ns)
    json_object_set_new(fields, "namespace", json_string(vm->ns));
  json_t *m = json_stringn(msg, len);
  if (!m) {
    vm->logged_bytes += ac_log(vm->cfg.log, level, "(message is not valid UTF-8)", fields);
    return;
  }
  vm->logged_bytes += ac_log(vm->cfg.log, level, json_string_value(m), fields);
  json_decref(m);
}

/* ---- calls ------------------------------------------------------------ */

struct run_args {
  ac_vm_body body;
  void *ud;
};

static int run_body(lua_State *L) {
  struct run_args *a = lua_touserdata(L, 1);
  lua_settop(L, 0);
  a->body(L, a->ud);
  return 0;
}

/* Copies an error value into out without running any metamethod. */
static void describe_error(lua_State *L, int status, char *out, size_t size) {
  int t = lua_type(L, -1);
  const char *s = NULL;
  size_t len = 0;
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    s = lua_tolstring(L, -1, &len);
  } else if (status == LUA_ERRMEM) {
    s = "not enough memory";
    len = strlen(s);
  }
  if (!s) {
    snprintf(out, size, "error object is a %s value", lua_typename(L, t));
    return;
  }
  if (len >= size) {
    memcpy(out, s, size - 4);
    memcpy(out + size - 4, "...", 4);
  } else {
    memcpy(out, s, len);
    out[len] = '\0';
  }
}

void *ac_vm_call_data(lua_State *L) {
  ac_vm *vm = ac_vm_of(L);
  return vm->in_call ? vm->call_data : NULL;
}

uint64_t ac_vm_call_serial(lua_State *L) { return ac_vm_of(L)->call_serial; }

void ac_vm_set_call_data(ac_vm *vm, void *data) { vm->call_data = data; }

void ac_vm_run(ac_vm *vm, const char *ns, ac_vm_body body, void *ud, ac_outcome *out) {
  memset(out, 0, sizeof *out);
  out->retry_delay_s = -1;
  lua_State *L = vm->L;
  if (vm->broken) {
    out->kind = AC_OUTCOME_ERROR;
    snprintf(out->message, sizeof out->message, "internal: state must be rebuilt before reuse");
    return;
  }
  int64_t start = ac_clock_mono_ms();
  vm->in_call = 1;
  vm->call_serial++;
  vm->deadline_ms = start + vm->cfg.timeout_ms;
  vm->timed_out = vm->memory_exceeded = vm->contract_failed = vm->retry_requested = 0;
  vm->retry_delay_s = -1;
  vm->ns = ns;
  vm->logged_bytes = 0;
  vm->log_truncated = 0;

  struct run_args args = {body, ud};
  ac_watch watch;
  int top = lua_gettop(L);
  ac_watchdog_begin(&watch, L, vm->deadline_ms);
  lua_pushcfunction(L, run_body);
  lua_pushlightuserdata(L, &args);
  int status = lua_pcall(L, 1, 0, 0);
  ac_watchdog_end(&watch);
  lua_sethook(L, NULL, 0, 0);

  out->duration_ms = ac_clock_mono_ms() - start;
  if (vm->memory_exceeded) {
    out->kind = AC_OUTCOME_MEMORY;
    snprintf(out->message, sizeof out->message, "memory limit of %d MB exceeded",
             (int)(vm->cfg.memory_limit >> 20));
  } else if (vm->timed_out) {
    out->kind = AC_OUTCOME_TIMEOUT;
    snprintf(out->message, sizeof out->message, "timeout: call exceeded %d ms", vm->cfg.timeout_ms);
  } else if (status != LUA_OK) {
    describe_error(L, status, out->message, sizeof out->message);
    if (vm->contract_failed)
      out->kind = AC_OUTCOME_CONTRACT;
    else if (status == LUA_ERRMEM)
      out->kind = AC_OUTCOME_MEMORY;
    else if (vm->retry_requested) {
      out->kind = AC_OUTCOME_RETRY;
      out->retry_delay_s = vm->retry_delay_s;
    } else
      out->kind = AC_OUTCOME_ERROR;
  }
  if (out->kind == AC_OUTCOME_TIMEOUT || out->kind == AC_OUTCOME_MEMORY)
    vm->broken = 1;
  lua_settop(L, top);
  vm->in_call = 0;
  vm->ns = NULL;
  vm->call_data = NULL;
}
