/* cmd_serve.c — `agentcore serve`. */
#include "api/server.h"
#include "app/app.h"
#include "cli/commands.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char serve_usage[] =
    "usage: agentcore serve\n"
    "Serves the REST API on AGENTCORE_LISTEN (127.0.0.1:8080) with the database\n"
    "at AGENTCORE_DATABASE_URL, applying migrations first. SIGHUP reloads the\n"
    "plugin directories; SIGINT or SIGTERM stops.\n";

static int want_help(int argc, char **argv) {
  return argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
}

static int load_config(ac_config *cfg) {
  ac_err err = {0};
  if (ac_config_from_env(cfg, &err) != AC_OK) {
    fprintf(stderr, "agentcore: %s\n", err.msg);
    return 0;
  }
  return 1;
}

int ac_cmd_serve(int argc, char **argv) {
  if (want_help(argc, argv)) {
    fputs(serve_usage, stdout);
    return 0;
  }
  if (argc > 1) {
    fprintf(stderr, "agentcore: serve takes no arguments\n%s", serve_usage);
    return 2;
  }
  ac_config cfg;
  if (!load_config(&cfg))
    return 2;
  /* signals are taken synchronously by this thread; every thread the app
   * starts (watchdog, dispatcher, listener, server) inherits the blocked
   * mask, so block them before any is created */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  ac_logger *log = ac_logger_new(cfg.log_level, NULL, NULL);
  ac_app *app = NULL;
  ac_err err = {0};
  if (ac_app_new(&cfg, log, &app, &err) != AC_OK) {
    fprintf(stderr, "agentcore: %s\n", err.msg);
    ac_logger_free(log);
    return err.code == AC_ERR_INVALID ? 2 : 1;
  }

  ac_server_config scfg = {cfg.listen, cfg.request_threads, cfg.idle_timeout_s, cfg.max_connections,
                           cfg.max_conns_per_client};
  ac_server *server = NULL;
  if (ac_server_start(&scfg, app, &server, &err) != AC_OK) {
    fprintf(stderr, "agentcore: %s\n", err.msg);
    ac_app_free(app);
    ac_logger_free(log);
    return 1;
  }
  ac_logf(log, AC_LOG_INFO, "serving on %s", cfg.listen);
  for (;;) {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGHUP) {
      int changed = ac_registry_reload(ac_app_registry(app));
      ac_logf(log, AC_LOG_INFO, "SIGHUP: plugins reloaded (%d changed)", changed);
      continue;
    }
    break;
  }
  ac_logf(log, AC_LOG_INFO, "stopping");
  ac_server_stop(server);
  if (!ac_app_free(app)) /* else stuck calls may still log */
    ac_logger_free(log);
  return 0;
}
