/* config_cache.h — each namespace's enabled plugins and configs, cached in
 * memory. Entries are dropped when a config is written (here or, through
 * NOTIFY, in another instance) and in any case re-read after a short
 * freshness window, so every instance uses a new config within a second.
 * A lookup costs one hash lookup whatever the number of namespaces. */
#ifndef AC_DISPATCH_CONFIG_CACHE_H
#define AC_DISPATCH_CONFIG_CACHE_H

#include "core/err.h"

#include <jansson.h>
#include <libpq-fe.h>

typedef struct ac_config_cache ac_config_cache;

/* fresh_ms: how long an entry is trusted without a notification. */
ac_config_cache *ac_config_cache_new(int fresh_ms);
void ac_config_cache_free(ac_config_cache *c);

/* The namespace's snapshot (see ac_store_ns_snapshot), from the cache when
 * fresh, else read with db. *snapshot: a new reference (caller decrefs). */
int ac_config_cache_get(ac_config_cache *c, PGconn *db, const char *ns, json_t **snapshot,
                        ac_err *err);

/* Drops one namespace's entry, or every entry when ns is NULL. */
void ac_config_cache_invalidate(ac_config_cache *c, const char *ns);

#endif
