/* loader.h — reading a plugin file through the sandbox and checking its
 * contract (docs/plugin-authoring.md). */
#ifndef AC_PLUGIN_LOADER_H
#define AC_PLUGIN_LOADER_H

#include "core/config.h"
#include "core/err.h"

#include <jansson.h>

/* Loads the plugin file at path in a sandboxed state under cfg's limits and
 * returns its configSchema converted to JSON (an empty-object schema when
 * the plugin declares none). *schema_out: caller decrefs. Fails with the
 * contract error if the file does not load. */
int ac_plugin_config_schema_from_file(const char *path, const ac_config *cfg,
                                      json_t **schema_out, ac_err *err);

#endif
