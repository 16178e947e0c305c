/* routes_host.c — the host flow: query enrichment and events. */
#include "api/routes.h"
#include "app/app.h"
#include "core/clock.h"
#include "core/utf8.h"
#include "db/events.h"
#include "db/store.h"
#include "dispatch/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_TEXT_MAX (64 * 1024)

/* Optional string member of at most max characters: absent or null is
 * fine, anything else is 400. */
static int opt_string(json_t *doc, const char *key, const char **out, size_t max) {
  json_t *v = json_object_get(doc, key);
  *out = NULL;
  if (!v || json_is_null(v))
    return 1;
  if (!json_is_string(v) || ac_utf8_length(json_string_value(v), json_string_length(v)) > max)
    return 0;
  *out = json_string_value(v);
  return 1;
}

static void query_answered(char *body, void *ud) {
  ac_response res = {0};
  if (body) {
    res.status = 200;
    res.text = body; /* JSON, written by the query run */
  } else {
    ac_respond_problem(&res, 503, "out of memory; try again", NULL);
  }
  ac_deferred_finish(ud, &res);
}

void ac_route_query(ac_app *app, ac_request *req, ac_response *res) {
  int64_t start = ac_clock_mono_ms();
  json_t *doc = ac_request_json(req, res);
  if (!doc)
    return;
  const char *user = NULL, *locale = NULL;
  json_t *jq = json_object_get(doc, "query");
  if (!json_is_string(jq) || json_string_length(jq) > QUERY_TEXT_MAX ||
      !opt_string(doc, "userId", &user, 256) || !opt_string(doc, "locale", &locale, 64)) {
    json_decref(doc);
    return ac_respond_problem(
        res, 400, "query must be a string (at most 64 KiB); userId and locale optional strings", NULL);
  }
  const char *ns = req->params[0];
  json_t *snapshot = NULL;
  ac_err err = {0};
  /* scope and configs come from memory: no database round trip */
  int rc = ac_tenancy_namespace(ac_app_tenancy(app), &req->principal, ns, &snapshot, &err);
  if (rc) {
    json_decref(doc);
    return ac_respond_store_error(res, rc, &err);
  }
  /* the body's own strings go into the query: no copy, no second check */
  json_t *query = json_object();
  int built = query && json_object_set(query, "text", jq) == 0 &&
              (!user || json_object_set(query, "userId", json_object_get(doc, "userId")) == 0) &&
              (!locale || json_object_set(query, "locale", json_object_get(doc, "locale")) == 0) &&
              json_object_set_new(query, "namespaceId", json_string(ns)) == 0;
  ac_deferred *later = built ? ac_request_defer(req) : NULL;
  if (!later) {
    json_decref(query);
    json_decref(snapshot);
    json_decref(doc);
    return ac_respond_problem(res, 503, "out of memory; try again", NULL);
  }
  /* the calls run on without this thread; the answer goes out when the
   * last one ends */
  ac_query_start(ac_app_hook_env(app), ac_app_result_schema(app), ns, snapshot, query, start,
                 query_answered, later);
  json_decref(query);
  json_decref(snapshot);
  json_decref(doc);
}

/* Plugins of the snapshot that handle events of this capability. */
static json_t *plugins_for(ac_app *app, const json_t *snapshot, unsigned cap) {
  json_t *ids = json_array();
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(snapshot, "plugins"), i, e) {
    const char *id = json_string_value(json_object_get(e, "pluginId"));
    ac_plugin_handle *h = ac_registry_acquire(ac_app_registry(app), id);
    if (h && (ac_plugin_handle_info(h)->caps & cap))
      json_array_append_new(ids, json_string(id));
    ac_plugin_handle_release(h);
  }
  return ids;
}

/* Nesting an event's data may have: what a plugin's json.encode and the
 * engine's conversions accept, with room to spare, so an accepted event can
 * always be loaded, handed to its plugins and delivered. */
#define EVENT_DATA_DEPTH_MAX 64

/* 1 if v nests at most `left` levels of objects and arrays. */
static int depth_within(const json_t *v, int left) {
  if (!json_is_object(v) && !json_is_array(v))
    return 1;
  if (left == 0)
    return 0;
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      if (!depth_within(json_array_get(v, i), left - 1))
        return 0;
    return 1;
  }
  const char *k;
  json_t *x;
  json_object_foreach((json_t *)v, k, x) if (!depth_within(x, left - 1)) return 0;
  return 1;
}

/* Checks an event body; returns the capability it needs, or 0 after
 * answering 400. */
