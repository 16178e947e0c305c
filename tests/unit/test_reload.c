/* test_reload.c — hot reload of a running `agentcore serve` (docs/operations.md): new,
 * edited, rename-saved, broken, fixed and deleted plugin files show in
 * GET /api/v1/plugins within 2 s with no restart or reload call; a broken
 * edit keeps the old version serving; a call in flight finishes on the
 * version it started with; SIGHUP reloads what inotify cannot see, also
 * when it arrives during a reload; a file waiting for a taken id loads once
 * the id is free; a plugin directory created after start is picked up; a
 * directory that never goes quiet still reloads; a new version whose schema
 * no longer accepts a stored config skips the plugin with kind "contract". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hostflow_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ALL_PERMS                                                                           \
  (AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |              \
   AC_PERM_QUERY_PLUGINS)
#define SEEN_WITHIN_MS 2000  /* docs/operations.md: no restart, ~2 s */
#define LATE_DIR_WITHIN_MS 3000 /* a missing directory is looked for every second */
#define NS "rl-ns"

static ac_test_server srv;
static char *admin;
static char dir[64];     /* the watched plugin directory */
static char late[80];    /* listed in AGENTCORE_PLUGIN_DIRS, created later */
static char outside[64]; /* not watched: targets of symlinks */
static int teardown_failed;

/* ---- files ----------------------------------------------------------------- */

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Writes path in place (truncate and write: one IN_CLOSE_WRITE). */
static void write_in_place(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_true(fputs(text, f) >= 0);
  assert_int_equal(fclose(f), 0);
}

/* Writes d/name as editors that save by rename do: a temporary file in the
 * same directory, then rename(2) over the plugin (IN_MOVED_TO). */
static void write_by_rename(const char *d, const char *name, const char *text) {
  char tmp[256], path[256];
  snprintf(tmp, sizeof tmp, "%s/%s.save-tmp", d, name);
  snprintf(path, sizeof path, "%s/%s", d, name);
  write_in_place(tmp, text);
  assert_int_equal(rename(tmp, path), 0);
}

static void path_in(char *out, size_t size, const char *d, const char *name) {
  snprintf(out, size, "%s/%s", d, name);
}

static void remove_tree(const char *d) {
  DIR *h = opendir(d);
  struct dirent *e;
  while (h && (e = readdir(h))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", d, e->d_name);
    unlink(path);
  }
  if (h)
    closedir(h);
  rmdir(d);
}

/* ---- plugin sources ------------------------------------------------------------ */

/* An agent_query plugin whose one result's title is "<id> <version>". */
static void echo_source(char *out, size_t size, const char *id, const char *version) {
  snprintf(out, size,
           "return {\n"
           "  id = '%s', name = 'Echo %s', category = 'test', version = '%s',\n"
           "  capabilities = { PluginCapability.AgentQuery },\n"
           "  onAgentQuery = function(query, context)\n"
           "    return { { type = 'echo', title = '%s %s' } }\n"
           "  end,\n"
           "}\n",
           id, id, version, id, version);
}

static void write_echo(const char *d, const char *id, const char *version, int by_rename) {
  char src[1024], name[128], path[256];
  echo_source(src, sizeof src, id, version);
  snprintf(name, sizeof name, "%s.lua", id);
  path_in(path, sizeof path, d, name);
  if (by_rename)
    write_by_rename(d, name, src);
  else
    write_in_place(path, src);
}

/* ---- catalog and queries --------------------------------------------------------- */

static const char *str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

/* The custom catalog entries of id (a new array: two files may claim one
 * id), or NULL when the catalog cannot be read. Caller decrefs. */
static json_t *catalog_entries(const char *id) {
  json_t *c = ac_test_json(&srv, "GET", "/api/v1/plugins", admin, NULL, 200, NULL);
  if (!c)
    return NULL;
  json_t *found = json_array(), *e;
  size_t i;
  json_array_foreach(json_object_get(c, "plugins"), i, e) {
    if (str(e, "id") && strcmp(str(e, "id"), id) == 0 && str(e, "source") &&
        strcmp(str(e, "source"), "custom") == 0)
      json_array_append(found, e);
  }
  json_decref(c);
  return found;
}

