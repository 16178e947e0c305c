/* kv.h — the storage interface behind a plugin's context.db: JSON values
 * scoped to (namespace, plugin), with optional TTL. Implemented in memory
 * (engine/lua/kv_memory.c, for `plugin run`) and on PostgreSQL (engine/db). */
#ifndef AC_CORE_KV_H
#define AC_CORE_KV_H

#include "core/err.h"

#include <stddef.h>

#define AC_KV_KEY_MAX 200          /* bytes */
#define AC_KV_VALUE_MAX (64 * 1024) /* bytes of JSON text */
#define AC_KV_TTL_MAX 315360000    /* seconds: ten years */

typedef struct ac_kv ac_kv;

typedef struct ac_kv_ops {
  /* Looks key up. On success *json_out is the stored JSON text (caller
   * frees) or NULL when absent or expired. */
  int (*get)(ac_kv *kv, const char *ns, const char *plugin, const char *key,
             char **json_out, ac_err *err);
  /* Stores JSON text under key; ttl_s <= 0 means no expiry. */
  int (*set)(ac_kv *kv, const char *ns, const char *plugin, const char *key,
             const char *json, int ttl_s, ac_err *err);
  /* Removes key (absent keys are not an error). */
  int (*del)(ac_kv *kv, const char *ns, const char *plugin, const char *key,
             ac_err *err);
  void (*free)(ac_kv *kv);
} ac_kv_ops;

/* Every implementation starts with this header. */
struct ac_kv {
  const ac_kv_ops *ops;
};

/* Frees through the implementation; NULL is a no-op. */
static inline void ac_kv_free(ac_kv *kv) {
  if (kv)
    kv->ops->free(kv);
}

#endif
