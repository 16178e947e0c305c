/* fuzz_sandbox.c — a generative fuzzer for the sandbox: it writes random
 * plugins that compose standard-library calls, metamethods, coroutines,
 * pcall/error, load, json and context functions with extreme arguments
 * (huge counts, math.maxinteger, empty strings, deep and shared tables,
 * forged metatables), loads each and calls its onAgentQuery through the
 * engine, and fails on:
 *   - a crash or a sanitizer report (the process dies: the program is on
 *     disk already),
 *   - a call (load or hook) that outlives its timeout + 1 s, or that had to
 *     be abandoned stuck in C,
 *   - resident memory beyond the state's cap plus a fixed slack.
 * Each program is written to OUT/current.lua before it runs; a failing one
 * is kept as OUT/failure-SEED-N.lua, ready to become a fixture under
 * tests/lua/hostile/.
 *
 *   fuzz_sandbox [--seconds N] [--programs N] [--seed S] [--out DIR] [--timeout-ms N]
 *
 * scripts/dev test runs it briefly on both builds; `scripts/dev fuzz
 * MINUTES` runs it on the sanitizer build for as long as wanted. */
#include "core/clock.h"
#include "core/log.h"
#include "lua/guard.h"
#include "lua/kv_memory.h"
#include "plugin/plugin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int timeout_ms = 200; /* --timeout-ms */
#define MEMORY_LIMIT (32u << 20)
/* the state's cap plus what the engine may hold outside it for one call
 * (json.encode's 16 MiB and its buffer, a converted result) and the
 * allocator's slack */
#ifdef __SANITIZE_ADDRESS__
/* AddressSanitizer keeps freed memory in a quarantine (256 MiB by default),
 * adds its shadow and keeps its allocator's caches: measured here, 760 MiB
 * after 5,000 programs and 1.1 GiB after 39,000 with no leak at exit, where
 * the Release build stays at 90 MiB. The tight check is the Release
 * build's. */
#define RSS_SLACK (2048u << 20)
#else
#define RSS_SLACK (320u << 20)
#endif
#define PROGRAM_MAX (64 * 1024)

/* ---- a small deterministic generator ---------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int pick(int n) { return (int)(rnd() % (uint64_t)n); }

#define ONE_OF(arr) (arr)[pick((int)(sizeof(arr) / sizeof(arr)[0]))]

typedef struct prog {
  char text[PROGRAM_MAX];
  size_t len;
} prog;

static void emit(prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(prog *p, const char *fmt, ...) {
  if (p->len >= sizeof p->text)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(p->text + p->len, sizeof p->text - p->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    p->len += (size_t)n < sizeof p->text - p->len ? (size_t)n : sizeof p->text - p->len - 1;
}

/* ---- the grammar ---------------------------------------------------------- */

static const char *const integers[] = {
    "0", "1", "-1", "2", "7", "255", "65536", "1 << 20", "1 << 31", "(1 << 32) + 1",
    "math.maxinteger", "math.mininteger", "math.maxinteger - 1", "-math.maxinteger",
    "2147483646", "1e308", "0/0", "-0.0", "2^53", "3.5"};

static const char *const strings[] = {
    "\"\"", "\"x\"", "\"%\"", "\"[\"", "\"%b()\"", "\"(.-)\"", "\"\\0\"", "\"é\"",
    "\"\\255\\254\"", "string.rep(\"a\", 1 << 16)", "string.rep(\"ab\", 1000, \",\")",
    "\"%s%d%q\"", "\"[\" .. string.rep(\"b\", 100000) .. \"]\"", "\".-.-.-.-b\"",
    "\"%f[%w]\"", "\"(()\"", "\"%1\"", "tostring({})"};

static const char *const patterns[] = {
    "\".-.-.-.-b\"", "\"(a*)*b\"", "\"[%a%d]+\"", "\"%b()\"", "\"(.)%1\"", "\"^(.-)$\"",
    "\"[\" .. string.rep(\"z\", 1 << 18) .. \"a]*\"", "\"%f[%a]%a+\"", "\"()\"", "\"[^\"",
    "\"(\"", "\"%\"", "\"a-\" .. string.rep(\"a?\", 100)"};

