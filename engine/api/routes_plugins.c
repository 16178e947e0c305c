/* routes_plugins.c — the plugin catalog and each namespace's plugin configs
 * (docs/api.md, "Plugin management"). */
#include "api/routes.h"
#include "app/app.h"
#include "core/json_patch.h"
#include "db/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ac_route_catalog(ac_app *app, ac_request *req, ac_response *res) {
  (void)req;
  res->text = ac_app_catalog_text(app);
  if (!res->text)
    return ac_respond_problem(res, 500, "out of memory", NULL);
  res->status = 200;
  res->content_type = "application/json";
}

void ac_route_reload(ac_app *app, ac_request *req, ac_response *res) {
  (void)req;
  ac_registry_reload(ac_app_registry(app));
  ac_route_catalog(app, req, res);
}

/* Replaces every string leaf with the mask: for configs whose plugin (and
 * so whose schema) is gone, nothing is shown in clear. */
static json_t *mask_all(const json_t *v) {
  if (json_is_string(v))
    return json_string(AC_SECRET_MASK);
  json_t *copy = json_deep_copy(v);
  if (json_is_object(copy)) {
    const char *k;
    json_t *x;
    json_object_foreach(copy, k, x) json_object_set_new(copy, k, mask_all(x));
  } else if (json_is_array(copy)) {
    for (size_t i = 0; i < json_array_size(copy); i++)
      json_array_set_new(copy, i, mask_all(json_array_get(copy, i)));
  }
  return copy;
}

/* The config with secrets masked, by the plugin's current schema. */
static json_t *masked_config(ac_app *app, const char *plugin, const json_t *config) {
  ac_plugin_handle *h = ac_registry_acquire(ac_app_registry(app), plugin);
  json_t *masked = h ? ac_schema_mask_secrets(ac_plugin_handle_info(h)->schema, config)
                     : mask_all(config);
  ac_plugin_handle_release(h);
  return masked;
}

/* A stored row as the API shows it (masked config). Consumes row. */
static json_t *record(ac_app *app, json_t *row) {
  const char *plugin = json_string_value(json_object_get(row, "pluginId"));
  json_object_set_new(row, "config", masked_config(app, plugin, json_object_get(row, "config")));
  return row;
}

static void set_etag(ac_response *res, const json_t *row) {
  snprintf(res->etag, sizeof res->etag, "\"%lld\"",
           (long long)json_integer_value(json_object_get(row, "version")));
}

/* The namespace must exist and be in the caller's scope (else 404). */
static int namespace_visible(PGconn *db, ac_request *req, ac_response *res) {
  json_t *item = NULL;
  ac_err err = {0};
  int rc = ac_store_namespace_get(db, &req->principal, req->params[0], &item, &err);
  json_decref(item);
  if (rc) {
    ac_respond_store_error(res, rc, &err);
    return 0;
  }
  return 1;
}

void ac_route_ns_plugins_list(ac_app *app, ac_request *req, ac_response *res) {
  PGconn *db = ac_app_db(app, res);
  if (!db)
    return;
  json_t *rows = NULL;
  ac_err err = {0};
  int rc = namespace_visible(db, req, res) ? ac_store_ns_plugins_list(db, req->params[0], &rows, &err)
                                           : -1;
  ac_app_db_done(app, db);
  if (rc == -1)
    return;
  if (rc)
    return ac_respond_store_error(res, rc, &err);
  json_t *list = json_array();
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) json_array_append_new(list, record(app, json_incref(row)));
  json_decref(rows);
  ac_respond_json(res, 200, json_pack("{s:o}", "plugins", list));
}

/* Prefixes every error path with /config. */
static json_t *config_errors(json_t *errors) {
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e) {
    const char *path = json_string_value(json_object_get(e, "path"));
    char buf[1200];
    snprintf(buf, sizeof buf, "/config%s", path ? path : "");
    json_object_set_new(e, "path", json_string(buf));
  }
  return errors;
}

