/* registry.c — plugin directories, versions, and pooled states. */
#include "plugin/registry.h"
#include "core/clock.h"
#include "core/hash.h"

#include <dirent.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ac_plugin_handle {
  atomic_int refs; /* taken from an entry under the registry lock, so the
                      entry's own reference keeps it above zero meanwhile */
  ac_registry *registry;
  ac_plugin *plugin;
  uint64_t serial;
  atomic_int no_inline; /* a call could not leave a request thread */
  atomic_int stuck;     /* calls of this version abandoned in C */
  atomic_int clean;     /* calls that ended within their deadline */
};

/* A version's calls start on a request thread only after this many of
 * them ended cleanly on the workers: a plugin that spins or stalls in C
 * from its first call never takes a request thread's time. */
#define INLINE_PROBATION 16

/* An idle state, ready for its (version, namespace): states serve one
 * namespace only, so nothing a call leaves behind reaches another tenant.
 * Every idle state is on one registry-wide LRU list and in a hash bucket
 * for its key. */
typedef struct idle_state {
  ac_vm *vm;
  ac_plugin_handle *h;
  size_t bytes;
  unsigned bucket;
  struct idle_state *lru_prev, *lru_next;
  struct idle_state *bucket_next;
  char ns[];
} idle_state;

#define IDLE_BUCKETS 4096

/* One plugin file as last seen on disk. */
typedef struct entry {
  char *path;
  int builtin;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  int seen; /* marked during a scan */
  ac_plugin_handle *good; /* current good version, or NULL */
  uint64_t good_id_hash;  /* of good's id: lookups compare it first */
  char *error;            /* last load error, or NULL */
  char fallback_id[65];   /* shown when no version ever loaded */
  int64_t loaded_at;      /* wall ms of the good version */
  struct entry *next;
} entry;

struct ac_registry {
  pthread_mutex_t lock;
  pthread_mutex_t reload_lock; /* one reload at a time */
  char *builtin_dir;
  char *custom_dirs;
  ac_plugin_limits limits;
  entry *entries; /* built-in entries first, then custom, by name */
  uint64_t generation;
  uint64_t next_serial;
  int ready;

  /* idle states of every version, under one budget */
  pthread_mutex_t idle_lock;
  idle_state *buckets[IDLE_BUCKETS];
  idle_state *lru_head, *lru_tail; /* most recently used first */
  size_t idle_bytes, idle_budget;
  int idle_count, idle_max;
};

/* ---- idle states ---------------------------------------------------------- */

static unsigned idle_hash(const ac_plugin_handle *h, const char *ns) {
  uint64_t x = ac_hash_str(AC_HASH_SEED ^ (uint64_t)(uintptr_t)h, ns ? ns : "");
  return (unsigned)(x % IDLE_BUCKETS);
}

/* Unlinks s from its bucket and the LRU list (idle_lock held). */
static void idle_unlink(ac_registry *r, idle_state *s) {
  idle_state **pp = &r->buckets[s->bucket];
  while (*pp != s)
    pp = &(*pp)->bucket_next;
  *pp = s->bucket_next;
  if (s->lru_prev)
    s->lru_prev->lru_next = s->lru_next;
  else
    r->lru_head = s->lru_next;
  if (s->lru_next)
    s->lru_next->lru_prev = s->lru_prev;
  else
    r->lru_tail = s->lru_prev;
  r->idle_bytes -= s->bytes;
  r->idle_count--;
}

static void idle_free(idle_state *s) {
  ac_vm_free(s->vm);
  free(s);
}

ac_vm *ac_plugin_handle_idle_state(ac_plugin_handle *h, const char *ns) {
  ac_registry *r = h->registry;
  unsigned b = idle_hash(h, ns);
  idle_state *found = NULL;
  pthread_mutex_lock(&r->idle_lock);
  for (idle_state *s = r->buckets[b]; s; s = s->bucket_next)
    if (s->h == h && strcmp(s->ns, ns ? ns : "") == 0) {
      found = s;
      idle_unlink(r, s);
      break;
    }
  pthread_mutex_unlock(&r->idle_lock);
  if (!found)
    return NULL;
  ac_vm *vm = found->vm;
  found->vm = NULL;
  idle_free(found);
  return vm;
}

