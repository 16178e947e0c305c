/* commands.h — the agentcore subcommands; main.c dispatches to these.
 * Each takes the arguments after its own name (argv[0] is the command
 * name) and returns the process exit status. */
#ifndef AC_CLI_COMMANDS_H
#define AC_CLI_COMMANDS_H

int ac_cmd_plugin(int argc, char **argv);  /* plugin check | plugin run */
int ac_cmd_schema(int argc, char **argv);  /* schema validate */
int ac_cmd_token(int argc, char **argv);   /* token --sub ... */
int ac_cmd_migrate(int argc, char **argv); /* migrate */
int ac_cmd_serve(int argc, char **argv);   /* serve */

#endif
