/* main.c — command dispatch only. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: agentcore COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  serve                      run the HTTP API, dispatcher and plugin watcher\n"
    "  migrate                    apply database migrations\n"
    "  plugin check FILE...       check plugin files (contract + config schema)\n"
    "  plugin run FILE --hook H   run one hook through the sandbox\n"
    "  schema validate S I        validate instance I against schema S (.json or .lua)\n"
    "  token --sub ID ...         sign a development token (HS256)\n"
    "  version                    print the version\n"
    "\n"
    "Every command takes --help.\n";

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
} command;

static int cmd_version(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    puts("usage: agentcore version\nPrints the engine's version.");
    return 0;
  }
  puts("agentcore " AC_VERSION);
  return 0;
}

static const command commands[] = {
    {"serve", ac_cmd_serve},
    {"migrate", ac_cmd_migrate},
    {"plugin", ac_cmd_plugin},
    {"schema", ac_cmd_schema},
    {"token", ac_cmd_token},
    {"version", cmd_version},
};

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0)
    return cmd_version(1, argv + 1);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "agentcore: unknown command \"%s\"\n%s", argv[1], usage);
  return 2;
}
