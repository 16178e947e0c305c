/* loader.c — helpers over ac_plugin_load for commands that only need a
 * plugin's declarations. */
#include "plugin/loader.h"
#include "plugin/plugin.h"

int ac_plugin_config_schema_from_file(const char *path, const ac_config *cfg,
                                      json_t **schema_out, ac_err *err) {
  *schema_out = NULL;
  ac_plugin_limits limits = {cfg->hook_timeout_ms, (size_t)cfg->lua_memory_mb << 20, NULL};
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load(path, &limits, &p, &out);
  if (!p)
    return ac_err_set(err, AC_ERR_INVALID, "%s", out.message);
  *schema_out = json_incref(ac_plugin_get_info(p)->config_schema);
  ac_plugin_free(p);
  return AC_OK;
}
