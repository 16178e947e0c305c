/* context.h — the `context` table a hook receives (SPEC §4) and the
 * services behind it. */
#ifndef AC_LUA_CONTEXT_H
#define AC_LUA_CONTEXT_H

#include "core/kv.h"
#include "core/log.h"

#include <jansson.h>
#include <lua.h>

/* Outbound HTTP for context.http: implemented by the outbound layer and
 * handed in by whoever runs the call (NULL: context.http answers
 * nil, "transport: HTTP is not available here"). */
typedef struct ac_http_port ac_http_port;

/* Everything a call's context is made of. Borrowed for the call. */
typedef struct ac_call_context {
  const char *namespace_id;
  const char *department_id; /* may be NULL */
  const char *plugin_id;
  const json_t *config;      /* validated, defaults applied, secrets in clear */
  const json_t *secrets;     /* array of secret strings to redact from logs, or NULL */
  ac_kv *kv;                 /* context.db storage (NULL: db calls fail) */
  ac_http_port *http;        /* context.http (may be NULL) */
  int allow_retry;           /* event hooks only */
} ac_call_context;

/* Pushes a fresh read-only context table for the running call. The call's
 * ac_call_context must be attached with ac_vm_set_call_data. */
void ac_context_push(lua_State *L);

/* Writes a plugin's log line (print, context.log) with the call's secrets
 * replaced by "********" in the message and in every string of fields
 * (stolen). */
void ac_context_log(lua_State *L, ac_log_level level, const char *msg, size_t len, json_t *fields);

#endif
