/* plugin.h — a plugin file loaded through the sandbox: its contract
 * (docs/plugin-authoring.md) and calls of its hooks. */
#ifndef AC_PLUGIN_PLUGIN_H
#define AC_PLUGIN_PLUGIN_H

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "lua/context.h"
#include "lua/vm.h"
#include "schema/schema.h"

#include <jansson.h>

#define AC_PLUGIN_FILE_MAX (4u << 20) /* bytes of Lua source */

/* Capability bits. */
enum {
  AC_CAP_AGENT_QUERY = 1 << 0,
  AC_CAP_APPROVAL_HOOK = 1 << 1,
  AC_CAP_DOCUMENT_HOOK = 1 << 2,
  AC_CAP_TOOLS = 1 << 3
};

/* What a plugin file declares, read once at load. Immutable afterwards and
 * shared by every state built from the same source. */
typedef struct ac_plugin_info {
  char id[65];
  char *name;
  char *category;
  char *version;          /* NULL when not declared */
  unsigned caps;          /* AC_CAP_* */
  int has_init;
  json_t *capabilities;   /* array of strings as declared */
  json_t *config_schema;  /* the schema as JSON ({"type":"object"} if none) */
  ac_schema *schema;      /* compiled */
  json_t *tools;          /* array ([] if none) */
} ac_plugin_info;

/* Limits and logging shared by every state of a plugin. */
typedef struct ac_plugin_limits {
  int timeout_ms;
  size_t memory_limit;
  ac_logger *log;
} ac_plugin_limits;

/* A plugin's source and contract. States are built from it on demand. */
typedef struct ac_plugin ac_plugin;

/* Reads path (at most AC_PLUGIN_FILE_MAX), runs it in a fresh sandboxed
 * state under the limits and checks the contract. On failure out->kind is
 * not ok and out->message says why (file:line where Lua gives one) and
 * *plugin is NULL. On success *plugin (caller frees) keeps the source and
 * the state it was loaded in. */
void ac_plugin_load(const char *path, const ac_plugin_limits *limits, ac_plugin **plugin,
                    ac_outcome *out);

/* The same from source text (chunkname names it in messages). */
void ac_plugin_load_source(const char *chunkname, const char *src, size_t len,
                           const ac_plugin_limits *limits, ac_plugin **plugin, ac_outcome *out);

void ac_plugin_free(ac_plugin *p);

const ac_plugin_info *ac_plugin_get_info(const ac_plugin *p);
const char *ac_plugin_path(const ac_plugin *p);

/* Builds a new state from the plugin's source (for a pool of states, or to
 * replace one broken by a timeout). Caller frees with ac_vm_free. */
int ac_plugin_new_state(const ac_plugin *p, ac_vm **vm, ac_outcome *out);

/* Takes the state the plugin was loaded in (NULL if already taken). */
ac_vm *ac_plugin_take_state(ac_plugin *p);

/* Hook names accepted by ac_plugin_call. */
#define AC_HOOK_INIT "init"
#define AC_HOOK_APPROVAL "onApprovalCreated"
#define AC_HOOK_DOCUMENT "onDocumentReady"
#define AC_HOOK_QUERY "onAgentQuery"

/* 1 if name is one of the hook names above. */
int ac_plugin_hook_known(const char *name);

/* Calls hook(arg, context) — or init(context) when arg is NULL — in vm
 * under its limits. ctx is borrowed for the call. On ok, *result (caller
 * decrefs, may be NULL) holds the returned value as JSON (an empty table is
 * [] for onAgentQuery). A plugin without the hook fails with kind
 * contract. */
void ac_plugin_call(ac_vm *vm, const char *hook, const json_t *arg, const ac_call_context *ctx,
                    json_t **result, ac_outcome *out);

/* onAgentQuery's results as JSON text (lua/results_text.h), for a caller
 * that writes them into an answer. The caller sets plugin_id and the
 * buffer's limit; when the call ends ok, ready says whether buf holds the
 * results (and *result is NULL) or they came as JSON. */
typedef struct ac_results_text {
  const char *plugin_id;
  ac_buf buf;
  int ready;
} ac_results_text;

/* The same call in steps, for callers that move it between threads: begin
 * opens it with an absolute monotonic deadline and runs its first slice;
 * continue runs the next. Each returns AC_VM_STEP_DONE (result, text and
 * out filled) or the reason it gave the thread back (see
 * ac_vm_call_resume). text (may be NULL) asks for onAgentQuery's results
 * as text. ctx must stay valid until the call is done. */
ac_vm_step ac_plugin_call_begin(ac_vm *vm, const char *hook, const json_t *arg,
                                const ac_call_context *ctx, int64_t deadline_ms, int64_t slice_us,
                                json_t **result, ac_results_text *text, ac_outcome *out);
ac_vm_step ac_plugin_call_continue(ac_vm *vm, const char *hook, int64_t slice_us, json_t **result,
                                   ac_results_text *text, ac_outcome *out);

#endif
