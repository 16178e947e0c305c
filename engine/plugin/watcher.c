/* watcher.c — inotify thread with a debounce. Editors that save by writing
 * a temporary file and renaming it over the plugin produce IN_MOVED_TO;
 * plain writes produce IN_CLOSE_WRITE; both, and deletions, lead to a
 * reload, which itself compares files by inode, size and mtime. */
#include "plugin/watcher.h"
#include "core/clock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define MAX_DIRS 32
#define MAX_BURST_MS 500 /* reload at least this often while changes keep coming */
#define MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | \
              IN_DELETE_SELF | IN_MOVE_SELF)

struct ac_watcher {
  ac_registry *registry;
  ac_logger *log;
  int fd;
  int stop_pipe[2];
  pthread_t thread;
  int started;
  char *dirs[MAX_DIRS];
  int wd[MAX_DIRS];
  int ndirs;
};

/* Adds watches for directories not watched yet; returns 1 if one was added. */
static int add_missing(ac_watcher *w) {
  int added = 0;
  for (int i = 0; i < w->ndirs; i++) {
    if (w->wd[i] >= 0)
      continue;
    w->wd[i] = inotify_add_watch(w->fd, w->dirs[i], MASK);
    if (w->wd[i] >= 0)
      added = 1;
  }
  return added;
}

static void *watch_main(void *arg) {
  ac_watcher *w = arg;
  char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
  int64_t pending_since = 0, burst_since = 0;
  for (;;) {
    struct pollfd p[2] = {{w->fd, POLLIN, 0}, {w->stop_pipe[0], POLLIN, 0}};
    int timeout = pending_since ? AC_WATCH_DEBOUNCE_MS : 1000;
    int n = poll(p, 2, timeout);
    if (n < 0 && errno != EINTR)
      break;
    if (p[1].revents)
      break;
    if (n > 0 && (p[0].revents & POLLIN)) {
      ssize_t len = read(w->fd, buf, sizeof buf);
      for (ssize_t off = 0; off < len;) {
        const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
          for (int i = 0; i < w->ndirs; i++)
            if (w->wd[i] == ev->wd)
              w->wd[i] = -1; /* the directory went away: watch again when it returns */
        off += (ssize_t)sizeof *ev + ev->len;
      }
      if (!pending_since)
        burst_since = ac_clock_mono_ms();
      pending_since = ac_clock_mono_ms();
    }
    if (add_missing(w) && !pending_since)
      pending_since = burst_since = ac_clock_mono_ms();
    /* a quiet moment ends a burst; a directory that never goes quiet (an
     * editor's swap file, a sync tool) must not hold reloads back forever */
    int64_t now = ac_clock_mono_ms();
    if (pending_since && (now - pending_since >= AC_WATCH_DEBOUNCE_MS ||
                          now - burst_since >= MAX_BURST_MS)) {
      pending_since = 0;
      int changed = ac_registry_reload(w->registry);
      if (changed)
        ac_logf(w->log, AC_LOG_INFO, "plugin files changed: %d catalog entries updated", changed);
    }
  }
  return NULL;
}

int ac_watcher_start(ac_registry *r, const char *builtin_dir, const char *custom_dirs,
                     ac_logger *log, ac_watcher **out, ac_err *err) {
  *out = NULL;
  ac_watcher *w = calloc(1, sizeof *w);
  if (!w)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  w->registry = r;
  w->log = log;
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->fd < 0 || pipe(w->stop_pipe) != 0) {
    if (w->fd >= 0)
      close(w->fd);
    free(w);
    return ac_err_set(err, AC_ERR_IO, "inotify: %s", strerror(errno));
  }
  if (builtin_dir && *builtin_dir)
    w->dirs[w->ndirs++] = strdup(builtin_dir);
  char *copy = strdup(custom_dirs ? custom_dirs : "");
  for (char *save = NULL, *d = strtok_r(copy, ":", &save); d && w->ndirs < MAX_DIRS;
       d = strtok_r(NULL, ":", &save))
    if (*d)
      w->dirs[w->ndirs++] = strdup(d);
  free(copy);
  for (int i = 0; i < w->ndirs; i++)
    w->wd[i] = -1;
  add_missing(w);
  w->started = pthread_create(&w->thread, NULL, watch_main, w) == 0;
  if (!w->started) {
    ac_watcher_stop(w);
    return ac_err_set(err, AC_ERR_NOMEM, "cannot start the plugin watcher");
  }
  *out = w;
  return AC_OK;
}

void ac_watcher_stop(ac_watcher *w) {
  if (!w)
    return;
  if (w->started) {
    ssize_t ignored = write(w->stop_pipe[1], "x", 1);
    (void)ignored;
    pthread_join(w->thread, NULL);
  }
  close(w->fd);
  close(w->stop_pipe[0]);
  close(w->stop_pipe[1]);
  for (int i = 0; i < w->ndirs; i++)
    free(w->dirs[i]);
  free(w);
}