ac_vm *ac_plugin_handle_take_state(ac_plugin_handle *h, const char *ns, ac_outcome *out) {
  ac_vm *vm = ac_plugin_handle_idle_state(h, ns);
  if (vm)
    return vm;
  if (ac_plugin_new_state(h->plugin, &vm, out) != AC_OK)
    return NULL;
  return vm;
}

void ac_plugin_handle_give_state(ac_plugin_handle *h, const char *ns, ac_vm *vm) {
  if (!vm)
    return;
  ac_registry *r = h->registry;
  size_t len = ns ? strlen(ns) : 0;
  idle_state *s = ac_vm_usable(vm) && r->idle_max > 0 ? malloc(sizeof *s + len + 1) : NULL;
  if (!s) {
    ac_vm_free(vm);
    return;
  }
  memset(s, 0, sizeof *s);
  memcpy(s->ns, ns ? ns : "", len + 1);
  s->vm = vm;
  s->h = h;
  s->bytes = ac_vm_memory_used(vm);
  s->bucket = idle_hash(h, ns);
  idle_state *evicted = NULL;
  pthread_mutex_lock(&r->idle_lock);
  s->bucket_next = r->buckets[s->bucket];
  r->buckets[s->bucket] = s;
  s->lru_next = r->lru_head;
  if (r->lru_head)
    r->lru_head->lru_prev = s;
  else
    r->lru_tail = s;
  r->lru_head = s;
  r->idle_bytes += s->bytes;
  r->idle_count++;
  /* over budget: the least recently used states go, oldest first */
  while (r->lru_tail && (r->idle_count > r->idle_max || r->idle_bytes > r->idle_budget)) {
    idle_state *old = r->lru_tail;
    idle_unlink(r, old);
    old->bucket_next = evicted;
    evicted = old;
  }
  pthread_mutex_unlock(&r->idle_lock);
  while (evicted) { /* closing a state is slow: outside the lock */
    idle_state *next = evicted->bucket_next;
    idle_free(evicted);
    evicted = next;
  }
}

/* Drops every idle state of h (its version is going away). */
static void idle_drop_handle(ac_registry *r, ac_plugin_handle *h) {
  idle_state *dropped = NULL;
  pthread_mutex_lock(&r->idle_lock);
  for (idle_state *s = r->lru_head, *next; s; s = next) {
    next = s->lru_next;
    if (s->h == h) {
      idle_unlink(r, s);
      s->bucket_next = dropped;
      dropped = s;
    }
  }
  pthread_mutex_unlock(&r->idle_lock);
  while (dropped) {
    idle_state *next = dropped->bucket_next;
    idle_free(dropped);
    dropped = next;
  }
}

void ac_registry_idle_stats(ac_registry *r, int *count, size_t *bytes) {
  pthread_mutex_lock(&r->idle_lock);
  *count = r->idle_count;
  *bytes = r->idle_bytes;
  pthread_mutex_unlock(&r->idle_lock);
}

/* ---- handles ------------------------------------------------------------ */

static ac_plugin_handle *handle_new(ac_registry *r, ac_plugin *p) {
  ac_plugin_handle *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  atomic_init(&h->refs, 1);
  h->registry = r;
  h->plugin = p;
  h->serial = ++r->next_serial;
  /* the load state ran no namespace's code: it may serve any one of them,
   * but to keep the rule simple it is dropped */
  ac_vm_free(ac_plugin_take_state(p));
  return h;
}

ac_plugin_handle *ac_registry_adopt(ac_registry *r, ac_plugin *p) {
  pthread_mutex_lock(&r->lock);
  ac_plugin_handle *h = handle_new(r, p);
  pthread_mutex_unlock(&r->lock);
  return h;
}

static void handle_destroy(ac_plugin_handle *h) {
  idle_drop_handle(h->registry, h);
  ac_plugin_free(h->plugin);
  free(h);
}