static const char *const tables[] = {
    "{}", "{1, 2, 3}", "{ a = 1, b = { c = 2 } }", "deep(40)", "deep(300)", "shared(5)",
    "shared(7)", "forged()", "context.config", "context", "PluginCapability", "big",
    "huge_len()", "index_forever()", "cyclic()", "{ [1] = 1, [3] = 3 }", "{ n = 0/0 }",
    "json_view()", "setmetatable({}, { __index = function() return \"\" end })"};

static void value(prog *p, int depth);

static void table_expr(prog *p) { emit(p, "%s", ONE_OF(tables)); }

static void function_expr(prog *p, int depth) {
  static const char *const fns[] = {
      "function() end", "function(...) return ... end", "function() while true do end end",
      "function() error(\"boom\") end", "function(a, b) return a < b end",
      "function(a, b) return true end", "string.rep", "rawequal", "tostring", "select",
      "coroutine.yield", "print", "function() return coroutine.yield(1) end"};
  if (depth < 2 && pick(4) == 0) {
    emit(p, "function(...) local r = ");
    value(p, depth + 1);
    emit(p, " return r end");
    return;
  }
  emit(p, "%s", ONE_OF(fns));
}

static void value(prog *p, int depth) {
  switch (depth > 2 ? pick(3) : pick(6)) {
  case 0: emit(p, "%s", ONE_OF(integers)); break;
  case 1: emit(p, "%s", ONE_OF(strings)); break;
  case 2: table_expr(p); break;
  case 3: function_expr(p, depth); break;
  case 4: {
    static const char *const misc[] = {"nil", "true", "false", "context.json.null",
                                       "coroutine.create(function() end)", "...", "_ENV"};
    emit(p, "%s", ONE_OF(misc));
    break;
  }
  default: /* a call's result */
    emit(p, "(");
    static const char *const calls[] = {"tostring", "select", "rawlen", "next", "type"};
    emit(p, "pcall(%s, ", ONE_OF(calls));
    value(p, depth + 1);
    emit(p, "))");
  }
}

static void metatable_expr(prog *p) {
  static const char *const fields[] = {
      "__index = function(t, k) return k end", "__index = string.sub",
      "__newindex = rawset", "__len = function() return math.maxinteger end",
      "__len = function() return 2147483646 end", "__call = function(...) return ... end",
      "__call = {}", "__gc = function() while true do end end",
      "__tostring = function() while true do end end", "__tostring = function() return 1 end",
      "__eq = function() return true end", "__lt = function() error(\"lt\") end",
      "__concat = function(a, b) return a end", "__close = function() end", "__mode = \"k\"",
      "__metatable = false", "__name = \"forged\"", "__pairs = function(t) return next, {} end",
      "__ac_readonly = {}", "__index = context.config"};
  emit(p, "{ ");
  int n = 1 + pick(3);
  for (int i = 0; i < n; i++)
    emit(p, "%s, ", ONE_OF(fields));
  emit(p, "}");
}

