/* defaults.c — fills `default` values of absent properties into an
 * instance, nested objects included, before it is stored. */
#include "schema/schema_int.h"

#include <string.h>

static int fill(const node *n, json_t *v);

static int fill_object(const node *n, json_t *v) {
  for (size_t i = 0; i < n->nprops; i++) {
    const prop *p = &n->props[i];
    json_t *child = json_object_getn(v, p->name, p->len);
    if (!child && p->schema->boolean < 0 && p->schema->default_value) {
      child = json_deep_copy(p->schema->default_value);
      if (!child || json_object_setn_new(v, p->name, p->len, child))
        return AC_ERR_NOMEM;
    }
    /* A default object is filled too: its own properties may have defaults. */
    if (child) {
      int rc = fill(p->schema, child);
      if (rc)
        return rc;
    }
  }
  if (n->additional) {
    const char *key;
    size_t klen;
    json_t *child;
    json_object_keylen_foreach(v, key, klen, child) {
      int known = 0;
      for (size_t i = 0; i < n->nprops && !known; i++)
        known = n->props[i].len == klen && memcmp(n->props[i].name, key, klen) == 0;
      if (!known) {
        int rc = fill(n->additional, child);
        if (rc)
          return rc;
      }
    }
  }
  return AC_OK;
}

static int fill_array(const node *n, json_t *v) {
  for (size_t i = 0; i < json_array_size(v); i++) {
    const node *sub = i < n->nprefix ? n->prefix[i] : n->items;
    if (sub) {
      int rc = fill(sub, json_array_get(v, i));
      if (rc)
        return rc;
    }
  }
  return AC_OK;
}

/* allOf branches all apply, so their defaults do too; anyOf/oneOf branches
 * are alternatives and which one "applies" is not known, so theirs are
 * left alone. */
static int fill(const node *n, json_t *v) {
  if (n->boolean >= 0)
    return AC_OK;
  int rc = AC_OK;
  if (json_is_object(v))
    rc = fill_object(n, v);
  else if (json_is_array(v))
    rc = fill_array(n, v);
  for (size_t i = 0; rc == AC_OK && i < n->nall; i++)
    rc = fill(n->all_of[i], v);
  return rc;
}

int ac_schema_apply_defaults(const ac_schema *s, json_t *instance) {
  if (!s || !instance)
    return AC_ERR_INVALID;
  return fill(s->root, instance);
}
