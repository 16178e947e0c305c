/* cli_util.h — small helpers shared by the subcommands. */
#ifndef AC_CLI_UTIL_H
#define AC_CLI_UTIL_H

#include "core/err.h"

#include <jansson.h>

/* Reads a JSON argument: inline text, "@path" for a file, or "-" for
 * standard input. Duplicate object members are refused. *out: caller
 * decrefs. */
int ac_cli_read_json(const char *arg, json_t **out, ac_err *err);

/* Prints doc as one compact JSON line on standard output. */
void ac_cli_print_json(const json_t *doc);

/* Prints "agentcore: <message>" and the usage to standard error; returns 2. */
int ac_cli_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
