/* routes_ops.c — /healthz, /readyz, /metrics (no token). */
#include "api/routes.h"
#include "app/app.h"

#include <stdlib.h>

void ac_route_healthz(ac_app *app, ac_request *req, ac_response *res) {
  (void)app;
  (void)req;
  ac_respond_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

void ac_route_readyz(ac_app *app, ac_request *req, ac_response *res) {
  (void)req;
  if (ac_app_ready(app))
    ac_respond_json(res, 200, json_pack("{s:s}", "status", "ready"));
  else
    ac_respond_problem(res, 503, "the database is unreachable or the built-in plugins did not load",
                       NULL);
}

void ac_route_metrics(ac_app *app, ac_request *req, ac_response *res) {
  (void)req;
  ac_app_refresh_metrics(app);
  res->status = 200;
  res->text = ac_metrics_render(ac_app_metrics(app));
  res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