void ac_plugin_handle_release(ac_plugin_handle *h) {
  if (h && atomic_fetch_sub(&h->refs, 1) == 1)
    handle_destroy(h);
}

void ac_plugin_handle_ref(ac_plugin_handle *h) { atomic_fetch_add(&h->refs, 1); }

const ac_plugin_info *ac_plugin_handle_info(const ac_plugin_handle *h) {
  return ac_plugin_get_info(h->plugin);
}

uint64_t ac_plugin_handle_serial(const ac_plugin_handle *h) { return h->serial; }

int ac_plugin_handle_inline_ok(const ac_plugin_handle *h) {
  return !atomic_load(&h->no_inline) && atomic_load(&h->clean) >= INLINE_PROBATION;
}

void ac_plugin_handle_note_outcome(ac_plugin_handle *h, ac_outcome_kind kind) {
  if (kind == AC_OUTCOME_TIMEOUT || kind == AC_OUTCOME_MEMORY)
    atomic_store(&h->no_inline, 1);
  else if (atomic_load(&h->clean) < INLINE_PROBATION)
    atomic_fetch_add(&h->clean, 1);
}
void ac_plugin_handle_no_inline(ac_plugin_handle *h) { atomic_store(&h->no_inline, 1); }
int ac_plugin_handle_stuck(const ac_plugin_handle *h) { return atomic_load(&h->stuck); }
void ac_plugin_handle_add_stuck(ac_plugin_handle *h, int delta) { atomic_fetch_add(&h->stuck, delta); }

/* ---- scanning ------------------------------------------------------------ */

int ac_registry_new(const ac_registry_config *cfg, ac_registry **out, ac_err *err) {
  *out = NULL;
  ac_registry *r = calloc(1, sizeof *r);
  if (!r)
    return ac_err_set(err, AC_ERR_NOMEM, "out of memory");
  pthread_mutex_init(&r->lock, NULL);
  pthread_mutex_init(&r->reload_lock, NULL);
  r->builtin_dir = strdup(cfg->builtin_dir ? cfg->builtin_dir : "");
  r->custom_dirs = strdup(cfg->custom_dirs ? cfg->custom_dirs : "");
  r->limits = cfg->limits;
  pthread_mutex_init(&r->idle_lock, NULL);
  r->idle_max = cfg->max_idle_states > 0 ? cfg->max_idle_states : 4096;
  r->idle_budget = cfg->idle_budget_bytes > 0 ? cfg->idle_budget_bytes : ((size_t)512 << 20);
  *out = r;
  return AC_OK;
}

static void entry_free(entry *e) {
  ac_plugin_handle_release(e->good);
  free(e->path);
  free(e->error);
  free(e);
}

void ac_registry_free(ac_registry *r) {
  if (!r)
    return;
  for (entry *e = r->entries, *next; e; e = next) {
    next = e->next;
    entry_free(e);
  }
  free(r->builtin_dir);
  free(r->custom_dirs);
  pthread_mutex_destroy(&r->lock);
  pthread_mutex_destroy(&r->reload_lock);
  pthread_mutex_destroy(&r->idle_lock);
  free(r);
}

static entry *find_entry(ac_registry *r, const char *path) {
  for (entry *e = r->entries; e; e = e->next)
    if (strcmp(e->path, path) == 0)
      return e;
  return NULL;
}

/* The entry currently serving id (a good version), other than self. */
static entry *owner_of(ac_registry *r, const char *id, const entry *self) {
  uint64_t h = ac_hash_str(AC_HASH_SEED, id);
  for (entry *e = r->entries; e; e = e->next)
    if (e != self && e->good && e->good_id_hash == h &&
        strcmp(ac_plugin_handle_info(e->good)->id, id) == 0)
      return e;
  return NULL;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lua files of dir, sorted, as full paths. */
static int list_dir(const char *dir, char ***out) {
  *out = NULL;
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int n = 0, cap = 0;
  char **names = NULL;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len < 5 || de->d_name[0] == '.' || strcmp(de->d_name + len - 4, ".lua") != 0)
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      char **grown = realloc(names, (size_t)cap * sizeof *names);
      if (!grown)
        break;
      names = grown;
    }
    size_t size = strlen(dir) + len + 2;
    names[n] = malloc(size);
    if (!names[n])
      break;
    snprintf(names[n], size, "%s/%s", dir, de->d_name);
    n++;
  }
  closedir(d);
  if (n > 1)
    qsort(names, (size_t)n, sizeof *names, cmp_names);
  *out = names;
  return n;
}

