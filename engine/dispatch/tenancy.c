/* tenancy.c — the tenancy snapshot: two jansson maps behind a
 * writer-preferring rwlock, a short memory of ids found missing, and the
 * rules that keep a re-read entry from being replaced by an older one. */
#include "dispatch/tenancy.h"
#include "core/clock.h"
#include "db/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_MAX 128         /* ids are ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$ */
#define MISS_TTL_MS 1000   /* an id found missing is not read again for this long */
#define MISS_MAX 10000     /* remembered missing ids; past it expired ones go, then all */
#define MISS_READS_MAX 8   /* reads of missing ids at once, once the snapshot is loaded */
#define LOOKUP_READS 4     /* database reads one lookup may need (namespace, departments) */

struct ac_tenancy {
  ac_db_pool *pool;
  ac_logger *log;

  pthread_rwlock_t lock; /* guards the five fields below */
  json_t *namespaces;    /* id -> {"snapshot":{...},"item":{...}}, immutable */
  json_t *departments;   /* id -> parent id (string) or null for a root */
  int reloading;         /* a full reload is reading: note what is installed meanwhile */
  json_t *touched_ns;    /* {id: true}: namespaces installed or dropped while reloading */
  json_t *touched_depts; /* the same for departments */

  pthread_mutex_t reload_lock; /* one full reload at a time */

  pthread_mutex_t miss_lock; /* guards misses; never held with lock */
  pthread_cond_t loaded_cv;  /* with miss_lock: the first reload succeeded */
  json_t *misses;            /* "n:<id>" / "d:<id>" -> until (monotonic ms) */

  atomic_int loaded;
  atomic_int miss_reads;      /* reads of missing ids in flight */
  atomic_ullong installs;     /* entries installed: a miss read that overlapped one is not kept */
  atomic_ullong reloads, reload_failures, refreshes, miss_count;
};

/* ---- entries ------------------------------------------------------------------ */

static json_int_t generation_of(const json_t *entry) {
  return json_integer_value(json_object_get(json_object_get(entry, "snapshot"), "generation"));
}

/* The immutable entry of a store row (see ac_store_tenancy_namespace), or
 * NULL if the row is not shaped as expected. */
static json_t *entry_from_row(const json_t *row) {
  json_t *id = json_object_get(row, "id"), *name = json_object_get(row, "name"),
         *dept = json_object_get(row, "departmentId"), *at = json_object_get(row, "createdAt"),
         *gen = json_object_get(row, "generation"), *plugins = json_object_get(row, "plugins");
  if (!json_is_string(id) || !json_is_string(name) || !json_is_string(dept) ||
      !json_is_string(at) || !json_is_integer(gen) || !json_is_array(plugins))
    return NULL;
  return json_pack("{s:{s:O, s:O, s:O}, s:{s:O, s:O, s:O, s:O}}", "snapshot", "departmentId", dept,
                   "generation", gen, "plugins", plugins, "item", "id", id, "name", name,
                   "departmentId", dept, "createdAt", at);
}

/* Installs entry (stolen; NULL drops the id) unless the one there has a
 * newer generation. Holds lock for writing. */
static void put_namespace(ac_tenancy *t, const char *id, json_t *entry) {
  json_t *cur = json_object_get(t->namespaces, id);
  if (entry && cur && generation_of(cur) > generation_of(entry))
    json_decref(entry); /* a read that started before the one installed */
  else if (entry)
    json_object_set_new(t->namespaces, id, entry);
  else
    json_object_del(t->namespaces, id);
  if (t->reloading)
    json_object_set_new(t->touched_ns, id, json_true());
}

/* parent: a new reference (string or null), or NULL to drop the id. Holds
 * lock for writing. */
static void put_department(ac_tenancy *t, const char *id, json_t *parent) {
  if (parent)
    json_object_set_new(t->departments, id, parent);
  else
    json_object_del(t->departments, id);
  if (t->reloading)
    json_object_set_new(t->touched_depts, id, json_true());
}