/* The only custom catalog entry of id (a copy), or NULL. */
static json_t *catalog_entry(const char *id) {
  json_t *all = catalog_entries(id);
  json_t *e = json_array_size(all) == 1 ? json_incref(json_array_get(all, 0)) : NULL;
  json_decref(all);
  return e;
}

/* What wait_catalog waits for: an entry of id with this status (NULL: no
 * entry left), this version unless NULL, an error containing error_has
 * unless NULL. */
typedef struct want {
  const char *id, *status, *version, *error_has;
} want;

static int entry_matches(const json_t *e, const want *w) {
  const char *err = str(e, "error");
  return str(e, "status") && strcmp(str(e, "status"), w->status) == 0 &&
         (!w->version || (str(e, "version") && strcmp(str(e, "version"), w->version) == 0)) &&
         (!w->error_has || (err && strstr(err, w->error_has)));
}

/* Polls GET /api/v1/plugins every 50 ms until w holds. Returns the ms it
 * took, or -1 after within_ms (what was seen last is printed). *entry
 * (optional) gets the matching entry (caller decrefs). */
static long long wait_for(const want *w, long long within_ms, json_t **entry) {
  long long start = ac_hostflow_now_ms();
  if (entry)
    *entry = NULL;
  for (;;) {
    json_t *all = catalog_entries(w->id), *e, *hit = NULL;
    size_t i;
    json_array_foreach(all, i, e) {
      if (w->status && entry_matches(e, w))
        hit = e;
    }
    int match = w->status ? hit != NULL : all && json_array_size(all) == 0;
    long long took = ac_hostflow_now_ms() - start;
    if (match) {
      if (entry)
        *entry = json_incref(hit);
      json_decref(all);
      return took;
    }
    if (took > within_ms) {
      char *text = all ? json_dumps(all, JSON_COMPACT) : NULL;
      fprintf(stderr, "catalog: %s not %s %s %s within %lld ms; last seen: %s\n", w->id,
              w->status ? w->status : "gone", w->version ? w->version : "",
              w->error_has ? w->error_has : "", within_ms, text ? text : "(none)");
      free(text);
      json_decref(all);
      return -1;
    }
    json_decref(all);
    sleep_ms(50);
  }
}

static long long wait_catalog(const char *id, const char *status, const char *version,
                              long long within_ms, json_t **entry) {
  want w = {id, status, version, NULL};
  return wait_for(&w, within_ms, entry);
}

static json_t *query(void) {
  json_t *r = ac_test_json(&srv, "POST", "/api/v1/namespaces/" NS "/query", admin,
                           "{\"query\":\"hello\"}", 200, "query-response.json");
  assert_non_null(r);
  return r;
}

/* The title of plugin's first result in a query answer, or NULL. */
static const char *result_title(const json_t *answer, const char *plugin) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(answer, "results"), i, r) {
    if (strcmp(str(r, "pluginId"), plugin) == 0)
      return str(r, "title");
  }
  return NULL;
}

/* plugin's entry in a query answer's errors (borrowed), or NULL. */
static const json_t *query_error(const json_t *answer, const char *plugin) {
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(answer, "errors"), i, e) {
    if (strcmp(str(e, "pluginId"), plugin) == 0)
      return e;
  }
  return NULL;
}

/* Asserts the namespace's query answers title for plugin, with no error. */
static void expect_serving(const char *plugin, const char *title) {
  json_t *a = query();
  const char *got = result_title(a, plugin);
  if (!got || strcmp(got, title) != 0 || query_error(a, plugin)) {
    char *text = json_dumps(a, JSON_COMPACT);
    fprintf(stderr, "expected %s to answer \"%s\": %s\n", plugin, title, text);
    free(text);
  }
  assert_non_null(got);
  assert_string_equal(got, title);
  assert_null(query_error(a, plugin));
  json_decref(a);
}

static void enable(const char *plugin, const char *config) {
  assert_int_equal(ac_hostflow_enable(&srv, admin, NS, plugin, config), 0);
}