/* Fills defaults and validates; answers 422 and returns 0 if invalid. */
static int validate_config(const ac_plugin_info *info, json_t *config, ac_response *res) {
  ac_schema_apply_defaults(info->schema, config);
  json_t *errors = NULL;
  if (ac_schema_validate(info->schema, config, &errors) != AC_OK) {
    ac_respond_problem(res, 422, "config does not match the plugin's configSchema",
                       config_errors(errors));
    return 0;
  }
  json_decref(errors);
  return 1;
}

void ac_route_ns_plugin_enable(ac_app *app, ac_request *req, ac_response *res) {
  json_t *doc = ac_request_json(req, res);
  if (!doc)
    return;
  json_t *config = json_object_get(doc, "config"), *enabled = json_object_get(doc, "enabled");
  if ((config && !json_is_object(config)) || (enabled && !json_is_boolean(enabled))) {
    json_decref(doc);
    return ac_respond_problem(res, 400, "config must be an object and enabled a boolean", NULL);
  }
  PGconn *db = ac_app_db(app, res);
  if (!db) {
    json_decref(doc);
    return;
  }
  ac_plugin_handle *h = NULL;
  json_t *cfg = config ? json_deep_copy(config) : json_object();
  int changed = 0;
  if (!namespace_visible(db, req, res))
    goto done;
  h = ac_registry_acquire(ac_app_registry(app), req->params[1]);
  if (!h) {
    ac_respond_problem(res, 404, "unknown plugin", NULL);
    goto done;
  }
  const ac_plugin_info *info = ac_plugin_handle_info(h);
  /* a record sent back as read shows secrets masked: with nothing stored
   * yet, the mask is dropped (required then reports it), never stored as
   * the secret itself */
  ac_schema_keep_masked_secrets(info->schema, cfg, NULL);
  if (!validate_config(info, cfg, res))
    goto done;
  json_t *masked = ac_schema_mask_secrets(info->schema, cfg);
  json_t *row = NULL;
  ac_err err = {0};
  int rc = ac_store_ns_plugin_insert(db, req->params[0], req->params[1],
                                     enabled ? json_is_true(enabled) : 1, cfg,
                                     req->principal.sub, masked, &row, &err);
  json_decref(masked);
  if (rc == AC_ERR_CONFLICT) {
    ac_respond_problem(res, 409, "the plugin is already enabled in this namespace", NULL);
  } else if (rc) {
    ac_respond_store_error(res, rc, &err);
  } else {
    changed = 1;
    set_etag(res, row);
    ac_respond_json(res, 201, record(app, row));
  }
done:
  ac_app_db_done(app, db);
  if (changed) /* after giving the connection back: it takes one of its own */
    ac_app_config_changed(app, req->params[0]);
  ac_plugin_handle_release(h);
  json_decref(cfg);
  json_decref(doc);
}

/* Parses If-Match: "N", W/"N" or N. -1 when absent or "*" (any current
 * version matches), -2 when unusable. */
static long long parse_if_match(const char *v) {
  if (!v || strcmp(v, "*") == 0)
    return -1;
  if (strncmp(v, "W/", 2) == 0)
    v += 2;
  if (*v == '"')
    v++;
  char *end;
  long long n = strtoll(v, &end, 10);
  if (end == v || (*end && *end != '"') || n < 0)
    return -2;
  return n;
}