static void statement(prog *p, int depth) {
  switch (pick(depth > 1 ? 16 : 20)) {
  case 0:
    emit(p, "string.rep(");
    value(p, depth);
    emit(p, ", %s, ", ONE_OF(integers));
    value(p, depth);
    emit(p, ")");
    break;
  case 1:
    emit(p, "string.%s(", pick(2) ? "find" : "gsub");
    value(p, depth);
    emit(p, ", %s, ", ONE_OF(patterns));
    value(p, depth);
    emit(p, ")");
    break;
  case 2: {
    static const char *const fns[] = {"insert", "remove", "move", "concat", "unpack", "sort"};
    emit(p, "table.%s(", ONE_OF(fns));
    table_expr(p);
    for (int i = pick(4); i > 0; i--)
      emit(p, ", %s", ONE_OF(integers));
    emit(p, ")");
    break;
  }
  case 3:
    emit(p, "setmetatable(");
    table_expr(p);
    emit(p, ", ");
    metatable_expr(p);
    emit(p, ")");
    break;
  case 4:
    emit(p, "context.json.encode(");
    value(p, depth);
    emit(p, ")");
    break;
  case 5:
    emit(p, "context.json.decode(%s)",
         pick(2) ? ONE_OF(strings) : "string.rep(\"[\", 200) .. string.rep(\"]\", 200)");
    break;
  case 6:
    emit(p, "context.log.%s(", pick(2) ? "info" : "warn");
    value(p, depth);
    emit(p, ", ");
    table_expr(p);
    emit(p, ")");
    break;
  case 7:
    emit(p, "context.db.%s(", pick(2) ? "set" : "get");
    value(p, depth);
    emit(p, ", ");
    value(p, depth);
    emit(p, ", %s)", ONE_OF(integers));
    break;
  case 8: {
    static const char *const fmts[] = {"\"%s\"", "\"%99d\"", "\"%q\"", "\"%a\"", "\"%c\"",
                                       "\"%-99.99f\"", "\"%i\"", "\"%10.3s\""};
    emit(p, "string.format(%s, ", ONE_OF(fmts));
    value(p, depth);
    emit(p, ")");
    break;
  }
  case 9:
    emit(p, "coroutine.wrap(");
    function_expr(p, depth);
    emit(p, ")(");
    value(p, depth);
    emit(p, ")");
    break;
  case 10:
    emit(p, "load(%s)", pick(2) ? "\"return \" .. string.rep(\"(\", 300) .. \"1\" .. string.rep(\")\", 300)"
                                : "function() return nil end");
    break;
  case 11:
    emit(p, "error(");
    value(p, depth);
    emit(p, ", %d)", pick(3));
    break;
  case 12: {
    static const char *const misc[] = {
        "utf8.char(%s)", "utf8.len(string.rep(\"é\", %s %% 1000 + 1))", "utf8.offset(\"abc\", %s)",
        "math.random(%s)", "math.tointeger(%s)", "os.date(\"%%c\", %s)", "select(%s, 1, 2)",
        "string.byte(\"abc\", 1, %s)", "string.char(%s %% 256)", "string.pack(\"i8\", %s)",
        "tonumber(\"10\", %s)", "context.retry(\"x\", %s)", "coroutine.close(coroutine.create(function() end), %s)"};
    char buf[160];
    snprintf(buf, sizeof buf, ONE_OF(misc), ONE_OF(integers));
    emit(p, "%s", buf);
    break;
  }
  case 13:
    emit(p, "for k, v in pairs(");
    table_expr(p);
    emit(p, ") do n = n + 1 if n > 1000 then break end end");
    break;
  case 14:
    emit(p, "local co = coroutine.create(");
    function_expr(p, depth);
    emit(p, ") coroutine.resume(co) coroutine.resume(co) coroutine.close(co)");
    break;
  case 15:
    emit(p, "print(");
    value(p, depth);
    emit(p, ")");
    break;
  case 16:
    emit(p, "pcall(function() ");
    statement(p, depth + 1);
    emit(p, " end)");
    break;
  case 17:
    emit(p, "for i = 1, %s do ", ONE_OF(integers));
    statement(p, depth + 1);
    emit(p, " end");
    break;
  case 18:
    emit(p, "xpcall(function() ");
    statement(p, depth + 1);
    emit(p, " end, ");
    function_expr(p, depth + 1);
    emit(p, ")");
    break;
  default:
    emit(p, "local x = ");
    value(p, depth);
    emit(p, " x = tostring(x) .. tostring(x)");
  }
}

