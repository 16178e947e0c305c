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
  /* no string the engine reads may hold NUL: say so, not jansson's flag */
  if (json_error_code(e) == json_error_null_character)
    snprintf(what, sizeof what, "a string holds \\u0000 (NUL), which is not accepted");
  snprintf(out, size, "line %d column %d (byte %d): %s", e->line, e->column, e->position, what);
}
