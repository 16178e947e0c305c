/* export.c — the schema as the catalog shows it, with its dialect named. */
#include "schema/schema_int.h"

json_t *ac_schema_export(const ac_schema *s) {
  if (!s)
    return NULL;
  /* "$schema" first, so a reader sees the dialect before the keywords. */
  json_t *out = json_object();
  if (!out || json_object_set_new(out, "$schema", json_string(AC_SCHEMA_DIALECT)))
    goto fail;
  if (json_is_object(s->json)) {
    if (json_object_update(out, s->json) ||
        json_object_set_new(out, "$schema", json_string(AC_SCHEMA_DIALECT)))
      goto fail;
    /* update() borrowed the members; the export must not share them. */
    json_t *copy = json_deep_copy(out);
    json_decref(out);
    return copy;
  }
  /* A boolean schema has no room for "$schema": true becomes {} and false
   * becomes {"not": {}}, which mean the same. */
  if (json_is_false(s->json) && json_object_set_new(out, "not", json_object()))
    goto fail;
  return out;
fail:
  json_decref(out);
  return NULL;
}
