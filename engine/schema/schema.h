/* schema.h — JSON Schema (draft 2020-12 subset of SPEC §5) for plugin
 * configs: conversion from Lua, compilation, validation, defaults, secret
 * masking and export. */
#ifndef AC_SCHEMA_SCHEMA_H
#define AC_SCHEMA_SCHEMA_H

#include "core/err.h"

#include <jansson.h>
#include <lua.h>

typedef struct ac_schema ac_schema;

#define AC_SCHEMA_DIALECT "https://json-schema.org/draft/2020-12/schema"
#define AC_SECRET_MASK "********"

/* Converts the Lua table at stack index idx (a plugin's configSchema) to
 * JSON using raw access only (never runs metamethods). Empty tables become
 * {} or [] according to the keyword they stand under. On failure err names
 * the path, e.g. "configSchema/properties/url: ...". *out: caller frees. */
int ac_schema_from_lua(lua_State *L, int idx, json_t **out, ac_err *err);

/* Checks schema against the supported keyword set and compiles it (regexes,
 * formats). Unsupported keywords fail with AC_ERR_UNSUPPORTED naming the
 * keyword and its path: 'configSchema/properties/url: unsupported keyword
 * "$ref"'. The schema is copied; *out: caller frees with ac_schema_free. */
int ac_schema_compile(const json_t *schema, ac_schema **out, ac_err *err);
void ac_schema_free(ac_schema *s);

/* Validates instance, collecting every error. Returns AC_OK if valid, else
 * AC_ERR_INVALID; if errors != NULL it receives a new JSON array (caller
 * decrefs) of {"path": JSON Pointer, "keyword", "message"} (empty if valid). */
int ac_schema_validate(const ac_schema *s, const json_t *instance, json_t **errors);

/* Fills "default" values (nested objects too) into instance in place. */
int ac_schema_apply_defaults(const ac_schema *s, json_t *instance);

/* A deep copy of instance with every writeOnly value replaced by
 * AC_SECRET_MASK. Caller decrefs. */
json_t *ac_schema_mask_secrets(const ac_schema *s, const json_t *instance);

/* Where incoming holds AC_SECRET_MASK at a writeOnly location, puts the
 * value stored at the same location back (in place). */
int ac_schema_keep_masked_secrets(const ac_schema *s, json_t *incoming, const json_t *stored);

/* The schema as exported in the catalog: a copy with "$schema" set to
 * AC_SCHEMA_DIALECT. Caller decrefs. */
json_t *ac_schema_export(const ac_schema *s);

/* The schema's JSON (borrowed). */
const json_t *ac_schema_json(const ac_schema *s);

#endif
