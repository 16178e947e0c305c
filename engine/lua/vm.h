/* vm.h — one sandboxed lua_State with its memory cap, deadline and typed
 * call outcomes. Everything that runs plugin code goes through ac_vm_run. */
#ifndef AC_LUA_VM_H
#define AC_LUA_VM_H

#include "core/err.h"
#include "core/log.h"

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define AC_OUTCOME_MSG_MAX 1024    /* longer messages are cut with "..." */
#define AC_LOG_CALL_LIMIT (1 << 20) /* bytes one call may log */

typedef enum ac_outcome_kind {
  AC_OUTCOME_OK = 0,
  AC_OUTCOME_ERROR,
  AC_OUTCOME_TIMEOUT,
  AC_OUTCOME_MEMORY,
  AC_OUTCOME_CONTRACT,
  AC_OUTCOME_RETRY,
  AC_OUTCOME_BUSY /* refused by a bulkhead before it ran to its end */
} ac_outcome_kind;

/* What a call produced besides its value: the kind, a message for every
 * kind but ok, how long it took, and the delay asked for by retry. */
typedef struct ac_outcome {
  ac_outcome_kind kind;
  char message[AC_OUTCOME_MSG_MAX];
  int64_t duration_ms;
  int retry_delay_s; /* -1: the dispatcher's schedule decides */
} ac_outcome;

/* "ok", "error", "timeout", "memory", "contract", "retry", "busy". */
const char *ac_outcome_kind_name(ac_outcome_kind kind);

typedef struct ac_vm_config {
  int timeout_ms;         /* per call */
  size_t memory_limit;    /* bytes for the whole state */
  ac_logger *log;         /* where print and context.log go (borrowed) */
  const char *plugin_id;  /* attached to log lines; copied */
} ac_vm_config;

typedef struct ac_vm ac_vm;

/* Creates a sandboxed state (sandbox.c decides its globals). Fails only
 * when memory runs out. *out: caller frees with ac_vm_free. */
int ac_vm_new(const ac_vm_config *cfg, ac_vm **out, ac_err *err);
void ac_vm_free(ac_vm *vm);

lua_State *ac_vm_state(ac_vm *vm);

/* Names the plugin in the state's log lines (known only after loading). */
void ac_vm_set_plugin_id(ac_vm *vm, const char *id);
const ac_vm_config *ac_vm_config_of(const ac_vm *vm);

/* The vm that owns L (any of its coroutines). */
ac_vm *ac_vm_of(lua_State *L);

/* Code run inside a call: may use the Lua API freely and raise errors; it
 * runs under the deadline and memory cap. Returns nothing; results go
 * through ud. */
typedef void (*ac_vm_body)(lua_State *L, void *ud);

/* Runs body under a fresh deadline (cfg.timeout_ms from now) with the hook
 * armed by the watchdog at the deadline, and fills out. `ns` names the
 * namespace for log lines (may be NULL). After a timeout or memory outcome
 * the vm is no longer usable (ac_vm_usable returns 0): rebuild it. */
void ac_vm_run(ac_vm *vm, const char *ns, ac_vm_body body, void *ud, ac_outcome *out);

/* ---- resumable calls ----
 * A call that can give its thread back and go on elsewhere: it runs on a
 * coroutine of the state, so a request thread can start it under a small
 * time slice and a worker can finish it. Only one call is open per state;
 * between slices the state belongs to whoever holds the call. */

typedef enum ac_vm_yield {
  AC_VM_YIELD_NONE = 0,
  AC_VM_YIELD_SLICE, /* the time slice ran out */
  AC_VM_YIELD_BLOCK, /* a binding is about to wait (network, database) */
  AC_VM_YIELD_WAIT   /* a binding started work elsewhere and waits for it */
} ac_vm_yield;

typedef enum ac_vm_step {
  AC_VM_STEP_DONE = 0, /* the call ended: the outcome is filled */
  AC_VM_STEP_SLICE,    /* the slice ran out: resume it later */
  AC_VM_STEP_BLOCK,    /* it must wait: resume it where blocking is fine */
  AC_VM_STEP_WAIT      /* it waits for work elsewhere: resume it once done */
} ac_vm_step;

/* Opens a call with the given monotonic deadline. On the first resume,
 * on the call's coroutine, setup(ud) leaves the function to call and its
 * arguments on the stack (ud must stay valid through that resume); any
 * error it raises ends the call like the hook's own. Returns AC_OK when the
 * call is ready for ac_vm_call_resume; any other code means it ended at
 * once (the state is broken or out of memory) and out says how. */
int ac_vm_call_start(ac_vm *vm, const char *ns, int64_t deadline_ms, ac_vm_body setup, void *ud,
                     ac_outcome *out);

