/* test_results_text.c — onAgentQuery results written as text agree with
 * the general way (convert to JSON, check against schemas/plugin-result.json,
 * write): on every value the fast writer takes, the text is the general
 * way's byte for byte; every value the general way refuses or changes
 * (an invalid result, more than 20, integer keys) the fast writer leaves
 * to it, leaving its buffer as it was; the usual results are taken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/json_write.h"
#include "lua/convert.h"
#include "lua/results_text.h"
#include "lua/vm.h"
#include "schema/schema.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ac_schema *result_schema;

/* The PluginResult schema as the engine compiles it: pluginId is set by
 * the engine, so results are checked without it. */
static int load_schema(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s/schemas/plugin-result.json", getenv("AC_SOURCE_DIR"));
  json_t *doc = json_load_file(path, 0, NULL);
  assert_non_null(doc);
  json_t *required = json_object_get(doc, "required");
  for (size_t i = 0; i < json_array_size(required); i++)
    if (strcmp(json_string_value(json_array_get(required, i)), "pluginId") == 0)
      json_array_remove(required, i);
  json_object_set_new(json_object_get(doc, "properties"), "pluginId", json_true());
  ac_err err = {0};
  assert_int_equal(ac_schema_compile(doc, &result_schema, &err), AC_OK);
  json_decref(doc);
  return 0;
}

static int free_schema(void **state) {
  (void)state;
  ac_schema_free(result_schema);
  return 0;
}

/* The general way's text for the value at the top of L, or NULL when it
 * refuses the value or any result, keeps fewer than it got, or changes a
 * result (a pluginId of the plugin's own). */
static char *general_text(lua_State *L) {
  json_t *v = NULL;
  ac_err err = {0};
  if (ac_lua_to_json(L, -1, 1, &v, &err) != AC_OK)
    return NULL;
  ac_buf b = AC_BUF_INIT((size_t)64 << 20);
  int ok = 1;
  if (json_is_array(v)) {
    ok = json_array_size(v) <= 20;
    for (size_t i = 0; ok && i < json_array_size(v); i++) {
      json_t *r = json_array_get(v, i);
      ok = ac_schema_validate(result_schema, r, NULL) == AC_OK && !json_object_get(r, "pluginId");
      if (ok) {
        json_object_set_new(r, "pluginId", json_string("demo"));
        ok = (i == 0 || ac_buf_append(&b, ",", 1) == AC_OK) && ac_json_append(&b, r) == AC_OK;
      }
    }
  } else {
    ok = json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0);
  }
  json_decref(v);
  if (!ok) {
    ac_buf_free(&b);
    return NULL;
  }
  return ac_buf_take(&b);
}

typedef struct vm_fixture {
  ac_vm *vm;
  lua_State *L;
} vm_fixture;

static vm_fixture vm_open(size_t memory_limit) {
  ac_vm_config cfg = {1000, memory_limit, NULL, "demo"};
  vm_fixture f = {0};
  ac_err err = {0};
  assert_int_equal(ac_vm_new(&cfg, &f.vm, &err), AC_OK);
  f.L = ac_vm_state(f.vm);
  lua_pushlightuserdata(f.L, NULL); /* json.null, as results hold it */
  lua_setglobal(f.L, "null");
  return f;
}

/* Pushes what the chunk returns. */
static void push_value(lua_State *L, const char *chunk) {
  if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
    fail_msg("%s: %s", chunk, lua_tostring(L, -1));
}

/* Compares both ways on chunk's value; returns whether the fast one took it. */
static int compare(lua_State *L, const char *chunk) {
  push_value(L, chunk);
  int top = lua_gettop(L);
  ac_buf fast = AC_BUF_INIT((size_t)64 << 20);
  assert_int_equal(ac_buf_puts(&fast, "prefix"), AC_OK);
  int took = ac_lua_results_text(L, -1, "demo", &fast);
  assert_int_equal(lua_gettop(L), top);
  char *want = general_text(L);
  lua_settop(L, top - 1);
  if (took) {
    if (!want)
      fail_msg("taken, but the general way refuses it: %s", chunk);
    if (strcmp(fast.data + 6, want) != 0)
      fail_msg("%s\nfast    %s\ngeneral %s", chunk, fast.data + 6, want);
  } else {
    assert_int_equal(fast.len, 6);
    assert_string_equal(fast.data, "prefix");
  }
  free(want);
  ac_buf_free(&fast);
  return took;
}

/* Compares every chunk; each must be taken (or left) as want_taken says. */
static void compare_all(const char *const *chunks, size_t n, int want_taken) {
  vm_fixture f = vm_open(64u << 20);
  for (size_t i = 0; i < n; i++)
    if (compare(f.L, chunks[i]) != want_taken)
      fail_msg("%s: %s", want_taken ? "not taken" : "taken", chunks[i]);
  ac_vm_free(f.vm);
}

