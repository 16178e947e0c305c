/* watcher.h — hot reload: inotify on every plugin directory triggers a
 * registry reload (debounced), so new, edited, renamed-over and deleted
 * plugin files take effect without a restart. */
#ifndef AC_PLUGIN_WATCHER_H
#define AC_PLUGIN_WATCHER_H

#include "core/err.h"
#include "core/log.h"
#include "plugin/registry.h"

typedef struct ac_watcher ac_watcher;

#define AC_WATCH_DEBOUNCE_MS 150

/* Watches builtin_dir and the colon-separated custom_dirs (directories that
 * do not exist yet are retried every second) and reloads r once a burst of
 * changes has been quiet for AC_WATCH_DEBOUNCE_MS, or at the latest 500 ms
 * after its first change. */
int ac_watcher_start(ac_registry *r, const char *builtin_dir, const char *custom_dirs,
                     ac_logger *log, ac_watcher **out, ac_err *err);
void ac_watcher_stop(ac_watcher *w);

#endif
