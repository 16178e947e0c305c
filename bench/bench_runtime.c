/* bench_runtime.c — benchmark items 1 and 2 (docs/benchmarks.md): the cost of the sandbox's
 * deadline enforcement and of the engine's call path, as ratios against a
 * bare lua_State measured in the same run. */
#include "core/clock.h"
#include "plugin/plugin.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

static const char loop_body[] =
    "local s = 0 for i = 1, 20000000 do s = s + i % 7 end return s";

static const char plugin_src[] =
    "return { id = 'bench', capabilities = { 'agent_query' },\n"
    "  onAgentQuery = function(q, context)\n"
    "    if q.text == 'loop' then\n"
    "      local s = 0 for i = 1, 20000000 do s = s + i % 7 end\n"
    "      return { { type = 'sum', title = tostring(s) } }\n"
    "    end\n"
    "    return {}\n"
    "  end }\n";

#define ROUNDS 5
#define CALLS 200000

static double best(double a, double b) { return a < b ? a : b; }

static double bare_loop_ms(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_loadstring(L, loop_body);
  int64_t t0 = ac_clock_mono_us();
  lua_pcall(L, 0, 1, 0);
  double ms = (double)(ac_clock_mono_us() - t0) / 1000.0;
  lua_close(L);
  return ms;
}

static double sandbox_loop_ms(ac_vm *vm, const ac_call_context *ctx) {
  json_t *q = json_pack("{s:s}", "text", "loop");
  json_t *result = NULL;
  ac_outcome out;
  int64_t t0 = ac_clock_mono_us();
  ac_plugin_call(vm, AC_HOOK_QUERY, q, ctx, &result, &out);
  double ms = (double)(ac_clock_mono_us() - t0) / 1000.0;
  if (out.kind != AC_OUTCOME_OK)
    fprintf(stderr, "bench: loop failed: %s\n", out.message);
  json_decref(result);
  json_decref(q);
  return ms;
}

static double bare_calls_per_s(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_dostring(L, "f = function(q, context) return {} end; q = { text = 'x' }; c = {}");
  lua_getglobal(L, "f");
  lua_getglobal(L, "q");
  lua_getglobal(L, "c");
  int64_t t0 = ac_clock_mono_us();
  for (int i = 0; i < CALLS; i++) {
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pcall(L, 2, 1, 0);
    lua_pop(L, 1);
  }
  double s = (double)(ac_clock_mono_us() - t0) / 1e6;
  lua_close(L);
  return CALLS / s;
}

static double engine_calls_per_s(ac_vm *vm, const ac_call_context *ctx) {
  json_t *q = json_pack("{s:s}", "text", "x");
  ac_outcome out;
  int64_t t0 = ac_clock_mono_us();
  for (int i = 0; i < CALLS; i++) {
    json_t *result = NULL;
    ac_plugin_call(vm, AC_HOOK_QUERY, q, ctx, &result, &out);
    json_decref(result);
  }
  double s = (double)(ac_clock_mono_us() - t0) / 1e6;
  json_decref(q);
  return CALLS / s;
}

int main(void) {
  ac_plugin_limits limits = {5000, 64u << 20, NULL};
  ac_plugin *p = NULL;
  ac_outcome out;
  ac_plugin_load_source("bench.lua", plugin_src, strlen(plugin_src), &limits, &p, &out);
  if (!p) {
    fprintf(stderr, "bench: %s\n", out.message);
    return 1;
  }
  ac_vm *vm = ac_plugin_take_state(p);
  json_t *config = json_object();
  ac_call_context ctx = {.namespace_id = "bench", .plugin_id = "bench", .config = config,
                         .config_serial = 1};

  double bare = 1e18, sandboxed = 1e18;
  for (int r = 0; r < ROUNDS; r++) {
    bare = best(bare, bare_loop_ms());
    sandboxed = best(sandboxed, sandbox_loop_ms(vm, &ctx));
  }
  printf("1. timeout enforcement: CPU loop %.1f ms sandboxed vs %.1f ms bare: ratio %.3fx "
         "(target <= 1.10x)\n",
         sandboxed, bare, sandboxed / bare);

  double bare_cps = 0, engine_cps = 0;
  for (int r = 0; r < ROUNDS; r++) {
    double b = bare_calls_per_s(), e = engine_calls_per_s(vm, &ctx);
    bare_cps = b > bare_cps ? b : bare_cps;
    engine_cps = e > engine_cps ? e : engine_cps;
  }
  printf("2. dispatch overhead: %.0f calls/s through the engine vs %.0f bare lua_pcall: "
         "ratio %.1fx slower; %.1f us per engine call (one core)\n",
         engine_cps, bare_cps, bare_cps / engine_cps, 1e6 / engine_cps);
  json_decref(config);
  ac_vm_free(vm);
  ac_plugin_free(p);
  return 0;
}
