/* problem.c — JSON and RFC 9457 problem responses, request body parsing. */
#include "api/http.h"
#include "core/json_error.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void ac_respond_json(ac_response *res, int status, json_t *body) {
  json_decref(res->body);
  res->status = status;
  res->body = body;
  res->content_type = "application/json";
}

static const char *status_title(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

void ac_respond_problem(ac_response *res, int status, const char *detail, json_t *errors) {
  json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title",
                        status_title(status), "status", status, "detail", detail ? detail : "");
  if (errors)
    json_object_set_new(p, "errors", errors);
  ac_respond_json(res, status, p);
  res->content_type = "application/problem+json";
  if (status == 401)
    res->www_authenticate = 1;
}

json_t *ac_request_json(const ac_request *req, ac_response *res) {
  const char *ct = req->content_type;
  size_t n = strlen("application/json");
  if (!ct || strncasecmp(ct, "application/json", n) != 0 || (ct[n] && ct[n] != ';' && ct[n] != ' ')) {
    ac_respond_problem(res, 415, "the request body must be application/json", NULL);
    return NULL;
  }
  json_error_t jerr;
  json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
  if (!doc) {
    char where[300], detail[340];
    ac_json_error_describe(&jerr, where, sizeof where);
    snprintf(detail, sizeof detail, "malformed JSON at %s", where);
    ac_respond_problem(res, 400, detail, NULL);
    return NULL;
  }
  if (!json_is_object(doc)) {
    json_decref(doc);
    ac_respond_problem(res, 400, "the request body must be a JSON object", NULL);
    return NULL;
  }
  return doc;
}
