/* TEMPORARY weak stand-ins until the schema module lands. */
#include "schema/schema.h"
#include <stdlib.h>
struct ac_schema { json_t *j; };
__attribute__((weak)) int ac_schema_from_lua(lua_State *L, int idx, json_t **out, ac_err *err) { (void)L; (void)idx; (void)err; *out = json_object(); return 0; }
__attribute__((weak)) int ac_schema_compile(const json_t *schema, ac_schema **out, ac_err *err) { (void)err; *out = calloc(1, sizeof **out); (*out)->j = json_deep_copy(schema); return 0; }
__attribute__((weak)) void ac_schema_free(ac_schema *s) { if (s) { json_decref(s->j); free(s);} }
__attribute__((weak)) int ac_schema_validate(const ac_schema *s, const json_t *i, json_t **e) { (void)s; (void)i; if (e) *e = json_array(); return 0; }
__attribute__((weak)) int ac_schema_apply_defaults(const ac_schema *s, json_t *i) { (void)s; (void)i; return 0; }
__attribute__((weak)) json_t *ac_schema_mask_secrets(const ac_schema *s, const json_t *i) { (void)s; return json_deep_copy(i); }
__attribute__((weak)) json_t *ac_schema_export(const ac_schema *s) { return json_deep_copy(s->j); }
