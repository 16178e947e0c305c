/* cli_util.c — JSON arguments, output and usage errors for subcommands. */
#include "cli/cli_util.h"
#include "core/json_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ac_cli_read_json(const char *arg, json_t **out, ac_err *err) {
  json_error_t jerr;
  int flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
  if (strcmp(arg, "-") == 0)
    *out = json_loadf(stdin, flags, &jerr);
  else if (arg[0] == '@')
    *out = json_load_file(arg + 1, flags, &jerr);
  else
    *out = json_loads(arg, flags, &jerr);
  if (!*out) {
    char where[300];
    ac_json_error_describe(&jerr, where, sizeof where);
    return ac_err_set(err, AC_ERR_INVALID, "invalid JSON at %s", where);
  }
  return AC_OK;
}

void ac_cli_print_json(const json_t *doc) {
  char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
  if (text) {
    puts(text);
    free(text);
  }
  fflush(stdout);
}

int ac_cli_usage_error(const char *usage, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("agentcore: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fputs(usage, stderr);
  return 2;
}
