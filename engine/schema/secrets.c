/* secrets.c — writeOnly values: masked in what the API shows, a masked
 * value sent back keeps the stored secret, and the values are collected
 * for log redaction. */
#include "schema/schema_int.h"

#include <string.h>

/* A location is secret when writeOnly is true on its schema or on any
 * allOf/anyOf/oneOf branch of it. anyOf/oneOf branches count although only
 * one may apply: masking a value too many beats showing a secret. */
int ac_schema_node_is_secret(const node *n) {
  if (n->boolean >= 0)
    return 0;
  if (n->write_only)
    return 1;
  for (size_t i = 0; i < n->nall; i++)
    if (ac_schema_node_is_secret(n->all_of[i]))
      return 1;
  for (size_t i = 0; i < n->nany; i++)
    if (ac_schema_node_is_secret(n->any_of[i]))
      return 1;
  for (size_t i = 0; i < n->none; i++)
    if (ac_schema_node_is_secret(n->one_of[i]))
      return 1;
  return 0;
}

static int is_mask(const json_t *v) {
  return json_is_string(v) && strcmp(json_string_value(v), AC_SECRET_MASK) == 0 &&
         json_string_length(v) == strlen(AC_SECRET_MASK);
}

static int prop_known(const node *n, const char *key, size_t len) {
  for (size_t i = 0; i < n->nprops; i++)
    if (n->props[i].len == len && memcmp(n->props[i].name, key, len) == 0)
      return 1;
  return 0;
}

/* ---- shared walk: calls visit for every (schema, container, slot) below
 * v that the schema describes, descending through every branch ---- */

typedef struct slot {
  json_t *container; /* object or array holding the value */
  const char *key;   /* object key, or NULL for an array */
  size_t klen;
  size_t index;
  json_t *value;
  const json_t *twin; /* the value at the same location in a second document */
} slot;

typedef int (*visit_fn)(const node *n, const slot *at, void *ud);

static int walk(const node *n, json_t *v, const json_t *twin, visit_fn visit, void *ud);

static int walk_child(const node *n, slot *at, visit_fn visit, void *ud) {
  if (ac_schema_node_is_secret(n))
    return visit(n, at, ud);
  return walk(n, at->value, at->twin, visit, ud);
}

static const json_t *twin_key(const json_t *twin, const char *key, size_t len) {
  return json_is_object(twin) ? json_object_getn(twin, key, len) : NULL;
}

static int walk(const node *n, json_t *v, const json_t *twin, visit_fn visit, void *ud) {
  if (n->boolean >= 0)
    return AC_OK;
  int rc = AC_OK;
  if (json_is_object(v)) {
    for (size_t i = 0; rc == AC_OK && i < n->nprops; i++) {
      const prop *p = &n->props[i];
      slot at = {v, p->name, p->len, 0, json_object_getn(v, p->name, p->len),
                 twin_key(twin, p->name, p->len)};
      if (at.value)
        rc = walk_child(n->props[i].schema, &at, visit, ud);
    }
    if (n->additional) {
      /* The safe iteration: a visit may delete the current key. */
      const char *key;
      size_t klen;
      json_t *child;
      void *tmp;
      json_object_keylen_foreach_safe(v, tmp, key, klen, child) {
        if (rc != AC_OK || prop_known(n, key, klen))
          continue;
        slot at = {v, key, klen, 0, child, twin_key(twin, key, klen)};
        rc = walk_child(n->additional, &at, visit, ud);
      }
    }
  } else if (json_is_array(v)) {
    for (size_t i = 0; rc == AC_OK && i < json_array_size(v); i++) {
      const node *sub = i < n->nprefix ? n->prefix[i] : n->items;
      slot at = {v, NULL, 0, i, json_array_get(v, i),
                 json_is_array(twin) ? json_array_get(twin, i) : NULL};
      if (sub)
        rc = walk_child(sub, &at, visit, ud);
    }
  }
  for (size_t i = 0; rc == AC_OK && i < n->nall; i++)
    rc = walk(n->all_of[i], v, twin, visit, ud);
  for (size_t i = 0; rc == AC_OK && i < n->nany; i++)
    rc = walk(n->any_of[i], v, twin, visit, ud);
  for (size_t i = 0; rc == AC_OK && i < n->none; i++)
    rc = walk(n->one_of[i], v, twin, visit, ud);
  return rc;
}

static int replace(const slot *at, json_t *value) {
  if (!value)
    return AC_ERR_NOMEM;
  int rc = at->key ? json_object_setn_new(at->container, at->key, at->klen, value)
                   : json_array_set_new(at->container, at->index, value);
  return rc ? AC_ERR_NOMEM : AC_OK;
}

/* ---- masking ---- */

static int mask_visit(const node *n, const slot *at, void *ud) {
  (void)n;
  (void)ud;
  return replace(at, json_string(AC_SECRET_MASK));
}

json_t *ac_schema_mask_secrets(const ac_schema *s, const json_t *instance) {
  if (!s || !instance)
    return NULL;
  if (ac_schema_node_is_secret(s->root))
    return json_string(AC_SECRET_MASK);
  json_t *copy = json_deep_copy(instance);
  if (copy && walk(s->root, copy, NULL, mask_visit, NULL) != AC_OK) {
    json_decref(copy);
    return NULL;
  }
  return copy;
}

/* ---- keeping stored secrets ---- */

/* A mask where a secret stands means "unchanged": the stored value goes
 * back. With nothing stored, an object member is dropped rather than the
 * mask being kept as the secret (`required` then says what is missing);
 * an array slot keeps the mask, as removing it would shift its neighbours. */
static int keep_visit(const node *n, const slot *at, void *ud) {
  (void)n;
  (void)ud;
  if (!is_mask(at->value))
    return AC_OK;
  if (at->twin)
    return replace(at, json_deep_copy(at->twin));
  if (at->key)
    return json_object_deln(at->container, at->key, at->klen) ? AC_ERR_NOMEM : AC_OK;
  return AC_OK;
}

int ac_schema_keep_masked_secrets(const ac_schema *s, json_t *incoming, const json_t *stored) {
  if (!s || !incoming)
    return AC_ERR_INVALID;
  /* A secret root cannot be replaced in place; the caller keeps stored. */
  if (ac_schema_node_is_secret(s->root))
    return AC_OK;
  return walk(s->root, incoming, stored, keep_visit, NULL);
}

/* The masked copy has the mask exactly where the instance has a secret. */
static void collect_secrets(const json_t *config, const json_t *masked, json_t *out) {
  if (json_is_string(masked) && strcmp(json_string_value(masked), AC_SECRET_MASK) == 0 &&
      json_is_string(config)) {
    json_array_append(out, (json_t *)config);
  } else if (json_is_object(config) && json_is_object(masked)) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)config, k, v) collect_secrets(v, json_object_get(masked, k), out);
  } else if (json_is_array(config) && json_is_array(masked)) {
    for (size_t i = 0; i < json_array_size(config); i++)
      collect_secrets(json_array_get(config, i), json_array_get(masked, i), out);
  }
}

json_t *ac_schema_secret_values(const ac_schema *s, const json_t *instance) {
  json_t *masked = ac_schema_mask_secrets(s, instance);
  json_t *secrets = json_array();
  collect_secrets(instance, masked, secrets);
  json_decref(masked);
  return secrets;
}