static void test_usual_results_are_taken_and_agree(void **state) {
  (void)state;
  const char *const usual[] = {
      "return nil",
      "return {}",
      "return null",
      "return {{type = 't', title = ''}}",
      "return {{type = 'company', title = 'ТОВ \"Дніпро\"', summary = 'a\\nb\\t\\1\\\\',"
      " confidence = 0.5, source = {name = 'Opendatabot', url = 'https://opendatabot.ua/c/1'},"
      " data = {edrpou = '14360570', checksumValid = true, mock = false, capital = 654000,"
      " list = {1, 2.5, -0.0, 1e20, 2^53, -7}, nested = {a = {b = {}}}, none = null}}}",
      "return {{type = 't', title = 'x', confidence = 0}, {type = 't', title = 'y', confidence = 1},"
      " {type = 't', title = 'z', confidence = 1.0, source = {name = 'n', url = 'urn:isbn:1',"
      " extra = {1, 2}}}}",
      "local r = {} for i = 1, 20 do r[i] = {type = 't', title = 'n' .. i} end return r",
      /* a table met twice is written twice */
      "local s = {name = 'n', url = 'http://x.example/'}"
      " return {{type = 't', title = 'a', source = s}, {type = 't', title = 'b', source = s}}",
  };
  compare_all(usual, sizeof usual / sizeof *usual, 1);
}

static void test_anything_else_is_left_to_the_general_way(void **state) {
  (void)state;
  const char *const others[] = {
      /* invalid results */
      "return {{title = 'x'}}",
      "return {{type = 't'}}",
      "return {{type = '', title = 'x'}}",
      "return {{type = 1, title = 'x'}}",
      "return {{type = 't', title = 'x', summary = 2}}",
      "return {{type = 't', title = 'x', confidence = 1.5}}",
      "return {{type = 't', title = 'x', confidence = -0.1}}",
      "return {{type = 't', title = 'x', confidence = '0.5'}}",
      "return {{type = 't', title = 'x', confidence = 0/0}}",
      "return {{type = 't', title = 'x', source = {name = 'n'}}}",
      "return {{type = 't', title = 'x', source = {url = 'https://x.example'}}}",
      "return {{type = 't', title = 'x', source = {name = 'n', url = 'not a uri'}}}",
      "return {{type = 't', title = 'x', source = {name = 'n', url = 'http://[::1'}}}",
      "return {{type = 't', title = 'x', source = {}}}",
      "return {{type = 't', title = 'x', source = 'https://x.example'}}",
      "return {{type = 't', title = 'x', data = {}}}",
      "return {{type = 't', title = 'x', data = {1, 2}}}",
      "return {{type = 't', title = 'x', data = 'text'}}",
      "return {{type = 't', title = 'x', extra = 1}}",
      "return {{type = 't', title = 'x', [1] = 'y'}}",
      "return {{type = 't', title = '\\xff'}}",
      "return {{type = 't', title = 'x', data = {['\\xff'] = 1}}}",
      "return {{type = 't', title = 'x', data = {f = print}}}",
      "return {{type = 't', title = 'x', data = {v = 1/0}}}",
      "return {1, 2}",
      "return {{}}",
      "return 'text'",
      "return 5",
      "return {a = 1}",
      "return {[2] = {type = 't', title = 'x'}}",
      /* valid, but the general way decides: more than 20, a pluginId of
       * the plugin's own, integer keys in an object, deep or large values */
      "local r = {} for i = 1, 21 do r[i] = {type = 't', title = 'n' .. i} end return r",
      "return {{type = 't', title = 'x', pluginId = 'other'}}",
      "return {{type = 't', title = 'x', data = {[5] = 'five'}}}",
      "local d = {} for i = 1, 70 do d = {d = d} end return {{type = 't', title = 'x', data = d}}",
      "local d = {} for i = 1, 5000 do d['k' .. i] = i end"
      " return {{type = 't', title = 'x', data = d}}",
      "return {{type = 't', title = string.rep('x', 300 * 1024)}}",
  };
  compare_all(others, sizeof others / sizeof *others, 0);
}

/* Text that would not fit in what the state's cap leaves is left to the
 * general way, which refuses it too. */
static void test_the_memory_cap_counts(void **state) {
  (void)state;
  const char *big = "local d = {} for i = 1, 100 do d['k' .. i] = string.rep('x', 1000) .. i end"
                    " return {{type = 't', title = 'x', data = d}}";
  vm_fixture f = vm_open(8u << 20);
  push_value(f.L, big);
  lua_gc(f.L, LUA_GCCOLLECT);
  size_t used = ac_vm_memory_used(f.vm);
  ac_vm_free(f.vm);
  /* room for the value in the state, not for its 100 KB of text besides */
  f = vm_open(used + 48 * 1024);
  assert_int_equal(compare(f.L, big), 0);
  assert_int_equal(compare(f.L, "return {{type = 't', title = string.rep('x', 1024)}}"), 1);
  ac_vm_free(f.vm);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_usual_results_are_taken_and_agree),
      cmocka_unit_test(test_anything_else_is_left_to_the_general_way),
      cmocka_unit_test(test_the_memory_cap_counts),
  };
  return cmocka_run_group_tests(tests, load_schema, free_schema);
}
