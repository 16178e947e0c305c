/* registry.h — every plugin the engine knows: the built-in directory and the
 * custom ones, their current good versions, load errors, and a pool of
 * ready states per version. Thread-safe. */
#ifndef AC_PLUGIN_REGISTRY_H
#define AC_PLUGIN_REGISTRY_H

#include "core/err.h"
#include "plugin/plugin.h"

#include <jansson.h>
#include <stdint.h>

typedef struct ac_registry ac_registry;

/* One loaded version of a plugin, shared by reference: calls in flight keep
 * the version they started with after a reload replaces it. */
typedef struct ac_plugin_handle ac_plugin_handle;

typedef struct ac_registry_config {
  const char *builtin_dir;  /* always loaded first; its ids win */
  const char *custom_dirs;  /* colon-separated, may be NULL or "" */
  ac_plugin_limits limits;  /* for every state of every plugin */
  int max_idle_states;      /* idle states kept in all (default 4096) */
  size_t idle_budget_bytes; /* memory of all idle states (default 512 MiB) */
} ac_registry_config;

/* Creates an empty registry (call ac_registry_reload to load). Strings in
 * cfg are copied. Caller frees. */
int ac_registry_new(const ac_registry_config *cfg, ac_registry **out, ac_err *err);
void ac_registry_free(ac_registry *r);

/* Re-reads every plugin directory: new files load, changed files load into
 * a fresh state and replace their version only if they pass the contract
 * (otherwise the last good version keeps serving and the entry shows the
 * error), deleted files disappear. Unchanged files (same inode, size and
 * modification time) are not reloaded. Returns how many entries changed. */
int ac_registry_reload(ac_registry *r);

/* Generation counter, bumped by every reload that changed something. */
uint64_t ac_registry_generation(ac_registry *r);

/* The catalog as GET /api/v1/plugins lists it: an array of
 * {"id","name","category","version","capabilities","configSchema","tools",
 * "source","status","error","loadedAt"}. Caller decrefs. */
json_t *ac_registry_catalog(ac_registry *r);

/* 1 once a reload has run and the built-in directory loaded cleanly. */
int ac_registry_ready(ac_registry *r);

/* A handle for plugin p, loaded from a file outside the registry's
 * directories (`agentcore plugin run`): not in the catalog, not reloaded,
 * but with the registry's state pool. Takes p; release the handle before
 * the registry is freed. NULL when out of memory (p is then the caller's). */
ac_plugin_handle *ac_registry_adopt(ac_registry *r, ac_plugin *p);

/* The current good version of plugin id, referenced (release it), or NULL
 * when no such plugin has a good version. */
ac_plugin_handle *ac_registry_acquire(ac_registry *r, const char *id);
void ac_plugin_handle_release(ac_plugin_handle *h);

void ac_plugin_handle_ref(ac_plugin_handle *h);

const ac_plugin_info *ac_plugin_handle_info(const ac_plugin_handle *h);

/* A state of this version for namespace ns: an idle one that served ns
 * before, or a new one built from the source (NULL with out filled when
 * that fails). States never move between namespaces. */
ac_vm *ac_plugin_handle_take_state(ac_plugin_handle *h, const char *ns, ac_outcome *out);

/* Only an idle state that served ns before; NULL when there is none (a new
 * state runs the file's top level: work for a worker, not a request
 * thread). */
ac_vm *ac_plugin_handle_idle_state(ac_plugin_handle *h, const char *ns);

/* Gives a state back after a call for ns: kept idle if still usable, most
 * recently used first; the registry's least recently used idle states are
 * closed when the total count or memory passes its budget. */
void ac_plugin_handle_give_state(ac_plugin_handle *h, const char *ns, ac_vm *vm);

/* Idle states in all and the bytes they hold. */
void ac_registry_idle_stats(ac_registry *r, int *count, size_t *bytes);

/* Whether calls of this version may start on a request thread: only once
 * a number of its calls ended cleanly, and never again after one timed
 * out, ran out of memory or could not leave a request thread (stuck in a
 * C call). note_outcome tells how a call ended. */
int ac_plugin_handle_inline_ok(const ac_plugin_handle *h);
void ac_plugin_handle_no_inline(ac_plugin_handle *h);
void ac_plugin_handle_note_outcome(ac_plugin_handle *h, ac_outcome_kind kind);

/* Calls of this version that were abandoned stuck in C and still run. */
int ac_plugin_handle_stuck(const ac_plugin_handle *h);
void ac_plugin_handle_add_stuck(ac_plugin_handle *h, int delta);

/* A number that changes whenever the plugin's code is replaced. */
uint64_t ac_plugin_handle_serial(const ac_plugin_handle *h);

#endif