static void set_error(entry *e, const char *msg) {
  free(e->error);
  e->error = msg ? strdup(msg) : NULL;
}

/* Loads one file if it is new or changed. Returns 1 if the entry changed. */
static int scan_file(ac_registry *r, const char *path, int builtin) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return 0;
  pthread_mutex_lock(&r->lock);
  entry *e = find_entry(r, path);
  if (e) {
    e->seen = 1;
    int same = e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
               e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec;
    pthread_mutex_unlock(&r->lock);
    if (same)
      return 0;
  } else {
    pthread_mutex_unlock(&r->lock);
  }

  /* loading runs plugin code: outside the lock */
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load(path, &r->limits, &p, &out);

  pthread_mutex_lock(&r->lock);
  if (!e) {
    e = calloc(1, sizeof *e);
    e->path = strdup(path);
    e->builtin = builtin;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(e->fallback_id, sizeof e->fallback_id, "%.*s", (int)(strlen(base) - 4), base);
    e->seen = 1;
    entry **tail = &r->entries;
    while (*tail)
      tail = &(*tail)->next;
    *tail = e;
  }
  e->dev = st.st_dev;
  e->ino = st.st_ino;
  e->size = st.st_size;
  e->mtime = st.st_mtim;
  ac_plugin_handle *old = NULL;
  if (!p) {
    /* Lua's own messages start with "path:line:"; contract and limit
     * failures do not, and the catalog must name the file either way */
    char msg[AC_OUTCOME_MSG_MAX + 1100];
    if (strncmp(out.message, path, strlen(path)) == 0)
      snprintf(msg, sizeof msg, "%s", out.message);
    else
      snprintf(msg, sizeof msg, "%s: %s", path, out.message);
    set_error(e, msg); /* the last good version, if any, keeps serving */
  } else {
    const char *id = ac_plugin_get_info(p)->id;
    entry *owner = owner_of(r, id, e);
    if (owner) {
      char msg[2200];
      snprintf(msg, sizeof msg, "%s: id \"%s\" is already used by %s", path, id, owner->path);
      set_error(e, msg);
      snprintf(e->fallback_id, sizeof e->fallback_id, "%s", id);
      ac_plugin_free(p);
    } else {
      old = e->good;
      e->good = handle_new(r, p);
      e->good_id_hash = e->good ? ac_hash_str(AC_HASH_SEED, id) : 0;
      e->loaded_at = ac_clock_wall_ms();
      set_error(e, NULL);
    }
  }
  r->generation++;
  pthread_mutex_unlock(&r->lock);
  ac_plugin_handle_release(old);
  return 1;
}

static int scan_dir(ac_registry *r, const char *dir, int builtin) {
  char **paths;
  int n = list_dir(dir, &paths);
  int changed = 0;
  for (int i = 0; i < n; i++) {
    changed += scan_file(r, paths[i], builtin);
    free(paths[i]);
  }
  free(paths);
  return changed;
}

/* Scans the built-in directory, then every custom one. */
static int scan_all(ac_registry *r) {
  int changed = scan_dir(r, r->builtin_dir, 1);
  char *dirs = strdup(r->custom_dirs);
  for (char *save = NULL, *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d;
       d = strtok_r(NULL, ":", &save))
    if (*d && strcmp(d, r->builtin_dir) != 0)
      changed += scan_dir(r, d, 0);
  free(dirs);
  return changed;
}

