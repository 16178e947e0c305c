/* cmd_migrate.c — `agentcore migrate`: apply the SQL migrations. */
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/config.h"
#include "core/log.h"
#include "db/db.h"
#include "db/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char migrate_usage[] =
    "usage: agentcore migrate\n"
    "\n"
    "Applies the SQL files of the migrations directory that the database has\n"
    "not seen yet, in name order, each in its own transaction, and prints\n"
    "their names. Safe to run again and from several instances at once.\n"
    "\n"
    "environment:\n"
    "  AGENTCORE_DATABASE_URL     libpq URI of the database (required)\n"
    "  AGENTCORE_MIGRATIONS_DIR   directory of *.sql files (default: the\n"
    "                             source tree's migrations/)\n";

static void print_applied(void *ud, const char *name) {
  (void)ud;
  printf("applied %s\n", name);
  fflush(stdout);
}

int ac_cmd_migrate(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(migrate_usage, stdout);
      return 0;
    }
  }
  if (argc > 1)
    return ac_cli_usage_error(migrate_usage, "migrate takes no arguments, got \"%s\"", argv[1]);
  ac_config cfg;
  ac_err err = {0};
  if (ac_config_from_env(&cfg, &err)) {
    fprintf(stderr, "agentcore: %s\n", err.msg);
    return 2;
  }
  if (!cfg.database_url[0]) {
    fprintf(stderr, "agentcore: AGENTCORE_DATABASE_URL is not set (the database to migrate)\n");
    return 2;
  }
  const char *dir = getenv("AGENTCORE_MIGRATIONS_DIR");
  if (!dir || !*dir)
    dir = AC_SOURCE_DIR "/migrations";

  ac_db *db = ac_db_connect(cfg.database_url, &err);
  if (!db) {
    fprintf(stderr, "agentcore: %s\n", err.msg);
    return 1;
  }
  /* Applied files are printed; the log only adds warnings unless asked. */
  ac_logger *log = ac_logger_new(cfg.log_level > AC_LOG_WARN ? cfg.log_level : AC_LOG_WARN, NULL, NULL);
  int applied = 0;
  int rc = ac_db_migrate_ex(ac_db_conn(db), dir, log, &applied, print_applied, NULL, &err);
  if (rc)
    fprintf(stderr, "agentcore: %s\n", err.msg);
  else if (applied == 0)
    printf("database is up to date\n");
  else
    printf("%d migration%s applied\n", applied, applied == 1 ? "" : "s");
  ac_logger_free(log);
  ac_db_free(db);
  return rc ? 1 : 0;
}