/* ---- setup ----------------------------------------------------------------------- */

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/ac-reload-XXXXXX");
  snprintf(outside, sizeof outside, "/tmp/ac-reload-out-XXXXXX");
  if (!mkdtemp(dir) || !mkdtemp(outside))
    return -1;
  snprintf(late, sizeof late, "%s-late", dir); /* must not exist yet */
  /* the watched directory starts empty: everything below arrives live */
  char dirs_env[256];
  snprintf(dirs_env, sizeof dirs_env, "AGENTCORE_PLUGIN_DIRS=%s:%s", dir, late);
  /* the in-flight test holds a call open for a few seconds */
  const char *const env[] = {dirs_env, "AGENTCORE_HOOK_TIMEOUT_MS=5000", NULL};
  if (ac_test_server_start(&srv, "reload", env) != 0)
    return -1;
  admin = ac_test_token("admin", ALL_PERMS, 1, NULL, 3600);
  if (!admin || ac_hostflow_tenant(&srv, admin, "rl-dept", NS) != 0)
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(admin);
  int rc = ac_test_server_stop(&srv);
  remove_tree(dir);
  remove_tree(late);
  remove_tree(outside);
  /* a server that did not exit cleanly (an ASan report included) fails the
   * program: cmocka does not count a failed group teardown */
  teardown_failed = rc != 0;
  if (teardown_failed)
    fprintf(stderr, "agentcore serve exited with status %d\n", rc);
  return teardown_failed ? -1 : 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static void new_file_appears(void **state) {
  (void)state;
  assert_null(catalog_entry("echo"));
  write_echo(dir, "echo", "1.0.0", 0);
  json_t *e;
  long long took = wait_catalog("echo", "ready", "1.0.0", SEEN_WITHIN_MS, &e);
  assert_true(took >= 0);
  assert_true(ac_test_schema_valid("catalog-entry.json", e));
  assert_true(json_is_null(json_object_get(e, "error")));
  assert_string_equal(str(e, "name"), "Echo echo");
  json_decref(e);
  fprintf(stderr, "new file seen after %lld ms\n", took);
  enable("echo", "{}");
  expect_serving("echo", "echo 1.0.0");
}

static void edit_in_place(void **state) {
  (void)state;
  write_echo(dir, "echo", "1.1.0", 0);
  long long took = wait_catalog("echo", "ready", "1.1.0", SEEN_WITHIN_MS, NULL);
  assert_true(took >= 0);
  fprintf(stderr, "in-place edit seen after %lld ms\n", took);
  expect_serving("echo", "echo 1.1.0");
}

static void rename_save(void **state) {
  (void)state;
  write_echo(dir, "echo", "1.2.0", 1);
  long long took = wait_catalog("echo", "ready", "1.2.0", SEEN_WITHIN_MS, NULL);
  assert_true(took >= 0);
  fprintf(stderr, "rename-save seen after %lld ms\n", took);
  expect_serving("echo", "echo 1.2.0");
  /* the temporary file never became a plugin of its own */
  assert_null(catalog_entry("echo.lua.save-tmp"));
}

/* Broken versions of echo.lua: each must show as status "error" with a
 * message naming the file (and the line where Lua gives one) while 1.2.0
 * keeps answering. */
static const struct {
  const char *what;
  int by_rename;
  const char *source;
  const char *message; /* expected in the error, after the file name */
} broken[] = {
    {"syntax error", 0,
     "return {\n  id = 'echo', name = 'Echo',\n  category = = 'test',\n}\n", "echo.lua:3:"},
    {"error raised while loading", 1, "local x = 1\nerror('boom while loading')\nreturn {}\n",
     "echo.lua:2: boom while loading"},
    {"contract violation", 1,
     "return { id = 'echo', name = 'Echo', category = 'test', version = '9.9.9',\n"
     "  capabilities = { 'agent_query', 'teleport' },\n"
     "  onAgentQuery = function() return {} end }\n",
     "teleport"},
    {"schema the engine does not support", 0,
     "return { id = 'echo', name = 'Echo', category = 'test', version = '9.9.8',\n"
     "  configSchema = { type = 'object', propertyNames = { pattern = '^a' } },\n"
     "  capabilities = { 'agent_query' },\n"
     "  onAgentQuery = function() return {} end }\n",
     "propertyNames"},
};