/* Runs the open call on this thread. With slice_us > 0 it yields once the
 * slice is used up (AC_VM_STEP_SLICE) or before anything blocks
 * (AC_VM_STEP_BLOCK); with 0 it runs to the end or to a wait. When the hook
 * returns, collect(ud) runs on the coroutine with the hook's results as its
 * whole stack, and out is filled. */
ac_vm_step ac_vm_call_resume(ac_vm *vm, int64_t slice_us, ac_vm_body collect, void *ud,
                             ac_outcome *out);

/* Ends an open, parked call without running it further (its deadline
 * passed while it waited for a worker, or the engine stops); the state is
 * marked for rebuilding. */
void ac_vm_call_abort(ac_vm *vm, ac_outcome_kind kind, const char *message, ac_outcome *out);

/* For bindings that are about to block: where the running slice must not
 * block, the call yields and k runs when it is resumed on a worker;
 * elsewhere k runs at once. Use as `return ac_vm_block_point(L, k, ctx);`. */
int ac_vm_block_point(lua_State *L, lua_KFunction k, lua_KContext ctx);

/* Whether the state's calls are run by an executor that can park them
 * while work goes on elsewhere (AC_VM_STEP_WAIT). Off by default. */
void ac_vm_allow_wait(ac_vm *vm, int on);

/* For bindings that can hand their work to someone else (an HTTP transfer
 * to the event loop): 1 when the running call may park here. */
int ac_vm_can_wait(lua_State *L);

/* Parks the call (AC_VM_STEP_WAIT); k runs when it is resumed. Use as
 * `return ac_vm_wait(L, k, ctx);` after ac_vm_can_wait. Where the yield
 * cannot travel up (a C call in between), k runs at once. */
int ac_vm_wait(lua_State *L, lua_KFunction k, lua_KContext ctx);

/* For the sandbox's coroutine functions: an engine yield raised inside a
 * plugin's coroutine must travel up to the call's own coroutine. */
int ac_vm_engine_yield_pending(lua_State *L);
void ac_vm_cancel_engine_yield(lua_State *L);

/* 1 when L is the call's own coroutine (the plugin's top level). */
int ac_vm_is_call_root(lua_State *L);

/* 1 when the last call blocked on a thread that should not block (the
 * wait could not move to a worker), or a slice of it ran far past its end
 * without giving the thread back (stuck in a C function). */
int ac_vm_blocked_inline(const ac_vm *vm);

/* 1 while the state may run more calls. */
int ac_vm_usable(const ac_vm *vm);

/* Milliseconds left in the running call (0 when past; -1 outside calls). */
int64_t ac_vm_time_left_ms(lua_State *L);

/* Monotonic deadline of the running call. */
int64_t ac_vm_deadline_ms(lua_State *L);

/* Raises the call's timeout error if its deadline has passed. For C code
 * that loops (pattern matching, waits) to check in. */
void ac_vm_checkpoint(lua_State *L);

/* 1 once the running call has timed out or hit the memory cap: plugin
 * code must not be started any more (an error raised from the hook runs
 * message handlers with hooks off). */
int ac_vm_stopping(lua_State *L);

/* Memory the engine is about to allocate outside the state on the running
 * call's behalf (json.encode's output, a converted result): counted
 * against what the state's cap leaves. 0 when it fits; -1 when it does not,
 * and the call then ends with kind memory as if Lua had hit the cap. */
int ac_vm_charge_outside(lua_State *L, size_t bytes);

/* Raises a contract failure (outcome kind "contract") with a message. */
int ac_vm_raise_contract(lua_State *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records a retry request (context.retry) and raises it. */
int ac_vm_raise_retry(lua_State *L, const char *message, int delay_s);

/* The namespace of the running call (for log lines), or NULL. */
const char *ac_vm_namespace(lua_State *L);

/* Logging from plugin code: counts bytes against AC_LOG_CALL_LIMIT for the
 * running call and, once over, writes one "log truncated" line and drops
 * the rest. fields is stolen. */
void ac_vm_log(lua_State *L, ac_log_level level, const char *msg, size_t len, json_t *fields);
/* 1 when the running call's log is full: later lines are dropped, so
 * callers skip building them. (A level that is off still builds them:
 * a bad argument fails the same way whatever the log level.) */
int ac_vm_log_full(lua_State *L);

/* Data the caller attaches to the next call (set before ac_vm_run; cleared
 * when it returns) and reads back from bindings during it: NULL outside
 * calls. The serial changes with every call, so a binding can tell a
 * context table kept from an earlier call. */
void ac_vm_set_call_data(ac_vm *vm, void *data);
void *ac_vm_call_data(lua_State *L);
uint64_t ac_vm_call_serial(lua_State *L);

/* Bytes the state currently holds (with the small blocks it keeps for
 * reuse). */
size_t ac_vm_memory_used(const ac_vm *vm);

#endif
