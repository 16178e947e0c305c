/* loader_stub.c — placeholder until the sandboxed loader lands. */
#include "plugin/loader.h"

int ac_plugin_config_schema_from_file(const char *path, const ac_config *cfg,
                                      json_t **schema_out, ac_err *err) {
  (void)cfg;
  *schema_out = NULL;
  return ac_err_set(err, AC_ERR_UNSUPPORTED, "%s: plugin loading is not available yet", path);
}