static void broken_edit_keeps_old_version(void **state) {
  (void)state;
  char path[256];
  path_in(path, sizeof path, dir, "echo.lua");
  for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
    fprintf(stderr, "broken edit: %s\n", broken[i].what);
    if (broken[i].by_rename)
      write_by_rename(dir, "echo.lua", broken[i].source);
    else
      write_in_place(path, broken[i].source);
    json_t *e;
    want w = {"echo", "error", NULL, broken[i].message};
    long long took = wait_for(&w, SEEN_WITHIN_MS, &e);
    assert_true(took >= 0);
    assert_true(ac_test_schema_valid("catalog-entry.json", e));
    const char *msg = str(e, "error");
    assert_non_null(msg);
    if (!strstr(msg, broken[i].message) || !strstr(msg, path))
      fprintf(stderr, "error message: %s\n", msg);
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, broken[i].message));
    /* the entry still describes the version that serves */
    assert_string_equal(str(e, "version"), "1.2.0");
    json_decref(e);
    expect_serving("echo", "echo 1.2.0");
  }
}

static void fix_replaces_broken_version(void **state) {
  (void)state;
  write_echo(dir, "echo", "1.3.0", 1);
  json_t *e;
  long long took = wait_catalog("echo", "ready", "1.3.0", SEEN_WITHIN_MS, &e);
  assert_true(took >= 0);
  assert_true(json_is_null(json_object_get(e, "error")));
  json_decref(e);
  expect_serving("echo", "echo 1.3.0");
}

/* ---- a call in flight keeps its version ------------------------------------------- */

/* 1.0.0 records that its call started, then waits (spinning, inside its
 * time) until the test sets "release" in its context.db; 2.0.0 answers at
 * once. */
static const char slow_v1[] =
    "return { id = 'slow', name = 'Slow', category = 'test', version = '1.0.0',\n"
    "  capabilities = { 'agent_query' },\n"
    "  onAgentQuery = function(query, context)\n"
    "    context.db.set('started', true)\n"
    "    while context.db.get('release') == nil do\n"
    "      local t = os.clock()\n"
    "      while os.clock() - t < 0.02 do end\n"
    "    end\n"
    "    return { { type = 'echo', title = 'slow 1.0.0' } }\n"
    "  end }\n";
static const char slow_v2[] =
    "return { id = 'slow', name = 'Slow', category = 'test', version = '2.0.0',\n"
    "  capabilities = { 'agent_query' },\n"
    "  onAgentQuery = function(query, context)\n"
    "    return { { type = 'echo', title = 'slow 2.0.0' } }\n"
    "  end }\n";

static void *query_thread(void *arg) {
  json_t **out = arg;
  *out = ac_test_json(&srv, "POST", "/api/v1/namespaces/" NS "/query", admin,
                      "{\"query\":\"slow\"}", 200, "query-response.json");
  return NULL;
}

static char *kv_value(const char *key) {
  const char *p[] = {NS, "slow", key};
  return ac_test_server_query(&srv, 0,
                              "SELECT value::text FROM plugin_kv WHERE namespace_id = $1 "
                              "AND plugin_id = $2 AND key = $3",
                              3, p);
}