/* After an id was installed: a remembered miss of it is wrong now. */
static void installed(ac_tenancy *t, char kind, const char *id) {
  atomic_fetch_add(&t->installs, 1);
  char key[ID_MAX + 3];
  snprintf(key, sizeof key, "%c:%s", kind, id);
  pthread_mutex_lock(&t->miss_lock);
  json_object_del(t->misses, key);
  pthread_mutex_unlock(&t->miss_lock);
}

/* ---- lifecycle ------------------------------------------------------------------ */

ac_tenancy *ac_tenancy_new(ac_db_pool *pool, ac_logger *log) {
  ac_tenancy *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->pool = pool;
  t->log = log;
  t->namespaces = json_object();
  t->departments = json_object();
  t->touched_ns = json_object();
  t->touched_depts = json_object();
  t->misses = json_object();
  if (!t->namespaces || !t->departments || !t->touched_ns || !t->touched_depts || !t->misses) {
    json_decref(t->namespaces);
    json_decref(t->departments);
    json_decref(t->touched_ns);
    json_decref(t->touched_depts);
    json_decref(t->misses);
    free(t);
    return NULL;
  }
  /* readers come by the ten thousand a second: a writer must not starve */
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&t->lock, &ra);
  pthread_rwlockattr_destroy(&ra);
  pthread_mutex_init(&t->reload_lock, NULL);
  pthread_mutex_init(&t->miss_lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&t->loaded_cv, &ca);
  pthread_condattr_destroy(&ca);
  return t;
}

void ac_tenancy_free(ac_tenancy *t) {
  if (!t)
    return;
  json_decref(t->namespaces);
  json_decref(t->departments);
  json_decref(t->touched_ns);
  json_decref(t->touched_depts);
  json_decref(t->misses);
  pthread_rwlock_destroy(&t->lock);
  pthread_mutex_destroy(&t->reload_lock);
  pthread_mutex_destroy(&t->miss_lock);
  pthread_cond_destroy(&t->loaded_cv);
  free(t);
}

int ac_tenancy_wait_loaded(ac_tenancy *t, int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&t->miss_lock);
  while (!atomic_load(&t->loaded))
    if (pthread_cond_timedwait(&t->loaded_cv, &t->miss_lock, &until) != 0)
      break;
  pthread_mutex_unlock(&t->miss_lock);
  return atomic_load(&t->loaded);
}

void ac_tenancy_get_stats(ac_tenancy *t, ac_tenancy_stats *out) {
  pthread_rwlock_rdlock(&t->lock);
  out->departments = json_object_size(t->departments);
  out->namespaces = json_object_size(t->namespaces);
  pthread_rwlock_unlock(&t->lock);
  out->reloads = atomic_load(&t->reloads);
  out->reload_failures = atomic_load(&t->reload_failures);
  out->refreshes = atomic_load(&t->refreshes);
  out->misses = atomic_load(&t->miss_count);
  out->loaded = atomic_load(&t->loaded);
}

/* ---- full reload ------------------------------------------------------------------ */

typedef struct load_ctx {
  json_t *namespaces, *departments;
  int bad; /* rows that did not make an entry */
} load_ctx;

static void load_department(void *ud, const char *id, const char *parent) {
  load_ctx *c = ud;
  json_object_set_new(c->departments, id, parent ? json_string(parent) : json_null());
}

static void load_namespace(void *ud, json_t *row) {
  load_ctx *c = ud;
  json_t *e = entry_from_row(row);
  if (e)
    json_object_set_new(c->namespaces, json_string_value(json_object_get(row, "id")), e);
  else
    c->bad++;
  json_decref(row);
}

/* Carries into the maps just read what was installed or dropped while
 * they were read: that state is at least as new, unless the reload read
 * a namespace at a newer generation. Holds lock for writing. */