void ac_route_ns_plugin_patch(ac_app *app, ac_request *req, ac_response *res) {
  json_t *doc = ac_request_json(req, res);
  if (!doc)
    return;
  json_t *patch = json_object_get(doc, "config"), *enabled = json_object_get(doc, "enabled");
  if ((!patch && !enabled) || (enabled && !json_is_boolean(enabled)) ||
      (patch && !json_is_object(patch))) {
    json_decref(doc);
    return ac_respond_problem(
        res, 400, "send config (a JSON merge patch object) and/or enabled (a boolean)", NULL);
  }
  long long want = parse_if_match(req->if_match);
  PGconn *db = ac_app_db(app, res);
  if (!db) {
    json_decref(doc);
    return;
  }
  ac_plugin_handle *h = NULL;
  int changed = 0;
  if (!namespace_visible(db, req, res))
    goto done;
  h = ac_registry_acquire(ac_app_registry(app), req->params[1]);
  if (!h) {
    ac_respond_problem(res, 404, "unknown plugin", NULL);
    goto done;
  }
  const ac_plugin_info *info = ac_plugin_handle_info(h);
  /* optimistic concurrency: without If-Match a lost race is retried on
   * the fresh row; with it, the client's version must still hold */
  for (int attempt = 0; attempt < 5; attempt++) {
    json_t *row = NULL;
    ac_err err = {0};
    int rc = ac_store_ns_plugin_get(db, req->params[0], req->params[1], &row, &err);
    if (rc == AC_ERR_NOTFOUND) {
      ac_respond_problem(res, 404, "the plugin is not enabled in this namespace", NULL);
      goto done;
    }
    if (rc) {
      ac_respond_store_error(res, rc, &err);
      goto done;
    }
    long long version = json_integer_value(json_object_get(row, "version"));
    if (want == -2 || (want >= 0 && want != version)) {
      json_decref(row);
      ac_respond_problem(res, 412, "If-Match does not match the current version", NULL);
      goto done;
    }
    const json_t *stored = json_object_get(row, "config");
    json_t *cfg = patch ? ac_json_merge_patch(stored, patch) : json_deep_copy(stored);
    if (patch)
      ac_schema_keep_masked_secrets(info->schema, cfg, stored);
    if (!cfg || !validate_config(info, cfg, res)) {
      if (!cfg)
        ac_respond_problem(res, 500, "out of memory", NULL);
      json_decref(cfg);
      json_decref(row);
      goto done;
    }
    int en = enabled ? json_is_true(enabled) : json_is_true(json_object_get(row, "enabled"));
    json_t *before = ac_schema_mask_secrets(info->schema, stored);
    json_t *after = ac_schema_mask_secrets(info->schema, cfg);
    json_t *updated = NULL;
    rc = ac_store_ns_plugin_update(db, req->params[0], req->params[1], version, en, cfg,
                                   req->principal.sub, before, after, &updated, &err);
    json_decref(before);
    json_decref(after);
    json_decref(cfg);
    json_decref(row);
    if (rc == AC_ERR_CONFLICT && want < 0)
      continue;
    if (rc == AC_ERR_CONFLICT) {
      ac_respond_problem(res, 412, "the config changed meanwhile; fetch it again", NULL);
    } else if (rc) {
      ac_respond_store_error(res, rc, &err);
    } else {
      changed = 1;
      set_etag(res, updated);
      ac_respond_json(res, 200, record(app, updated));
    }
    goto done;
  }
  ac_respond_problem(res, 409, "the config is being changed concurrently; try again", NULL);
done:
  ac_app_db_done(app, db);
  if (changed)
    ac_app_config_changed(app, req->params[0]);
  ac_plugin_handle_release(h);
  json_decref(doc);
}

void ac_route_ns_plugin_delete(ac_app *app, ac_request *req, ac_response *res) {
  PGconn *db = ac_app_db(app, res);
  if (!db)
    return;
  int changed = 0;
  if (namespace_visible(db, req, res)) {
    json_t *row = NULL;
    ac_err err = {0};
    int rc = ac_store_ns_plugin_get(db, req->params[0], req->params[1], &row, &err);
    if (rc == AC_OK) {
      json_t *before = masked_config(app, req->params[1], json_object_get(row, "config"));
      rc = ac_store_ns_plugin_delete(db, req->params[0], req->params[1], req->principal.sub, before,
                                     &err);
      json_decref(before);
    }
    json_decref(row);
    if (rc == AC_ERR_NOTFOUND)
      ac_respond_problem(res, 404, "the plugin is not enabled in this namespace", NULL);
    else if (rc)
      ac_respond_store_error(res, rc, &err);
    else {
      changed = 1;
      res->status = 204;
    }
  }
  ac_app_db_done(app, db);
  if (changed)
    ac_app_config_changed(app, req->params[0]);
}