static void call_in_flight_finishes_on_old_version(void **state) {
  (void)state;
  write_by_rename(dir, "slow.lua", slow_v1);
  assert_true(wait_catalog("slow", "ready", "1.0.0", SEEN_WITHIN_MS, NULL) >= 0);
  enable("slow", "{}");

  json_t *first = NULL;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, query_thread, &first), 0);
  long long end = ac_hostflow_now_ms() + 3000;
  char *started = NULL;
  while (ac_hostflow_now_ms() < end) {
    free(started);
    started = kv_value("started");
    if (started && *started)
      break;
    sleep_ms(20);
  }
  assert_non_null(started);
  assert_string_equal(started, "true");
  free(started);

  /* replaced while 1.0.0 is still running */
  write_by_rename(dir, "slow.lua", slow_v2);
  long long took = wait_catalog("slow", "ready", "2.0.0", SEEN_WITHIN_MS, NULL);
  expect_serving("slow", "slow 2.0.0"); /* new calls take the new version */

  const char *p[] = {NS, "slow"};
  char *set = ac_test_server_query(&srv, 0,
                                   "INSERT INTO plugin_kv (namespace_id, plugin_id, key, value) "
                                   "VALUES ($1, $2, 'release', 'true')",
                                   2, p);
  assert_non_null(set);
  free(set);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_true(took >= 0);
  assert_non_null(first);
  /* the call that was running finished on the version it started with */
  assert_null(query_error(first, "slow"));
  assert_non_null(result_title(first, "slow"));
  assert_string_equal(result_title(first, "slow"), "slow 1.0.0");
  json_decref(first);
  json_t *gone = ac_test_json(&srv, "DELETE", "/api/v1/namespaces/" NS "/plugins/slow", admin,
                              NULL, 204, NULL);
  assert_non_null(gone);
  json_decref(gone);
}

/* ---- SIGHUP ------------------------------------------------------------------------- */

static int server_alive(void) {
  int status;
  return srv.pid > 0 && waitpid(srv.pid, &status, WNOHANG) == 0;
}

/* linked.lua is a symlink to a file outside every watched directory:
 * editing the target makes no inotify event, so only SIGHUP (or the reload
 * route) can pick the change up. */
static void sighup_reloads_what_inotify_cannot_see(void **state) {
  (void)state;
  char target[256], link_path[256], src[1024];
  path_in(target, sizeof target, outside, "linked-target.lua");
  path_in(link_path, sizeof link_path, dir, "linked.lua");
  echo_source(src, sizeof src, "linked", "1.0.0");
  write_in_place(target, src);
  assert_int_equal(symlink(target, link_path), 0);
  assert_true(wait_catalog("linked", "ready", "1.0.0", SEEN_WITHIN_MS, NULL) >= 0);

  echo_source(src, sizeof src, "linked", "2.0.0");
  write_in_place(target, src);
  sleep_ms(1000);
  json_t *e = catalog_entry("linked");
  assert_non_null(e);
  assert_string_equal(str(e, "version"), "1.0.0"); /* premise: no event reached the watcher */
  json_decref(e);

  assert_int_equal(kill(srv.pid, SIGHUP), 0);
  long long took = wait_catalog("linked", "ready", "2.0.0", SEEN_WITHIN_MS, NULL);
  assert_true(took >= 0);
  fprintf(stderr, "SIGHUP reload seen after %lld ms\n", took);
  assert_true(server_alive());
  json_t *h = ac_test_json(&srv, "GET", "/healthz", NULL, NULL, 200, NULL);
  assert_non_null(h);
  json_decref(h);
  /* a second SIGHUP with nothing changed keeps everything as it is */
  assert_int_equal(kill(srv.pid, SIGHUP), 0);
  sleep_ms(300);
  assert_true(server_alive());
  assert_true(wait_catalog("linked", "ready", "2.0.0", 0, NULL) >= 0);
  assert_true(wait_catalog("echo", "ready", "1.3.0", 0, NULL) >= 0);

  /* the reload route does the same and answers with the new catalog */
  echo_source(src, sizeof src, "linked", "3.0.0");
  write_in_place(target, src);
  json_t *c = ac_test_json(&srv, "POST", "/api/v1/plugins/reload", admin, NULL, 200,
                           "catalog.json");
  assert_non_null(c);
  size_t i;
  json_t *x;
  const char *version = NULL;
  json_array_foreach(json_object_get(c, "plugins"), i, x) {
    if (strcmp(str(x, "id"), "linked") == 0)
      version = str(x, "version");
  }
  assert_non_null(version);
  assert_string_equal(version, "3.0.0");
  json_decref(c);
  assert_int_equal(unlink(link_path), 0);
  assert_true(wait_catalog("linked", NULL, NULL, SEEN_WITHIN_MS, NULL) >= 0);
}

