/* path.c — the "configSchema/a/b" locations named in schema messages. */
#include "schema/schema_int.h"

#include <string.h>

size_t ac_schema_path_push(char *path, size_t size, const char *seg, size_t len) {
  size_t old = strlen(path), at = old;
  if (at + 1 < size)
    path[at++] = '/';
  for (size_t i = 0; i < len && at + 3 < size; i++) {
    if (seg[i] == '~' || seg[i] == '/') {
      path[at++] = '~';
      path[at++] = seg[i] == '~' ? '0' : '1';
    } else {
      path[at++] = seg[i] ? seg[i] : '?';
    }
  }
  path[at] = '\0';
  return old;
}
