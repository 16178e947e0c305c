/* vm.c — the sandboxed state: capped allocator, deadline hook, protected
 * calls with typed outcomes. */
#include "lua/vm.h"
#include "core/utf8.h"
#include "core/clock.h"
#include "lua/sandbox.h"
#include "lua/watchdog.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Small blocks Lua frees are kept per state, by size class, for its next
 * allocations: a state runs on whichever thread takes its call, and the
 * allocator's slow path is a block freed on another thread than the one
 * that made it. At most SMALL_CACHE_BYTES per state. */
#define SMALL_STEP 16
#define SMALL_MAX 256
#define SMALL_CLASSES (SMALL_MAX / SMALL_STEP)
#define SMALL_CACHE_BYTES (128 * 1024)

typedef struct small_block {
  struct small_block *next;
} small_block;

struct ac_vm {
  lua_State *L;
  ac_vm_config cfg;
  char plugin_id[80];

  /* allocator */
  size_t used;
  int memory_exceeded;
  struct small_block *small[SMALL_CLASSES]; /* freed small blocks, by class */
  size_t small_cached;                      /* their bytes */

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

  /* a resumable call (ac_vm_call_start): its coroutine, where it stands,
   * and why it last gave its thread back */
  lua_State *co;        /* the call's coroutine, reused across calls */
  int co_ref;           /* keeps co alive in the registry */
  int co_nargs;         /* arguments waiting for the first resume */
  int co_started;
  int64_t started_ms;
  ac_watch watch;
  int64_t slice_end_us; /* nonzero while a slice runs: its timer may end it */
  int no_block;         /* this slice runs where blocking is not allowed */
  ac_vm_yield engine_yield; /* set just before the engine's own yields */
  int blocked_inline;   /* a blocking point could not move to a worker */
  int wait_allowed;     /* the executor parks calls (ac_vm_allow_wait) */
  int slice_overran;    /* the last slice ran far past its end */
  ac_vm_body setup, collect; /* of the open resumable call */
  void *setup_ud, *collect_ud;
};

const char *ac_outcome_kind_name(ac_outcome_kind kind) {
  static const char *const names[] = {"ok",       "error", "timeout", "memory",
                                      "contract", "retry", "busy"};
  return kind <= AC_OUTCOME_BUSY ? names[kind] : "error";
}

/* ---- allocator -------------------------------------------------------- */

/* Every byte of the state goes through here, so the cap is exact. Growth
 * past the cap fails (Lua raises "not enough memory") and arms the hook so
 * a plugin that catches the error with pcall is still stopped. */
#define STUCK_IN_C_MS 200 /* past the deadline: the call is inside C */

/* The class of a small size (1 to SMALL_MAX): its blocks hold
 * (class + 1) * SMALL_STEP bytes. */
static size_t small_class(size_t size) { return (size - 1) / SMALL_STEP; }

static void *small_take(ac_vm *vm, size_t size) {
  size_t k = small_class(size);
  small_block *b = vm->small[k];
  if (!b)
    return malloc((k + 1) * SMALL_STEP);
  vm->small[k] = b->next;
  vm->small_cached -= (k + 1) * SMALL_STEP;
  return b;
}

static void small_give(ac_vm *vm, void *p, size_t size) {
  size_t k = small_class(size), bytes = (k + 1) * SMALL_STEP;
  if (vm->small_cached + bytes > SMALL_CACHE_BYTES) {
    free(p);
    return;
  }
  small_block *b = p;
  b->next = vm->small[k];
  vm->small[k] = b;
  vm->small_cached += bytes;
}

static void small_drain(ac_vm *vm) {
  for (size_t k = 0; k < SMALL_CLASSES; k++)
    while (vm->small[k]) {
      small_block *b = vm->small[k];
      vm->small[k] = b->next;
      free(b);
    }
  vm->small_cached = 0;
}

/* Lua passes the size it asked for when it frees or resizes a block, so
 * small blocks (from their class) and others (from malloc) are told
 * apart by that size alone. */