static unsigned check_event(json_t *doc, ac_response *res, const char **type, const char **key) {
  *type = json_string_value(json_object_get(doc, "type"));
  const char *ref = NULL;
  unsigned cap = 0;
  if (*type && strcmp(*type, "approval.created") == 0) {
    ref = "approvalId";
    cap = AC_CAP_APPROVAL_HOOK;
  } else if (*type && strcmp(*type, "document.ready") == 0) {
    ref = "documentId";
    cap = AC_CAP_DOCUMENT_HOOK;
  } else {
    ac_respond_problem(res, 400, "type must be \"approval.created\" or \"document.ready\"", NULL);
    return 0;
  }
  json_t *id = json_object_get(doc, ref), *data = json_object_get(doc, "data");
  char detail[128];
  if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > 256) {
    snprintf(detail, sizeof detail, "%s must be a string of 1 to 256 characters", ref);
    ac_respond_problem(res, 400, detail, NULL);
    return 0;
  }
  if (data && !json_is_object(data)) {
    ac_respond_problem(res, 400, "data must be an object", NULL);
    return 0;
  }
  if (data && !depth_within(data, EVENT_DATA_DEPTH_MAX)) {
    ac_respond_problem(res, 400, "data nests deeper than 64 levels", NULL);
    return 0;
  }
  if (!opt_string(doc, "idempotencyKey", key, 255) || (*key && !**key)) {
    ac_respond_problem(res, 400, "idempotencyKey must be a string of 1 to 255 characters", NULL);
    return 0;
  }
  return cap;
}

/* An event handed to the intake, answered once it is stored. */
typedef struct event_put {
  ac_app *app;
  ac_deferred *later;
} event_put;

static void event_stored(void *ud, int rc, const char *event_id, int created, const char *status,
                         const ac_err *err) {
  event_put *p = ud;
  ac_response res = {0};
  if (rc) {
    ac_respond_store_error(&res, rc, err);
  } else if (created) {
    ac_app_events_stored(p->app);
    ac_respond_json(&res, 202, json_pack("{s:s, s:s}", "eventId", event_id, "status", "queued"));
  } else {
    ac_respond_json(&res, 200, json_pack("{s:s, s:s}", "eventId", event_id, "status", status));
  }
  ac_deferred_finish(p->later, &res);
  free(p);
}

void ac_route_event_create(ac_app *app, ac_request *req, ac_response *res) {
  json_t *doc = ac_request_json(req, res);
  if (!doc)
    return;
  const char *type, *key;
  unsigned cap = check_event(doc, res, &type, &key);
  if (!cap) {
    json_decref(doc);
    return;
  }
  const char *ns = req->params[0];
  json_t *snapshot = NULL;
  ac_err err = {0};
  /* scope and configs from memory; the database only stores the event */
  int rc = ac_tenancy_namespace(ac_app_tenancy(app), &req->principal, ns, &snapshot, &err);
  if (rc) {
    ac_respond_store_error(res, rc, &err);
    json_decref(doc);
    return;
  }
  if (!ac_app_event_admitted(app, ns)) {
    ac_respond_problem(res, 429, "this namespace posts events faster than its quota "
                                 "(AGENTCORE_EVENT_RATE per second); try again", NULL);
    snprintf(res->retry_after, sizeof res->retry_after, "1");
    json_decref(snapshot);
    json_decref(doc);
    return;
  }
  const char *ref = cap == AC_CAP_APPROVAL_HOOK ? "approvalId" : "documentId";
  json_t *data = json_object_get(doc, "data");
  /* "o" takes the reference: a new {} for a missing data must not leak */
  json_t *payload = json_pack("{s:O, s:o}", ref, json_object_get(doc, ref), "data",
                              data ? json_incref(data) : json_object());
  json_t *plugins = plugins_for(app, snapshot, cap);
  /* stored with other requests' events in one transaction; the answer goes
   * out after the commit, without this thread waiting for it */
  event_put *p = calloc(1, sizeof *p);
  if (p) {
    p->app = app;
    p->later = ac_request_defer(req);
  }
  if (!p || !p->later) {
    ac_respond_problem(res, 503, "out of memory; try again", NULL);
    free(p);
  } else if (ac_intake_put(ac_app_intake(app), ns, type, payload, key, plugins, event_stored, p) !=
             AC_OK) {
    ac_response oom = {0}; /* answered through the deferral now */
    ac_respond_problem(&oom, 503, "out of memory; try again", NULL);
    ac_deferred_finish(p->later, &oom);
    free(p);
  }
  json_decref(plugins);
  json_decref(snapshot);
  json_decref(payload);
  json_decref(doc);
}

void ac_route_event_get(ac_app *app, ac_request *req, ac_response *res) {
  PGconn *db = ac_app_db(app, res);
  if (!db)
    return;
  json_t *item = NULL, *status = NULL;
  ac_err err = {0};
  int rc = ac_store_namespace_get(db, &req->principal, req->params[0], &item, &err);
  if (rc == AC_OK)
    rc = ac_events_get(db, req->params[0], req->params[1], &status, &err);
  ac_app_db_done(app, db);
  json_decref(item);
  if (rc)
    return ac_respond_store_error(res, rc, &err);
  ac_respond_json(res, 200, status);
}
