/* json_error.h — where JSON text from outside is malformed, never what it
 * says there. jansson's messages quote the text near the error ("... near
 * 'sk-live-...'"), which may be a secret the client sent. */
#ifndef AC_CORE_JSON_ERROR_H
#define AC_CORE_JSON_ERROR_H

#include <jansson.h>
#include <stddef.h>

/* Writes "line L column C (byte B): <what jansson found, without the
 * quoted text>" into out. */
void ac_json_error_describe(const json_error_t *e, char *out, size_t size);

#endif