/* Signals that arrive while a SIGHUP reload is still running (a plugin
 * whose loading takes most of a second) queue behind it: the server stays
 * up and ends with the newest files loaded. */
static void sighup_during_a_reload(void **state) {
  (void)state;
  static const char slow_load[] =
      "local t = os.clock()\n"
      "while os.clock() - t < 0.6 do end\n"
      "return { id = 'heavy', name = 'Heavy', category = 'test', version = '%s',\n"
      "  capabilities = { 'agent_query' },\n"
      "  onAgentQuery = function() return {} end }\n";
  char target[256], link_path[256], src[512];
  path_in(target, sizeof target, outside, "heavy-target.lua");
  path_in(link_path, sizeof link_path, dir, "heavy.lua");
  snprintf(src, sizeof src, slow_load, "1.0.0");
  write_in_place(target, src);
  assert_int_equal(symlink(target, link_path), 0);
  assert_int_equal(kill(srv.pid, SIGHUP), 0); /* this case is about SIGHUP, not inotify */
  assert_true(wait_catalog("heavy", "ready", "1.0.0", 10000, NULL) >= 0);

  snprintf(src, sizeof src, slow_load, "2.0.0");
  write_in_place(target, src);
  assert_int_equal(kill(srv.pid, SIGHUP), 0);
  sleep_ms(200); /* the first reload is loading heavy.lua now */
  snprintf(src, sizeof src, slow_load, "3.0.0");
  write_in_place(target, src);
  assert_int_equal(kill(srv.pid, SIGHUP), 0);
  assert_int_equal(kill(srv.pid, SIGHUP), 0);
  /* two 0.6 s (CPU time) loads run back to back: on a loaded machine that
   * takes longer in wall time, and what matters is the end state */
  long long took = wait_catalog("heavy", "ready", "3.0.0", 10000, NULL);
  assert_true(server_alive());
  assert_true(took >= 0);
  assert_int_equal(unlink(link_path), 0);
  assert_true(wait_catalog("heavy", NULL, NULL, SEEN_WITHIN_MS, NULL) >= 0);
}

/* ---- ids, deletions, directories ---------------------------------------------------- */

/* Two files with one id: the first (by name) serves, the other shows the
 * conflict; once the holder goes, the other takes over without any further
 * change to its own file. */
static void id_freed_by_deletion_is_taken_over(void **state) {
  (void)state;
  char a[256], b[256], src[1024];
  echo_source(src, sizeof src, "dup", "1.0.0");
  path_in(a, sizeof a, dir, "dup-a.lua");
  write_in_place(a, src);
  assert_true(wait_catalog("dup", "ready", "1.0.0", SEEN_WITHIN_MS, NULL) >= 0);
  echo_source(src, sizeof src, "dup", "2.0.0");
  path_in(b, sizeof b, dir, "dup-b.lua");
  write_in_place(b, src);
  json_t *e;
  assert_true(wait_catalog("dup", "error", NULL, SEEN_WITHIN_MS, &e) >= 0);
  assert_non_null(strstr(str(e, "error"), "already used by"));
  assert_non_null(strstr(str(e, "error"), a));
  json_decref(e);
  assert_true(wait_catalog("dup", "ready", "1.0.0", 0, NULL) >= 0);

  assert_int_equal(unlink(a), 0);
  long long took = wait_catalog("dup", "ready", "2.0.0", SEEN_WITHIN_MS, NULL);
  assert_true(took >= 0);
  json_t *c = ac_test_json(&srv, "GET", "/api/v1/plugins", admin, NULL, 200, "catalog.json");
  assert_non_null(c);
  size_t i, count = 0;
  json_t *x;
  json_array_foreach(json_object_get(c, "plugins"), i, x) count += strcmp(str(x, "id"), "dup") == 0;
  assert_int_equal(count, 1);
  json_decref(c);
  assert_int_equal(unlink(b), 0);
  assert_true(wait_catalog("dup", NULL, NULL, SEEN_WITHIN_MS, NULL) >= 0);
}

