/* json_patch.c — RFC 7396 section 2, MergePatch(Target, Patch). */
#include "core/json_patch.h"

json_t *ac_json_merge_patch(const json_t *target, const json_t *patch) {
  if (!json_is_object(patch))
    return json_deep_copy(patch);
  json_t *result = json_is_object(target) ? json_deep_copy(target) : json_object();
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)patch, key, value) {
    if (json_is_null(value)) {
      json_object_del(result, key);
    } else {
      json_t *merged = ac_json_merge_patch(json_object_get(result, key), value);
      json_object_set_new(result, key, merged);
    }
  }
  return result;
}
