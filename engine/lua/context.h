/* context.h — the `context` table a hook receives (docs/plugin-authoring.md) and the
 * services behind it. */
#ifndef AC_LUA_CONTEXT_H
#define AC_LUA_CONTEXT_H

#include "core/kv.h"
#include "core/log.h"
#include "outbound/http_client.h"

#include <jansson.h>
#include <lua.h>
#include <stdint.h>

/* Everything a call's context is made of. Borrowed for the call. */
typedef struct ac_call_context {
  const char *namespace_id;
  const char *department_id; /* may be NULL */
  const char *plugin_id;
  const json_t *config;      /* validated, defaults applied, secrets in clear */
  const json_t *secrets;     /* array of secret strings to redact from logs, or NULL */
  ac_kv *kv;                 /* context.db storage (NULL: db calls fail) */
  ac_http_client *http;      /* context.http: the call's client, which must
                                not be used by another call meanwhile (NULL:
                                taken through http_take on first use, or
                                context.http answers nil, "transport: HTTP is
                                not available here") */
  ac_http_client *(*http_take)(void *ud); /* optional: provides http lazily
                                (and stores it in this context) */
  void *http_ud;
  int allow_retry;           /* event hooks only */
  uint64_t config_serial;    /* nonzero: names this config for good, so calls
                                on one state with the same serial share one
                                context table (built once); 0: built per call */
} ac_call_context;

/* Pushes the read-only context table for the running call: built once
 * per state and config_serial, fresh per call when the serial is 0. Its
 * functions act on whatever call is running, so a table kept from an
 * earlier call (same state: same namespace and plugin) acts on the current
 * one. The call's ac_call_context must be attached with
 * ac_vm_set_call_data. */
void ac_context_push(lua_State *L);

/* Writes a plugin's log line (print, context.log) with the call's secrets
 * replaced by "********" in the message and in every string of fields
 * (stolen). */
void ac_context_log(lua_State *L, ac_log_level level, const char *msg, size_t len, json_t *fields);

/* The context of the running call, for a function made by
 * ac_context_set_fn. Raises when no call is running. */
const ac_call_context *ac_context_current(lua_State *L);

/* Sets t[name] = fn for the table on the stack top. May raise (memory). */
void ac_context_set_fn(lua_State *L, const char *name, lua_CFunction fn);

/* Adds context.http and context.crypto to the context table on the stack
 * top (context_services.c). May raise (memory). */
void ac_context_add_services(lua_State *L, const ac_call_context *ctx);

#endif