static void release(ac_vm *vm, void *p, size_t size) {
  if (size <= SMALL_MAX)
    small_give(vm, p, size);
  else
    free(p);
}

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  ac_vm *vm = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    if (ptr)
      release(vm, ptr, osize);
    vm->used -= old;
    return NULL;
  }
  /* well past the deadline, signalled, and still allocating: the thread is
   * inside C where no hook fires (the hook would have stopped Lua code
   * within microseconds). No growth, so Lua raises and unwinds; the
   * outcome stays a timeout. */
  if (nsize > old && vm->in_call && ac_watchdog_deadline_signalled() &&
      ac_clock_mono_ms() >= vm->deadline_ms + STUCK_IN_C_MS) {
    vm->timed_out = 1;
    return NULL;
  }
  if (nsize > old && nsize - old > vm->cfg.memory_limit - vm->used) {
    if (vm->in_call && !vm->memory_exceeded) {
      vm->memory_exceeded = 1;
      ac_watchdog_arm(ac_watchdog_running());
    }
    return NULL;
  }
  void *p;
  if (ptr && old > SMALL_MAX && nsize > SMALL_MAX) {
    p = realloc(ptr, nsize);
  } else if (ptr && old <= SMALL_MAX && nsize <= SMALL_MAX &&
             small_class(old) == small_class(nsize)) {
    p = ptr; /* the block already has the room */
  } else {
    p = nsize <= SMALL_MAX ? small_take(vm, nsize) : malloc(nsize);
    if (p && ptr) {
      memcpy(p, ptr, old < nsize ? old : nsize);
      release(vm, ptr, old);
    }
  }
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
  if (vm->slice_end_us && ac_watchdog_slice_fired()) {
    /* the slice is used up: give the thread back, to be continued on a
     * worker. Where Lua cannot yield (inside a C call such as a sort
     * comparator) look again shortly. */
    if (lua_isyieldable(L)) {
      lua_sethook(L, NULL, 0, 0);
      vm->slice_end_us = 0;
      vm->engine_yield = AC_VM_YIELD_SLICE;
      lua_yield(L, 0);
      return;
    }
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1000);
    return;
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
    small_drain(vm);
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
  small_drain(vm);
  free(vm);
}

lua_State *ac_vm_state(ac_vm *vm) { return vm->L; }

void ac_vm_set_plugin_id(ac_vm *vm, const char *id) {
  snprintf(vm->plugin_id, sizeof vm->plugin_id, "%s", id);
}
const ac_vm_config *ac_vm_config_of(const ac_vm *vm) { return &vm->cfg; }
int ac_vm_usable(const ac_vm *vm) { return !vm->broken; }
size_t ac_vm_memory_used(const ac_vm *vm) { return vm->used + vm->small_cached; }

int ac_vm_charge_outside(lua_State *L, size_t bytes) {
  ac_vm *vm = ac_vm_of(L);
  if (bytes <= vm->cfg.memory_limit - vm->used)
    return 0;
  if (vm->in_call && !vm->memory_exceeded) {
    vm->memory_exceeded = 1;
    ac_watchdog_arm(ac_watchdog_running());
  }
  return -1;
}

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

/* A typed failure is only that if its own error value ends the call: a
 * plugin that catches it with pcall and then fails otherwise gets a plain
 * error. The value is kept in the registry for the comparison, which is
 * made only when this call raised one (its flag is set), so a value left
 * from an earlier call is never compared. */
#define TYPED_ERROR_KEY "ac.typed_error"

static int raise_typed(lua_State *L) {
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, TYPED_ERROR_KEY);
  return lua_error(L);
}

static int ends_with_typed_error(lua_State *from) {
  lua_getfield(from, LUA_REGISTRYINDEX, TYPED_ERROR_KEY);
  int same = !lua_isnil(from, -1) && lua_rawequal(from, -1, -2);
  lua_pop(from, 1);
  return same;
}

int ac_vm_raise_contract(lua_State *L, const char *fmt, ...) {
  ac_vm_of(L)->contract_failed = 1;
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return raise_typed(L);
}