static void keep_touched(ac_tenancy *t, load_ctx *c) {
  const char *id;
  json_t *v;
  json_object_foreach(t->touched_ns, id, v) {
    json_t *live = json_object_get(t->namespaces, id), *read = json_object_get(c->namespaces, id);
    if (live && (!read || generation_of(live) >= generation_of(read)))
      json_object_set(c->namespaces, id, live);
    else if (!live)
      json_object_del(c->namespaces, id);
  }
  json_object_foreach(t->touched_depts, id, v) {
    json_t *live = json_object_get(t->departments, id);
    if (live)
      json_object_set(c->departments, id, live);
    else
      json_object_del(c->departments, id);
  }
}

int ac_tenancy_reload(ac_tenancy *t, PGconn *db, ac_err *err) {
  pthread_mutex_lock(&t->reload_lock);
  int64_t start = ac_clock_mono_ms();
  pthread_rwlock_wrlock(&t->lock);
  t->reloading = 1;
  json_object_clear(t->touched_ns);
  json_object_clear(t->touched_depts);
  pthread_rwlock_unlock(&t->lock);

  load_ctx c = {json_object(), json_object(), 0};
  ac_err e = {0};
  int rc = c.namespaces && c.departments
               ? ac_store_tenancy_load(db, load_department, load_namespace, &c, &e)
               : ac_err_set(&e, AC_ERR_NOMEM, "out of memory");
  if (rc == AC_OK && c.bad)
    rc = ac_err_set(&e, AC_ERR_INTERNAL, "%d namespace rows were not understood", c.bad);

  pthread_rwlock_wrlock(&t->lock);
  if (rc == AC_OK) {
    keep_touched(t, &c);
    json_t *ns = t->namespaces, *depts = t->departments;
    t->namespaces = c.namespaces;
    t->departments = c.departments;
    c.namespaces = ns; /* freed below, outside the lock */
    c.departments = depts;
  }
  t->reloading = 0;
  json_object_clear(t->touched_ns);
  json_object_clear(t->touched_depts);
  size_t n_ns = json_object_size(t->namespaces), n_depts = json_object_size(t->departments);
  pthread_rwlock_unlock(&t->lock);
  json_decref(c.namespaces);
  json_decref(c.departments);

  int64_t took = ac_clock_mono_ms() - start;
  if (rc == AC_OK) {
    atomic_fetch_add(&t->installs, 1);
    atomic_fetch_add(&t->reloads, 1);
    pthread_mutex_lock(&t->miss_lock);
    json_object_clear(t->misses); /* some may exist now */
    atomic_store(&t->loaded, 1);
    pthread_cond_broadcast(&t->loaded_cv);
    pthread_mutex_unlock(&t->miss_lock);
    ac_log(t->log, AC_LOG_INFO, "tenancy snapshot loaded",
           json_pack("{s:I, s:I, s:I}", "departments", (json_int_t)n_depts, "namespaces",
                     (json_int_t)n_ns, "ms", (json_int_t)took));
  } else {
    atomic_fetch_add(&t->reload_failures, 1);
    ac_log(t->log, AC_LOG_ERROR, "tenancy snapshot reload failed; the previous one stays in use",
           json_pack("{s:s, s:s, s:I}", "error", e.msg, "code", ac_err_name(rc), "ms",
                     (json_int_t)took));
    if (err)
      *err = e;
  }
  pthread_mutex_unlock(&t->reload_lock);
  return rc;
}

/* ---- single entries ------------------------------------------------------------------ */

/* db, or a pool connection into *lent when db is NULL. */
static PGconn *conn_for(ac_tenancy *t, PGconn *db, ac_db **lent, ac_err *e) {
  *lent = NULL;
  if (db)
    return db;
  *lent = ac_db_pool_get(t->pool, -1, e);
  return *lent ? ac_db_conn(*lent) : NULL;
}

static int valid_id(const char *id) {
  size_t n = id ? strlen(id) : 0;
  return n > 0 && n <= ID_MAX;
}