static void deleted_file_disappears(void **state) {
  (void)state;
  char path[256];
  path_in(path, sizeof path, dir, "echo.lua");
  assert_int_equal(unlink(path), 0);
  long long took = wait_catalog("echo", NULL, NULL, SEEN_WITHIN_MS, NULL);
  assert_true(took >= 0);
  fprintf(stderr, "deletion seen after %lld ms\n", took);
  /* still enabled in the namespace, but no code to run */
  json_t *a = query();
  assert_null(result_title(a, "echo"));
  const json_t *err = query_error(a, "echo");
  assert_non_null(err);
  assert_non_null(strstr(str(err, "message"), "not loaded"));
  json_decref(a);
  json_t *gone = ac_test_json(&srv, "DELETE", "/api/v1/namespaces/" NS "/plugins/echo", admin,
                              NULL, 204, NULL);
  assert_non_null(gone);
  json_decref(gone);
}

static void directory_created_after_start(void **state) {
  (void)state;
  struct stat st;
  assert_int_equal(stat(late, &st), -1); /* listed at start, absent until now */
  assert_int_equal(mkdir(late, 0700), 0);
  write_echo(late, "late", "1.0.0", 0);
  long long took = wait_catalog("late", "ready", "1.0.0", LATE_DIR_WITHIN_MS, NULL);
  assert_true(took >= 0);
  fprintf(stderr, "new directory seen after %lld ms\n", took);
  /* once watched, it is watched like the others */
  write_echo(late, "late", "1.1.0", 1);
  assert_true(wait_catalog("late", "ready", "1.1.0", SEEN_WITHIN_MS, NULL) >= 0);

  /* removed: its plugins go; created again: watched again */
  remove_tree(late);
  assert_true(wait_catalog("late", NULL, NULL, SEEN_WITHIN_MS, NULL) >= 0);
  assert_int_equal(mkdir(late, 0700), 0);
  write_echo(late, "late", "2.0.0", 0);
  assert_true(wait_catalog("late", "ready", "2.0.0", LATE_DIR_WITHIN_MS, NULL) >= 0);
  write_echo(late, "late", "2.1.0", 0);
  assert_true(wait_catalog("late", "ready", "2.1.0", SEEN_WITHIN_MS, NULL) >= 0);
}

/* Something else in the directory changing all the time (an editor's swap
 * file, a sync tool) must not hold reloads back forever. */
static atomic_int noise_stop;

static void *noise_thread(void *arg) {
  (void)arg;
  char path[256];
  path_in(path, sizeof path, dir, "notes.txt");
  for (int i = 0; !noise_stop && i < 200; i++) {
    FILE *f = fopen(path, "w");
    if (f) {
      fprintf(f, "%d\n", i);
      fclose(f);
    }
    sleep_ms(40);
  }
  return NULL;
}

static void busy_directory_does_not_hold_reloads_back(void **state) {
  (void)state;
  noise_stop = 0;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, noise_thread, NULL), 0);
  sleep_ms(200);
  write_echo(dir, "busy", "1.0.0", 1);
  long long took = wait_catalog("busy", "ready", "1.0.0", SEEN_WITHIN_MS, NULL);
  write_echo(dir, "busy", "1.1.0", 0);
  long long took2 = wait_catalog("busy", "ready", "1.1.0", SEEN_WITHIN_MS, NULL);
  noise_stop = 1;
  pthread_join(t, NULL);
  fprintf(stderr, "in a busy directory: seen after %lld ms and %lld ms\n", took, took2);
  assert_true(took >= 0);
  assert_true(took2 >= 0);
  char path[256];
  path_in(path, sizeof path, dir, "busy.lua");
  unlink(path);
  path_in(path, sizeof path, dir, "notes.txt");
  unlink(path);
  assert_true(wait_catalog("busy", NULL, NULL, SEEN_WITHIN_MS, NULL) >= 0);
}

/* ---- a new schema under a stored config ------------------------------------------- */

