/* kv_memory.h — an in-memory context.db store (for `plugin run` and tests). */
#ifndef AC_LUA_KV_MEMORY_H
#define AC_LUA_KV_MEMORY_H

#include "core/kv.h"

/* A thread-safe in-memory ac_kv. Caller frees with ac_kv_free. */
ac_kv *ac_kv_memory_new(void);

#endif