static int refresh_namespace(ac_tenancy *t, PGconn *db, const char *ns, ac_err *err) {
  ac_err e = {0};
  ac_db *lent;
  PGconn *c = conn_for(t, db, &lent, &e);
  json_t *row = NULL, *entry = NULL;
  int rc = c ? ac_store_tenancy_namespace(c, ns, &row, &e) : (e.code ? e.code : AC_ERR_DB);
  ac_db_pool_put(t->pool, lent);
  if (rc == AC_OK && !(entry = entry_from_row(row)))
    rc = ac_err_set(&e, AC_ERR_INTERNAL, "the namespace row was not understood");
  json_decref(row);
  /* gone, or unreadable right after a change: either way the entry held
   * may be wrong, so the next lookup reads again */
  pthread_rwlock_wrlock(&t->lock);
  put_namespace(t, ns, entry);
  pthread_rwlock_unlock(&t->lock);
  if (entry)
    installed(t, 'n', ns);
  if (rc && err)
    *err = e;
  return rc;
}

int ac_tenancy_refresh_namespace(ac_tenancy *t, PGconn *db, const char *ns, ac_err *err) {
  if (!valid_id(ns))
    return ac_err_set(err, AC_ERR_INVALID, "invalid namespace id");
  atomic_fetch_add(&t->refreshes, 1);
  return refresh_namespace(t, db, ns, err);
}

static void collect_department(void *ud, const char *id, const char *parent) {
  json_object_set_new(ud, id, parent ? json_string(parent) : json_null());
}

static int refresh_department(ac_tenancy *t, PGconn *db, const char *id, ac_err *err) {
  ac_err e = {0};
  ac_db *lent;
  PGconn *c = conn_for(t, db, &lent, &e);
  json_t *chain = json_object();
  int rc = !chain ? ac_err_set(&e, AC_ERR_NOMEM, "out of memory")
           : c    ? ac_store_tenancy_departments(c, id, collect_department, chain, &e)
                  : (e.code ? e.code : AC_ERR_DB);
  ac_db_pool_put(t->pool, lent);
  const char *k;
  json_t *v;
  pthread_rwlock_wrlock(&t->lock);
  if (rc == AC_OK) {
    json_object_foreach(chain, k, v) put_department(t, k, json_incref(v));
  } else {
    put_department(t, id, NULL);
  }
  pthread_rwlock_unlock(&t->lock);
  if (rc == AC_OK) {
    json_object_foreach(chain, k, v) installed(t, 'd', k);
  }
  json_decref(chain);
  if (rc && err)
    *err = e;
  return rc;
}

int ac_tenancy_refresh_department(ac_tenancy *t, PGconn *db, const char *id, ac_err *err) {
  if (!valid_id(id))
    return ac_err_set(err, AC_ERR_INVALID, "invalid department id");
  atomic_fetch_add(&t->refreshes, 1);
  return refresh_department(t, db, id, err);
}

/* ---- lookups ------------------------------------------------------------------------- */

/* Reads a namespace ('n') or department ('d') missing from the snapshot,
 * unless it was found missing a moment ago or, once the snapshot is
 * loaded, too many such reads are in flight (a flood of unknown ids gets
 * the snapshot's answer). A miss is remembered for MISS_TTL_MS unless
 * something was installed while it was read. */
static int read_missing(ac_tenancy *t, char kind, const char *id, ac_err *err) {
  char key[ID_MAX + 3];
  snprintf(key, sizeof key, "%c:%s", kind, id);
  int64_t now = ac_clock_mono_ms();
  pthread_mutex_lock(&t->miss_lock);
  json_t *until = json_object_get(t->misses, key);
  int remembered = until && json_integer_value(until) > now;
  pthread_mutex_unlock(&t->miss_lock);
  if (remembered)
    return ac_err_set(err, AC_ERR_NOTFOUND, "not found");
  if (atomic_fetch_add(&t->miss_reads, 1) >= MISS_READS_MAX && atomic_load(&t->loaded)) {
    atomic_fetch_sub(&t->miss_reads, 1);
    return ac_err_set(err, AC_ERR_NOTFOUND, "not found");
  }
  unsigned long long seen = atomic_load(&t->installs);
  atomic_fetch_add(&t->miss_count, 1);
  int rc = kind == 'n' ? refresh_namespace(t, NULL, id, err) : refresh_department(t, NULL, id, err);
  atomic_fetch_sub(&t->miss_reads, 1);
  if (rc == AC_ERR_NOTFOUND) {
    pthread_mutex_lock(&t->miss_lock);
    if (atomic_load(&t->installs) == seen) {
      if (json_object_size(t->misses) >= MISS_MAX) {
        const char *k;
        json_t *v, *tmp;
        json_object_foreach_safe(t->misses, tmp, k, v) {
          if (json_integer_value(v) <= now)
            json_object_del(t->misses, k);
        }
        if (json_object_size(t->misses) >= MISS_MAX)
          json_object_clear(t->misses);
      }
      json_object_set_new(t->misses, key, json_integer(now + MISS_TTL_MS));
    }
    pthread_mutex_unlock(&t->miss_lock);
  }
  return rc;
}