static const char PRELUDE[] =
    "local context_json_view\n"
    "local function deep(n) local t = {} for _ = 1, n do t = { t } end return t end\n"
    "local function shared(n) local t = { \"leaf\" } for _ = 1, n do local u = {} "
    "for i = 1, 10 do u[i] = t end t = u end return t end\n"
    "local function forged() local t = { type = \"t\", title = \"f\" } "
    "return setmetatable(t, { __ac_readonly = t, __index = t }) end\n"
    "local function cyclic() local t = {} t.t = t return t end\n"
    "local function huge_len() return setmetatable({}, { __len = function() return "
    "math.maxinteger end }) end\n"
    "local function index_forever() return setmetatable({}, { __index = function(_, i) "
    "return i end }) end\n"
    "local function json_view() return context_json_view end\n"
    "local big = {} for i = 1, 1000 do big[i] = i end\n";

static void generate(prog *p) {
  p->len = 0;
  emit(p, "%s", PRELUDE);
  /* sometimes the top level does the work, under the load's limits */
  if (pick(4) == 0) {
    emit(p, "local context = { json = require(\"cjson\"), config = {}, log = { info = print, "
            "warn = print }, db = { get = print, set = print }, retry = error }\n");
    emit(p, "pcall(function() local n = 0 ");
    statement(p, 0);
    emit(p, " end)\n");
  }
  emit(p, "return { id = \"fuzz\", capabilities = { \"agent_query\" },\n"
          "  onAgentQuery = function(q, context)\n"
          "    local n = 0\n"
          "    context_json_view = context.json\n");
  int stmts = 1 + pick(6);
  for (int i = 0; i < stmts; i++) {
    if (pick(3)) {
      emit(p, "    pcall(function() ");
      statement(p, 0);
      emit(p, " end)\n");
    } else {
      emit(p, "    ");
      statement(p, 0);
      emit(p, "\n");
    }
  }
  emit(p, "    return { { type = \"t\", title = tostring(n) } }\n  end }\n");
}

/* ---- running one program ------------------------------------------------ */

typedef struct job {
  ac_plugin *plugin;
  ac_vm *vm;
  ac_kv *kv;
  json_t *query, *config, *result;
  ac_call_context ctx;
  ac_outcome out;
} job;

static void job_run(void *arg) {
  job *j = arg;
  ac_plugin_call(j->vm, AC_HOOK_QUERY, j->query, &j->ctx, &j->result, &j->out);
}

static void job_free(void *arg) {
  job *j = arg;
  ac_vm_free(j->vm);
  ac_kv_free(j->kv);
  json_decref(j->query);
  json_decref(j->config);
  json_decref(j->result);
  ac_plugin_free(j->plugin);
  free(j);
}

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void drop_line(void *ud, ac_log_level level, const char *line, size_t len) {
  (void)ud, (void)level, (void)line, (void)len;
}

/* How programs ended: load failures, then each call outcome kind. */
static long load_failures, kinds[8];

/* Returns NULL when the program behaved, else what went wrong. */
static const char *run_program(const prog *p, ac_logger *log, char *why, size_t size) {
  ac_plugin_limits limits = {timeout_ms, MEMORY_LIMIT, log};
  int64_t start = ac_clock_mono_ms();
  ac_plugin *plugin = NULL;
  ac_outcome out;
  ac_plugin_load_source("fuzz.lua", p->text, p->len, &limits, &plugin, &out);
  int64_t loaded = ac_clock_mono_ms();
  if (loaded - start > timeout_ms + 1000) {
    snprintf(why, size, "loading took %lld ms", (long long)(loaded - start));
    ac_plugin_free(plugin);
    return why;
  }
  if (!plugin) {
    if (strstr(out.message, "abandoned") || strstr(out.message, "stuck in a C function")) {
      snprintf(why, size, "loading was abandoned: %s", out.message);
      return why;
    }
    load_failures++;
    return NULL; /* a load that fails cleanly is fine */
  }
  job *j = calloc(1, sizeof *j);
  j->plugin = plugin;
  j->vm = ac_plugin_take_state(plugin);
  j->kv = ac_kv_memory_new();
  j->query = json_pack("{s:s, s:s}", "text", "fuzz 14360570", "namespaceId", "ns");
  j->config = json_pack("{s:s}", "url", "https://example.org");
  j->ctx = (ac_call_context){.namespace_id = "ns", .plugin_id = "fuzz", .config = j->config,
                             .kv = j->kv};
  ac_guard_job gj = {job_run, job_free, j};
  int64_t call_start = ac_clock_mono_ms();
  int rc = ac_guard_run(&gj, call_start + timeout_ms + 1000);
  int64_t took = ac_clock_mono_ms() - call_start;
  if (rc == AC_ERR_TIMEOUT) {
    snprintf(why, size, "the call was abandoned stuck in C after %lld ms", (long long)took);
    return why;
  }
  if (rc != AC_OK) {
    snprintf(why, size, "the guard refused the call (%d)", rc);
    job_free(j);
    return why;
  }
  if (strlen(j->out.message) >= AC_OUTCOME_MSG_MAX) {
    snprintf(why, size, "an outcome message of %zu bytes", strlen(j->out.message));
    job_free(j);
    return why;
  }
  kinds[j->out.kind & 7]++;
  job_free(j);
  if (took > timeout_ms + 1000) {
    snprintf(why, size, "the call took %lld ms", (long long)took);
    return why;
  }
  size_t rss = rss_bytes();
  if (rss > MEMORY_LIMIT + RSS_SLACK) {
    snprintf(why, size, "resident memory reached %zu MiB", rss >> 20);
    return why;
  }
  return NULL;
}

