/* schema.h — JSON Schema (draft 2020-12 subset of docs/plugin-authoring.md) for plugin
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
 * JSON using raw access only: no metamethod runs, nothing is pushed that
 * allocates, so it neither raises nor runs plugin code. Empty tables become
 * {} or [] by the keyword they stand under (a default/const by its schema's
 * type); integral floats become integers; keys come out sorted. Refuses
 * functions, userdata (but json.null), NaN/inf, invalid UTF-8, mixed or
 * sparse tables, cycles and nesting over 64 with AC_ERR_INVALID and the path:
 * "configSchema/properties/x/default: functions cannot appear in a schema"
 * (array positions 0-based). Leaves the stack as found. *out: caller frees. */
int ac_schema_from_lua(lua_State *L, int idx, json_t **out, ac_err *err);

/* Checks schema against the supported keyword set and compiles it (regexes,
 * formats). Unsupported keywords fail with AC_ERR_UNSUPPORTED naming the
 * keyword and its path: 'configSchema/properties/url: unsupported keyword
 * "$ref"'; so do unknown formats and any $schema but AC_SCHEMA_DIALECT.
 * Malformed values ("minLength": -1, a bad regex) fail with AC_ERR_INVALID
 * and the keyword's path. The schema is copied; *out: caller frees with
 * ac_schema_free (NULL is a no-op). A compiled schema is read-only and may
 * be shared between threads. */
int ac_schema_compile(const json_t *schema, ac_schema **out, ac_err *err);
void ac_schema_free(ac_schema *s);

/* Validates instance, collecting every error (the first 1000). Returns AC_OK
 * if valid, else AC_ERR_INVALID (AC_ERR_NOMEM on allocation failure, with
 * *errors NULL); if errors != NULL it receives a new JSON array (caller
 * decrefs) of {"path": JSON Pointer, "keyword", "message"} (empty if valid).
 * required errors point at the object; additionalProperties errors at the
 * extra member ("/x"); a failed anyOf/oneOf lists its branches' errors then
 * its own. Messages never quote instance values. */
int ac_schema_validate(const ac_schema *s, const json_t *instance, json_t **errors);

/* Fills the "default" of every absent property into instance in place,
 * recursing into present and newly created objects, array items and allOf
 * branches (anyOf/oneOf branches are alternatives: not applied). Returns
 * AC_OK, or AC_ERR_NOMEM; an instance that is not an object is left alone. */
int ac_schema_apply_defaults(const ac_schema *s, json_t *instance);

/* A deep copy of instance with every writeOnly value replaced by
 * AC_SECRET_MASK, found through properties, additionalProperties, items,
 * prefixItems and allOf/anyOf/oneOf (a location is secret if any branch says
 * so: over-masking beats a leak). Caller decrefs; NULL on allocation failure. */
json_t *ac_schema_mask_secrets(const ac_schema *s, const json_t *instance);

/* The strings instance holds at writeOnly locations (as masked by
 * ac_schema_mask_secrets): what logs must never show. A new array. */
json_t *ac_schema_secret_values(const ac_schema *s, const json_t *instance);

/* Where incoming holds AC_SECRET_MASK at a writeOnly location (as for
 * ac_schema_mask_secrets), puts the value stored at the same location back
 * (in place). With nothing stored there, an object member holding the mask is
 * removed (so `required` reports it) rather than kept as the secret. */
int ac_schema_keep_masked_secrets(const ac_schema *s, json_t *incoming, const json_t *stored);

/* The schema as exported in the catalog: a copy with "$schema" set to
 * AC_SCHEMA_DIALECT. Caller decrefs. */
json_t *ac_schema_export(const ac_schema *s);

/* The schema's JSON (borrowed). */
const json_t *ac_schema_json(const ac_schema *s);

/* 1 if s[0..len) (valid UTF-8) is in the "uri" format, as validation
 * checks it. */
int ac_schema_uri_ok(const char *s, size_t len);

#endif
