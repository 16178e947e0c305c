/* json_patch.h — JSON Merge Patch (RFC 7396). */
#ifndef AC_CORE_JSON_PATCH_H
#define AC_CORE_JSON_PATCH_H

#include <jansson.h>

/* Returns a new value: patch applied to target (neither is changed).
 * Caller decrefs. */
json_t *ac_json_merge_patch(const json_t *target, const json_t *patch);

#endif