static const char strict_src[] =
    "return { id = 'strict', name = 'Strict', category = 'test', version = '%s',\n"
    "  configSchema = { type = 'object', additionalProperties = false,\n"
    "    required = { 'level' }, properties = { level = { type = '%s' } } },\n"
    "  capabilities = { 'agent_query', 'approval_hook' },\n"
    "  onApprovalCreated = function(event, context) end,\n"
    "  onAgentQuery = function(query, context)\n"
    "    return { { type = 'echo', title = 'strict ' .. tostring(context.config.level) } }\n"
    "  end }\n";

static void write_strict(const char *version, const char *level_type) {
  char src[1024];
  snprintf(src, sizeof src, strict_src, version, level_type);
  write_by_rename(dir, "strict.lua", src);
}

static void schema_change_skips_stored_config(void **state) {
  (void)state;
  write_strict("1.0.0", "string");
  write_echo(dir, "buddy", "1.0.0", 1);
  assert_true(wait_catalog("strict", "ready", "1.0.0", SEEN_WITHIN_MS, NULL) >= 0);
  assert_true(wait_catalog("buddy", "ready", "1.0.0", SEEN_WITHIN_MS, NULL) >= 0);
  enable("strict", "{\"level\":\"high\"}");
  enable("buddy", "{}");
  expect_serving("strict", "strict high");

  /* 2.0.0 wants an integer: the stored "high" no longer validates */
  write_strict("2.0.0", "integer");
  assert_true(wait_catalog("strict", "ready", "2.0.0", SEEN_WITHIN_MS, NULL) >= 0);
  json_t *a = query();
  assert_null(result_title(a, "strict"));
  const json_t *err = query_error(a, "strict");
  assert_non_null(err);
  assert_string_equal(str(err, "kind"), "contract");
  const char *msg = str(err, "message");
  fprintf(stderr, "stale config: %s\n", msg);
  assert_non_null(strstr(msg, "configSchema"));
  assert_non_null(strstr(msg, "/config/level"));
  /* the other plugins still answer */
  assert_non_null(result_title(a, "buddy"));
  assert_string_equal(result_title(a, "buddy"), "buddy 1.0.0");
  assert_int_equal(json_array_size(json_object_get(a, "errors")), 1);
  json_decref(a);

  /* events skip it too, with the same reason */
  long st = 0;
  char *id = ac_hostflow_emit(&srv, admin, NS,
                              "{\"type\":\"approval.created\",\"approvalId\":\"a-1\"}", &st);
  assert_non_null(id);
  json_t *ev = ac_hostflow_wait_done(&srv, admin, NS, id, 10000);
  free(id);
  assert_non_null(ev);
  assert_string_equal(str(ev, "status"), "done");
  const json_t *run = ac_hostflow_run(ev, "strict");
  assert_non_null(run);
  assert_string_equal(str(run, "status"), "skipped");
  assert_non_null(strstr(str(run, "error"), "configSchema"));
  json_decref(ev);

  /* a config that fits the new schema brings it back */
  json_t *r = ac_test_json(&srv, "PATCH", "/api/v1/namespaces/" NS "/plugins/strict", admin,
                           "{\"config\":{\"level\":3}}", 200, "plugin-record.json");
  assert_non_null(r);
  json_decref(r);
  expect_serving("strict", "strict 3");
  expect_serving("buddy", "buddy 1.0.0");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(new_file_appears),
      cmocka_unit_test(edit_in_place),
      cmocka_unit_test(rename_save),
      cmocka_unit_test(broken_edit_keeps_old_version),
      cmocka_unit_test(fix_replaces_broken_version),
      cmocka_unit_test(call_in_flight_finishes_on_old_version),
      cmocka_unit_test(sighup_reloads_what_inotify_cannot_see),
      cmocka_unit_test(sighup_during_a_reload),
      cmocka_unit_test(id_freed_by_deletion_is_taken_over),
      cmocka_unit_test(deleted_file_disappears),
      cmocka_unit_test(directory_created_after_start),
      cmocka_unit_test(busy_directory_does_not_hold_reloads_back),
      cmocka_unit_test(schema_change_skips_stored_config),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  return failed || teardown_failed ? 1 : 0;
}