int ac_vm_raise_retry(lua_State *L, const char *message, int delay_s) {
  ac_vm *vm = ac_vm_of(L);
  vm->retry_requested = 1;
  vm->retry_delay_s = delay_s;
  luaL_where(L, 1);
  lua_pushstring(L, message);
  lua_concat(L, 2);
  return raise_typed(L);
}

/* ---- logging from plugins -------------------------------------------- */

/* The call's log is full: one line says so, nothing more is written. */
static void truncate_log(ac_vm *vm) {
  vm->log_truncated = 1;
  json_t *f = json_pack("{s:s, s:s?}", "plugin", vm->plugin_id, "namespace", vm->ns);
  ac_log(vm->cfg.log, AC_LOG_WARN, "log truncated", f);
}

int ac_vm_log_full(lua_State *L) { return ac_vm_of(L)->log_truncated; }

void ac_vm_log(lua_State *L, ac_log_level level, const char *msg, size_t len, json_t *fields) {
  ac_vm *vm = ac_vm_of(L);
  if (vm->log_truncated || !ac_log_enabled(vm->cfg.log, level)) {
    json_decref(fields);
    return;
  }
  /* the cap counts each line as written (escaping, fields, the engine's
   * members); a line that would cross it is not written */
  if (vm->logged_bytes + len + 128 > AC_LOG_CALL_LIMIT) {
    json_decref(fields);
    truncate_log(vm);
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
  size_t written = 0;
  int rc = ac_log_within(vm->cfg.log, level, m ? json_string_value(m) : "(message is not valid UTF-8)",
                         fields, AC_LOG_CALL_LIMIT - vm->logged_bytes, &written);
  json_decref(m);
  vm->logged_bytes += written;
  if (rc != 0)
    truncate_log(vm);
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

/* Opens a call: fresh deadline, limits and flags. */
static void call_enter(ac_vm *vm, const char *ns, int64_t deadline_ms) {
  vm->started_ms = ac_clock_mono_ms();
  vm->in_call = 1;
  vm->call_serial++;
  vm->deadline_ms = deadline_ms;
  vm->timed_out = vm->memory_exceeded = vm->contract_failed = vm->retry_requested = 0;
  vm->retry_delay_s = -1;
  vm->ns = ns;
  vm->logged_bytes = 0;
  vm->log_truncated = 0;
  vm->engine_yield = AC_VM_YIELD_NONE;
  vm->blocked_inline = 0;
}

/* Fills out from how the call ended (status, error value on from's top)
 * and closes it. */
static void call_leave(ac_vm *vm, int status, lua_State *from, ac_outcome *out) {
  memset(out, 0, sizeof *out);
  out->retry_delay_s = -1;
  out->duration_ms = ac_clock_mono_ms() - vm->started_ms;
  if (vm->memory_exceeded) {
    out->kind = AC_OUTCOME_MEMORY;
    snprintf(out->message, sizeof out->message, "memory limit of %d MB exceeded",
             (int)(vm->cfg.memory_limit >> 20));
  } else if (vm->timed_out) {
    out->kind = AC_OUTCOME_TIMEOUT;
    snprintf(out->message, sizeof out->message, "timeout: call exceeded %d ms", vm->cfg.timeout_ms);
  } else if (status != LUA_OK) {
    describe_error(from, status, out->message, sizeof out->message);
    int typed = (vm->contract_failed || vm->retry_requested) && ends_with_typed_error(from);
    if (vm->contract_failed && typed)
      out->kind = AC_OUTCOME_CONTRACT;
    else if (status == LUA_ERRMEM)
      out->kind = AC_OUTCOME_MEMORY;
    else if (vm->retry_requested && typed) {
      out->kind = AC_OUTCOME_RETRY;
      out->retry_delay_s = vm->retry_delay_s;
    } else
      out->kind = AC_OUTCOME_ERROR;
  }
  /* Lua errors may hold any bytes, and the cut may split a character */
  ac_utf8_repair(out->message, strlen(out->message));
  if (out->kind == AC_OUTCOME_TIMEOUT || out->kind == AC_OUTCOME_MEMORY)
    vm->broken = 1;
  vm->in_call = 0;
  vm->ns = NULL;
  vm->call_data = NULL;
  vm->co_started = 0;
}

static int refuse_broken(ac_vm *vm, ac_outcome *out) {
  if (!vm->broken)
    return 0;
  memset(out, 0, sizeof *out);
  out->retry_delay_s = -1;
  out->kind = AC_OUTCOME_ERROR;
  snprintf(out->message, sizeof out->message, "internal: state must be rebuilt before reuse");
  return 1;
}

void ac_vm_run(ac_vm *vm, const char *ns, ac_vm_body body, void *ud, ac_outcome *out) {
  if (refuse_broken(vm, out))
    return;
  lua_State *L = vm->L;
  call_enter(vm, ns, ac_clock_mono_ms() + vm->cfg.timeout_ms);
  struct run_args args = {body, ud};
  int top = lua_gettop(L);
  ac_watchdog_begin(&vm->watch, L, vm->deadline_ms);
  lua_pushcfunction(L, run_body);
  lua_pushlightuserdata(L, &args);
  int status = lua_pcall(L, 1, 0, 0);
  ac_watchdog_end(&vm->watch);
  lua_sethook(L, NULL, 0, 0);
  call_leave(vm, status, L, out);
  lua_settop(L, top);
}

/* ---- resumable calls -------------------------------------------------- */

/* The call's coroutine: made once per state and reused, so a call costs
 * no thread allocation. */
static lua_State *call_thread(ac_vm *vm) {
  if (!vm->co) {
    vm->co = lua_newthread(vm->L);
    vm->co_ref = luaL_ref(vm->L, LUA_REGISTRYINDEX);
  }
  return vm->co;
}

static int make_thread(lua_State *L) {
  call_thread(ac_vm_of(L));
  return 0;
}

/* The call's coroutine body: setup leaves the function and its arguments,
 * the hook runs (yieldable, through lua_callk), and collect reads its
 * results, all on the coroutine: no extra protected call per step. */
static int call_body_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  ac_vm *vm = ac_vm_of(L);
  vm->collect(L, vm->collect_ud);
  return 0;
}

static int call_body(lua_State *L) {
  ac_vm *vm = ac_vm_of(L);
  lua_settop(L, 0);
  vm->setup(L, vm->setup_ud);
  vm->setup = NULL; /* its ud lives only as long as the first resume */
  lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, call_body_k);
  return call_body_k(L, LUA_OK, 0);
}

