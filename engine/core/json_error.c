/* json_error.c — describing a JSON parse error without quoting the text. */
#include "core/json_error.h"

#include <stdio.h>
#include <string.h>

void ac_json_error_describe(const json_error_t *e, char *out, size_t size) {
  char what[sizeof e->text];
  snprintf(what, sizeof what, "%s", e->text);
  char *near = strstr(what, " near ");
  if (near)
    *near = '\0';
  snprintf(out, size, "line %d column %d (byte %d): %s", e->line, e->column, e->position, what);
}