static int has_department(const ac_principal *who, const char *dept) {
  for (size_t i = 0; i < who->department_count; i++)
    if (strcmp(who->department_ids[i], dept) == 0)
      return 1;
  return 0;
}

enum { FOUND, NO_NAMESPACE, NO_DEPARTMENT, OUT_OF_SCOPE };

/* The scope check on the snapshot, under lock for reading: the
 * namespace's department or one of its ancestors must be one of who's.
 * The walk takes at most as many steps as there are departments, so a
 * loop of parent links ends. On FOUND *out is a new reference to the
 * entry's field; on NO_DEPARTMENT missing names the department to read. */
static int find(ac_tenancy *t, const ac_principal *who, const char *ns, const char *field,
                json_t **out, char *missing, size_t size) {
  json_t *e = json_object_get(t->namespaces, ns);
  if (!e)
    return NO_NAMESPACE;
  if (who && !who->global) {
    const char *cur =
        json_string_value(json_object_get(json_object_get(e, "snapshot"), "departmentId"));
    size_t cap = json_object_size(t->departments) + 1;
    int in = 0;
    for (size_t step = 0; cur && step <= cap; step++) {
      if (has_department(who, cur)) {
        in = 1;
        break;
      }
      json_t *parent = json_object_get(t->departments, cur);
      if (!parent) {
        snprintf(missing, size, "%s", cur);
        return NO_DEPARTMENT;
      }
      const char *next = json_string_value(parent);
      cur = next && strcmp(next, cur) != 0 ? next : NULL;
    }
    if (!in)
      return OUT_OF_SCOPE;
  }
  *out = json_incref(json_object_get(e, field));
  return FOUND;
}

static int lookup(ac_tenancy *t, const ac_principal *who, const char *ns, const char *field,
                  json_t **out, ac_err *err) {
  *out = NULL;
  for (int reads = 0; valid_id(ns) && reads < LOOKUP_READS; reads++) {
    char missing[ID_MAX + 1] = "";
    pthread_rwlock_rdlock(&t->lock);
    int found = find(t, who, ns, field, out, missing, sizeof missing);
    pthread_rwlock_unlock(&t->lock);
    if (found == FOUND)
      return AC_OK;
    if (found == OUT_OF_SCOPE)
      break;
    ac_err e = {0};
    int rc = found == NO_NAMESPACE ? read_missing(t, 'n', ns, &e)
                                   : read_missing(t, 'd', missing, &e);
    if (rc == AC_ERR_NOTFOUND)
      break;
    if (rc) /* a pool timeout included: for the caller the database is away */
      return ac_err_set(err, AC_ERR_DB, "%s", e.msg);
  }
  return ac_err_set(err, AC_ERR_NOTFOUND, "unknown namespace");
}

int ac_tenancy_namespace(ac_tenancy *t, const ac_principal *who, const char *ns,
                         json_t **snapshot, ac_err *err) {
  return lookup(t, who, ns, "snapshot", snapshot, err);
}

int ac_tenancy_namespace_item(ac_tenancy *t, const ac_principal *who, const char *ns,
                              json_t **item, ac_err *err) {
  return lookup(t, who, ns, "item", item, err);
}