int ac_vm_call_start(ac_vm *vm, const char *ns, int64_t deadline_ms, ac_vm_body setup, void *ud,
                     ac_outcome *out) {
  if (refuse_broken(vm, out))
    return AC_ERR_INVALID;
  lua_State *L = vm->L;
  call_enter(vm, ns, deadline_ms);
  if (!vm->co) {
    lua_pushcfunction(L, make_thread);
    int status = lua_pcall(L, 0, 0, 0);
    if (status != LUA_OK) {
      call_leave(vm, status, L, out);
      lua_settop(L, 0);
      return AC_ERR_NOMEM;
    }
  }
  lua_settop(vm->co, 0);
  lua_pushcfunction(vm->co, call_body); /* a thread always has room for one */
  vm->setup = setup;
  vm->setup_ud = ud;
  vm->co_nargs = 0;
  vm->co_started = 0;
  return AC_OK;
}

ac_vm_step ac_vm_call_resume(ac_vm *vm, int64_t slice_us, ac_vm_body collect, void *ud,
                             ac_outcome *out) {
  lua_State *co = vm->co;
  vm->collect = collect;
  vm->collect_ud = ud;
  int nargs = vm->co_started ? 0 : vm->co_nargs;
  vm->co_started = 1;
  vm->engine_yield = AC_VM_YIELD_NONE;
  vm->no_block = slice_us > 0;
  vm->slice_end_us = 0;
  if (slice_us > 0) {
    vm->slice_end_us = ac_clock_mono_us() + slice_us;
    if (!ac_watchdog_slice_shared())
      ac_watchdog_slice_arm(slice_us);
  }
  int nres = 0;
  ac_watchdog_begin(&vm->watch, co, vm->deadline_ms);
  int status = lua_resume(co, NULL, nargs, &nres);
  ac_watchdog_end(&vm->watch);
  vm->slice_overran = 0;
  /* the slice timer is left to run out: the next slice re-arms it, and a
   * late firing finds no slice to cut (one system call per slice, not two) */
  if (slice_us > 0)
    vm->slice_overran = ac_watchdog_slice_overran();
  vm->slice_end_us = 0;
  vm->no_block = 0;
  lua_sethook(co, NULL, 0, 0);
  if (status == LUA_YIELD && vm->engine_yield != AC_VM_YIELD_NONE && !vm->timed_out &&
      !vm->memory_exceeded) {
    lua_pop(co, nres);
    return vm->engine_yield == AC_VM_YIELD_SLICE   ? AC_VM_STEP_SLICE
           : vm->engine_yield == AC_VM_YIELD_WAIT ? AC_VM_STEP_WAIT
                                                   : AC_VM_STEP_BLOCK;
  }
  if (status == LUA_YIELD) {
    /* a yield of the plugin's own outside any coroutine of its own */
    lua_settop(co, 0);
    lua_pushliteral(co, "attempt to yield from outside a coroutine");
    status = LUA_ERRRUN;
  }
  if (status != LUA_OK) {
    /* lua_resume leaves the failed coroutine as it stood: close its
     * pending to-be-closed variables now, under the call's deadline (their
     * __close may loop), which also makes the coroutine reusable; the
     * error value ends up on its top */
    ac_watchdog_begin(&vm->watch, co, vm->deadline_ms);
    status = lua_resetthread(co);
    ac_watchdog_end(&vm->watch);
    lua_sethook(co, NULL, 0, 0);
    if (status == LUA_OK) { /* cannot happen for a failed thread; be safe */
      lua_pushliteral(co, "the call failed");
      status = LUA_ERRRUN;
    }
  }
  call_leave(vm, status, co, out);
  lua_settop(co, 0);
  return AC_VM_STEP_DONE;
}

