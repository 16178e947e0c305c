/* routes_tenancy.c — departments and namespaces (docs/api.md, "Tenancy"). */
#include "api/routes.h"
#include "core/utf8.h"
#include "app/app.h"
#include "db/store.h"

#include <stdio.h>
#include <string.h>

int ac_valid_tenancy_id(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 1 || n > 128)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != ':' && c != '-')))
      return 0;
  }
  return 1;
}

void ac_respond_store_error(ac_response *res, int rc, const ac_err *err) {
  switch (rc) {
  case AC_ERR_NOTFOUND:
    ac_respond_problem(res, 404, err->msg, NULL);
    break;
  case AC_ERR_CONFLICT:
    ac_respond_problem(res, 409, err->msg, NULL);
    break;
  case AC_ERR_INVALID:
    ac_respond_problem(res, 400, err->msg, NULL);
    break;
  case AC_ERR_DB:
    ac_respond_problem(res, 503, "the database is unavailable; try again", NULL);
    snprintf(res->retry_after, sizeof res->retry_after, "1");
    break;
  case AC_ERR_BUSY:    /* a serialization failure, a deadlock, a lock wait */
  case AC_ERR_TIMEOUT: /* a statement timeout */
    ac_respond_problem(res, 503, "the database is busy; try again", NULL);
    snprintf(res->retry_after, sizeof res->retry_after, "1");
    break;
  default:
    ac_respond_problem(res, 500, "internal error", NULL);
  }
}

/* Reads {"id"?, "name", <ref>?} from the body; answers 400 on bad shapes. */
static int read_item(const ac_request *req, ac_response *res, const char *ref, int ref_required,
                     json_t **doc, const char **id, const char **name, const char **ref_value) {
  *doc = ac_request_json(req, res);
  if (!*doc)
    return 0;
  json_t *jid = json_object_get(*doc, "id"), *jname = json_object_get(*doc, "name"),
         *jref = json_object_get(*doc, ref);
  const char *detail = NULL;
  if (jid && !json_is_null(jid) && !ac_valid_tenancy_id(json_string_value(jid)))
    detail = "id must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$";
  else if (!json_is_string(jname) || json_string_length(jname) == 0 ||
           ac_utf8_length(json_string_value(jname), json_string_length(jname)) > 200)
    detail = "name must be a string of 1 to 200 characters";
  else if (jref && !json_is_null(jref) && !ac_valid_tenancy_id(json_string_value(jref)))
    detail = strcmp(ref, "parentId") == 0 ? "parentId must be a department id"
                                          : "departmentId must be a department id";
  else if (ref_required && (!jref || json_is_null(jref)))
    detail = "departmentId is required";
  if (detail) {
    ac_respond_problem(res, 400, detail, NULL);
    json_decref(*doc);
    return 0;
  }
  *id = json_string_value(jid);
  *name = json_string_value(jname);
  *ref_value = json_string_value(jref);
  return 1;
}

typedef int (*list_fn)(PGconn *db, const ac_principal *who, json_t **list, ac_err *err);
typedef int (*create_fn)(PGconn *db, const ac_principal *who, const char *id, const char *name,
                         const char *ref, json_t **item, ac_err *err);
typedef int (*install_fn)(ac_tenancy *t, PGconn *db, const char *id, ac_err *err);

/* GET of a tenancy list: {"<key>": [items in the caller's scope]}. */
static void list_route(ac_app *app, ac_request *req, ac_response *res, const char *key,
                       list_fn list) {
  PGconn *db = ac_app_db(app, res);
  if (!db)
    return;
  json_t *items = NULL;
  ac_err err = {0};
  int rc = list(db, &req->principal, &items, &err);
  ac_app_db_done(app, db);
  if (rc)
    return ac_respond_store_error(res, rc, &err);
  ac_respond_json(res, 200, json_pack("{s:o}", key, items));
}

/* POST of a tenancy item {"id"?, "name", <ref>}: 201 with the item, which
 * install puts into this instance's tenancy snapshot before the answer
 * (other instances learn it by NOTIFY). */
static void create_route(ac_app *app, ac_request *req, ac_response *res, const char *ref,
                         int ref_required, create_fn create, install_fn install) {
  json_t *doc;
  const char *id, *name, *ref_value;
  if (!read_item(req, res, ref, ref_required, &doc, &id, &name, &ref_value))
    return;
  PGconn *db = ac_app_db(app, res);
  if (db) {
    json_t *item = NULL;
    ac_err err = {0};
    int rc = create(db, &req->principal, id, name, ref_value, &item, &err);
    if (rc == AC_OK)
      install(ac_app_tenancy(app), db, json_string_value(json_object_get(item, "id")), NULL);
    ac_app_db_done(app, db);
    if (rc)
      ac_respond_store_error(res, rc, &err);
    else
      ac_respond_json(res, 201, item);
  }
  json_decref(doc);
}

void ac_route_departments_list(ac_app *app, ac_request *req, ac_response *res) {
  list_route(app, req, res, "departments", ac_store_departments_list);
}

void ac_route_departments_create(ac_app *app, ac_request *req, ac_response *res) {
  create_route(app, req, res, "parentId", 0, ac_store_department_create,
               ac_tenancy_refresh_department);
}

void ac_route_namespaces_list(ac_app *app, ac_request *req, ac_response *res) {
  list_route(app, req, res, "namespaces", ac_store_namespaces_list);
}

void ac_route_namespaces_create(ac_app *app, ac_request *req, ac_response *res) {
  create_route(app, req, res, "departmentId", 1, ac_store_namespace_create,
               ac_tenancy_refresh_namespace);
}

void ac_route_namespace_get(ac_app *app, ac_request *req, ac_response *res) {
  PGconn *db = ac_app_db(app, res);
  if (!db)
    return;
  json_t *item = NULL;
  ac_err err = {0};
  int rc = ac_store_namespace_get(db, &req->principal, req->params[0], &item, &err);
  ac_app_db_done(app, db);
  if (rc)
    return ac_respond_store_error(res, rc, &err);
  ac_respond_json(res, 200, item);
}