int ac_registry_reload(ac_registry *r) {
  pthread_mutex_lock(&r->reload_lock);
  pthread_mutex_lock(&r->lock);
  for (entry *e = r->entries; e; e = e->next)
    e->seen = 0;
  pthread_mutex_unlock(&r->lock);

  int changed = scan_all(r);

  /* files that are gone disappear; entries that failed because another file
   * held their id are retried once that file is gone */
  pthread_mutex_lock(&r->lock);
  entry **link = &r->entries;
  entry *dropped = NULL;
  while (*link) {
    entry *e = *link;
    if (!e->seen) {
      *link = e->next;
      e->next = dropped;
      dropped = e;
      changed++;
      r->generation++;
    } else {
      link = &e->next;
    }
  }
  int builtin_ok = 1;
  for (entry *e = r->entries; e; e = e->next)
    if (e->builtin && !e->good)
      builtin_ok = 0;
  r->ready = builtin_ok;
  entry *retry = NULL;
  for (entry *e = r->entries; e; e = e->next)
    if (!e->good && e->error && strstr(e->error, "is already used by") &&
        !owner_of(r, e->fallback_id, e)) {
      e->size = -1; /* forces a reload on the next scan */
      retry = e;
    }
  pthread_mutex_unlock(&r->lock);
  while (dropped) {
    entry *next = dropped->next;
    entry_free(dropped);
    dropped = next;
  }
  /* the holder of their id may have gone (or changed id) in this very
   * reload: without a second pass they would wait for an unrelated change */
  if (retry)
    changed += scan_all(r);
  pthread_mutex_unlock(&r->reload_lock);
  return changed;
}

uint64_t ac_registry_generation(ac_registry *r) {
  pthread_mutex_lock(&r->lock);
  uint64_t g = r->generation;
  pthread_mutex_unlock(&r->lock);
  return g;
}

int ac_registry_ready(ac_registry *r) {
  pthread_mutex_lock(&r->lock);
  int ready = r->ready;
  pthread_mutex_unlock(&r->lock);
  return ready;
}

ac_plugin_handle *ac_registry_acquire(ac_registry *r, const char *id) {
  ac_plugin_handle *h = NULL;
  pthread_mutex_lock(&r->lock);
  entry *e = owner_of(r, id, NULL);
  if (e) {
    h = e->good;
    atomic_fetch_add(&h->refs, 1);
  }
  pthread_mutex_unlock(&r->lock);
  return h;
}

static json_t *catalog_entry(const entry *e) {
  json_t *o = json_object();
  char ts[40];
  if (e->good) {
    const ac_plugin_info *info = ac_plugin_handle_info(e->good);
    ac_clock_rfc3339(e->loaded_at, ts, sizeof ts);
    json_object_set_new(o, "id", json_string(info->id));
    json_object_set_new(o, "name", json_string(info->name));
    json_object_set_new(o, "category", json_string(info->category));
    json_object_set_new(o, "version", info->version ? json_string(info->version) : json_null());
    json_object_set(o, "capabilities", info->capabilities);
    json_object_set_new(o, "configSchema", ac_schema_export(info->schema));
    json_object_set(o, "tools", info->tools);
    json_object_set_new(o, "loadedAt", json_string(ts));
  } else {
    json_object_set_new(o, "id", json_string(e->fallback_id));
    json_object_set_new(o, "name", json_string(e->fallback_id));
    json_object_set_new(o, "category", json_string("unknown"));
    json_object_set_new(o, "version", json_null());
    json_object_set_new(o, "capabilities", json_array());
    json_object_set_new(o, "configSchema", json_object());
    json_object_set_new(o, "tools", json_array());
    json_object_set_new(o, "loadedAt", json_null());
  }
  json_object_set_new(o, "source", json_string(e->builtin ? "builtin" : "custom"));
  json_object_set_new(o, "status", json_string(e->error ? "error" : "ready"));
  json_object_set_new(o, "error", e->error ? json_string(e->error) : json_null());
  return o;
}

json_t *ac_registry_catalog(ac_registry *r) {
  json_t *list = json_array();
  pthread_mutex_lock(&r->lock);
  for (entry *e = r->entries; e; e = e->next)
    json_array_append_new(list, catalog_entry(e));
  pthread_mutex_unlock(&r->lock);
  return list;
}