static void write_file(const char *path, const prog *p) {
  FILE *f = fopen(path, "w");
  if (!f)
    return;
  fwrite(p->text, 1, p->len, f);
  fclose(f);
}

int main(int argc, char **argv) {
  long seconds = 10, programs = 0;
  uint64_t seed = (uint64_t)ac_clock_wall_ms();
  const char *out_dir = "fuzz-out";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--seconds"))
      seconds = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--programs"))
      programs = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--seed"))
      seed = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--out"))
      out_dir = argv[i + 1];
    else if (!strcmp(argv[i], "--timeout-ms"))
      timeout_ms = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: %s [--seconds N] [--programs N] [--seed S] [--out DIR] [--timeout-ms N]\n", argv[0]);
      return 2;
    }
  }
  if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "fuzz_sandbox: cannot create %s: %s\n", out_dir, strerror(errno));
    return 2;
  }
  rng_state = seed;
  ac_logger *log = ac_logger_new(AC_LOG_DEBUG, drop_line, NULL);
  char current[1200];
  snprintf(current, sizeof current, "%s/current.lua", out_dir);
  fprintf(stderr, "fuzz_sandbox: seed %llu, %ld s%s\n", (unsigned long long)seed, seconds,
          programs ? " (or the program count)" : "");
  int64_t end = ac_clock_mono_ms() + seconds * 1000;
  long n = 0;
  static prog p;
  while (ac_clock_mono_ms() < end && (!programs || n < programs)) {
    generate(&p);
    write_file(current, &p); /* a crash leaves the program that caused it */
    char why[512];
    if (run_program(&p, log, why, sizeof why)) {
      char kept[1300];
      snprintf(kept, sizeof kept, "%s/failure-%llu-%ld.lua", out_dir, (unsigned long long)seed, n);
      write_file(kept, &p);
      fprintf(stderr, "fuzz_sandbox: program %ld (seed %llu): %s; kept as %s\n", n,
              (unsigned long long)seed, why, kept);
      ac_logger_free(log);
      return 1;
    }
    n++;
  }
  fprintf(stderr, "fuzz_sandbox: %ld programs clean, peak resident %zu MiB; %ld failed to load;"
          " calls: %ld ok, %ld error, %ld timeout, %ld memory, %ld contract\n", n,
          rss_bytes() >> 20, load_failures, kinds[AC_OUTCOME_OK], kinds[AC_OUTCOME_ERROR],
          kinds[AC_OUTCOME_TIMEOUT], kinds[AC_OUTCOME_MEMORY], kinds[AC_OUTCOME_CONTRACT]);
  unlink(current);
  ac_logger_free(log);
  return 0;
}