void ac_vm_call_abort(ac_vm *vm, ac_outcome_kind kind, const char *message, ac_outcome *out) {
  call_leave(vm, LUA_OK, vm->L, out);
  out->kind = kind;
  snprintf(out->message, sizeof out->message, "%s", message);
  vm->broken = 1; /* the coroutine stopped half-way: never reuse it */
}

int ac_vm_engine_yield_pending(lua_State *L) {
  return ac_vm_of(L)->engine_yield != AC_VM_YIELD_NONE;
}

void ac_vm_cancel_engine_yield(lua_State *L) {
  ac_vm *vm = ac_vm_of(L);
  if (vm->engine_yield == AC_VM_YIELD_BLOCK || (vm->engine_yield == AC_VM_YIELD_WAIT && vm->no_block))
    vm->blocked_inline = 1;
  vm->engine_yield = AC_VM_YIELD_NONE;
}

int ac_vm_is_call_root(lua_State *L) { return L == ac_vm_of(L)->co; }

int ac_vm_block_point(lua_State *L, lua_KFunction k, lua_KContext ctx) {
  ac_vm *vm = ac_vm_of(L);
  if (vm->no_block && vm->in_call) {
    if (lua_isyieldable(L)) {
      vm->engine_yield = AC_VM_YIELD_BLOCK;
      return lua_yieldk(L, 0, ctx, k);
    }
    vm->blocked_inline = 1;
  }
  return k(L, LUA_OK, ctx);
}

int ac_vm_blocked_inline(const ac_vm *vm) { return vm->blocked_inline || vm->slice_overran; }

void ac_vm_allow_wait(ac_vm *vm, int on) { vm->wait_allowed = on; }

int ac_vm_can_wait(lua_State *L) {
  ac_vm *vm = ac_vm_of(L);
  return vm->wait_allowed && vm->in_call && lua_isyieldable(L);
}

int ac_vm_wait(lua_State *L, lua_KFunction k, lua_KContext ctx) {
  ac_vm_of(L)->engine_yield = AC_VM_YIELD_WAIT;
  return lua_yieldk(L, 0, ctx, k);
}
