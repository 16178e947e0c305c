/* test_schema.c — the JSON Schema module: case files in the test-suite
 * shape, Lua conversion, keyword refusals, defaults, secrets, export and the
 * `schema validate` command. */
#include "cli/commands.h"
#include "schema/schema.h"

#include <dirent.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers ---- */

static const char *source_dir(void) {
  const char *d = getenv("AC_SOURCE_DIR");
  return d && *d ? d : AC_SOURCE_DIR;
}

static json_t *parse(const char *text) {
  json_error_t jerr;
  json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (!v)
    fail_msg("bad JSON in test: %s: %s", jerr.text, text);
  return v;
}

static ac_schema *compile_text(const char *text) {
  json_t *j = parse(text);
  ac_schema *s = NULL;
  ac_err err = {0};
  int rc = ac_schema_compile(j, &s, &err);
  json_decref(j);
  if (rc != AC_OK)
    fail_msg("schema did not compile: %s: %s", err.msg, text);
  return s;
}

/* Compares two JSON values, failing with both texts on a difference. */
static void assert_json_eq(const json_t *got, const char *want_text) {
  json_t *want = parse(want_text);
  if (!json_equal((json_t *)got, want)) {
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    fail_msg("got %s, want %s", g ? g : "(null)", want_text);
  }
  json_decref(want);
}

/* ---- case files: [{"description","schema","tests":[{"description",
 * "data","valid", optional "errors"}]}] ---- */

typedef struct tally {
  int passed, total, excluded;
  int verbose; /* print each mismatch */
} tally;

static void run_group(const char *file, const json_t *group, tally *t, int strict) {
  const char *gdesc = json_string_value(json_object_get(group, "description"));
  ac_schema *s = NULL;
  ac_err err = {0};
  int rc = ac_schema_compile(json_object_get(group, "schema"), &s, &err);
  const json_t *tests = json_object_get(group, "tests");
  if (rc == AC_ERR_UNSUPPORTED && !strict) {
    t->excluded += (int)json_array_size(tests);
    return;
  }
  if (rc != AC_OK) {
    t->total += (int)json_array_size(tests);
    if (t->verbose)
      printf("  %s: \"%s\": schema refused: %s\n", file, gdesc, err.msg);
    return;
  }
  size_t i;
  json_t *test;
  json_array_foreach(tests, i, test) {
    const char *tdesc = json_string_value(json_object_get(test, "description"));
    int want_valid = json_is_true(json_object_get(test, "valid"));
    json_t *errors = NULL;
    int vrc = ac_schema_validate(s, json_object_get(test, "data"), &errors);
    int ok = (vrc == AC_OK) == want_valid && (vrc == AC_OK || vrc == AC_ERR_INVALID);
    ok = ok && (json_array_size(errors) == 0) == want_valid;
    const json_t *want_errors = json_object_get(test, "errors");
    if (ok && want_errors && !json_equal(errors, (json_t *)want_errors))
      ok = 0;
    t->total++;
    t->passed += ok;
    if (!ok && t->verbose) {
      char *got = json_dumps(errors, JSON_COMPACT);
      printf("  %s: \"%s\" / \"%s\": want %s, got %s\n", file, gdesc, tdesc,
             want_valid ? "valid" : "invalid", got ? got : "(null)");
      free(got);
    }
    json_decref(errors);
  }
  ac_schema_free(s);
}

/* Runs every *.json file of dir (recursively). */
static void run_dir(const char *dir, tally *t, int strict) {
  DIR *d = opendir(dir);
  if (!d)
    fail_msg("cannot open %s", dir);
  struct dirent *e;
  char **names = NULL;
  size_t n = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    names = realloc(names, (n + 1) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  for (size_t k = 0; k < n; k++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[k]);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
      run_dir(path, t, strict);
    } else if (strstr(names[k], ".json")) {
      json_error_t jerr;
      json_t *groups = json_load_file(path, JSON_ALLOW_NUL, &jerr);
      if (!groups)
        fail_msg("%s: %s", path, jerr.text);
      size_t i;
      json_t *g;
      json_array_foreach(groups, i, g) run_group(names[k], g, t, strict);
      json_decref(groups);
    }
    free(names[k]);
  }
  free(names);
}

static void test_case_files(void **state) {
  (void)state;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/schema-cases", source_dir());
  tally t = {.verbose = 1};
  run_dir(dir, &t, 1);
  printf("schema-cases: %d of %d passed\n", t.passed, t.total);
  assert_true(t.total > 300);
  assert_int_equal(t.passed, t.total);
}

/* The official JSON Schema Test Suite, measured when AC_JSTS_DIR names a
 * copy of it (never committed here); groups using keywords the engine does
 * not support are excluded, as the engine refuses them at load. */
static void test_official_suite(void **state) {
  (void)state;
  const char *root = getenv("AC_JSTS_DIR");
  const char *subs[] = {"core", "format"};
  int total = 0;
  for (size_t i = 0; i < 2; i++) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, subs[i]);
    tally t = {.verbose = 1};
    run_dir(dir, &t, 0);
    printf("official suite %s: passed %d of %d (%d excluded: unsupported keywords)\n", subs[i],
           t.passed, t.total, t.excluded);
    total += t.total;
  }
  assert_true(total > 0);
}

/* ---- ac_schema_from_lua ---- */

/* Runs chunk in a fresh state (with `null` standing for cjson's json.null)
 * and converts the table it returns. */
static int lua_convert(const char *chunk, json_t **out, ac_err *err) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_pushlightuserdata(L, NULL);
  lua_setglobal(L, "null");
  if (luaL_dostring(L, chunk) != LUA_OK)
    fail_msg("chunk failed: %s", lua_tostring(L, -1));
  int top = lua_gettop(L);
  int rc = ac_schema_from_lua(L, -1, out, err);
  assert_int_equal(lua_gettop(L), top); /* the stack is left as found */
  lua_close(L);
  return rc;
}

typedef struct lua_ok_case {
  const char *chunk;
  const char *want;
} lua_ok_case;

static const lua_ok_case lua_ok_cases[] = {
    /* empty tables: {} or [] by the keyword they stand under */
    {"return {type='object', properties={}, required={}}",
     "{\"type\":\"object\",\"properties\":{},\"required\":[]}"},
    {"return {allOf={}, anyOf={}, oneOf={}, prefixItems={}, enum={}, examples={}, type={}}",
     "{\"allOf\":[],\"anyOf\":[],\"oneOf\":[],\"prefixItems\":[],\"enum\":[],\"examples\":[],"
     "\"type\":[]}"},
    {"return {['$defs']={}, additionalProperties={}, items={}, ['not']={}, x_custom={}}",
     "{\"$defs\":{},\"additionalProperties\":{},\"items\":{},\"not\":{},\"x_custom\":{}}"},
    {"return {properties={a={}, b={properties={}}}}",
     "{\"properties\":{\"a\":{},\"b\":{\"properties\":{}}}}"},
    {"return {allOf={{}, {required={}}}}", "{\"allOf\":[{},{\"required\":[]}]}"},
    /* defaults and consts take their shape from the schema's type */
    {"return {type='object', properties={tags={type='array', default={}}, meta={type='object', "
     "default={}}, any={default={}}, nullable={type={'array','null'}, default={}}}}",
     "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"default\":[]},"
     "\"meta\":{\"type\":\"object\",\"default\":{}},\"any\":{\"default\":{}},"
     "\"nullable\":{\"type\":[\"array\",\"null\"],\"default\":[]}}}"},
    {"return {type='object', properties={list={type='array'}, m={type='object'}}, "
     "default={list={}, m={}, other={}}}",
     "{\"type\":\"object\",\"properties\":{\"list\":{\"type\":\"array\"},\"m\":{\"type\":\"object\"}},"
     "\"default\":{\"list\":[],\"m\":{},\"other\":{}}}"},
    {"return {type='array', items={type='array'}, default={{}, {1}}}",
     "{\"type\":\"array\",\"items\":{\"type\":\"array\"},\"default\":[[],[1]]}"},
    {"return {type='array', enum={{}, {'a'}}, const={}}",
     "{\"type\":\"array\",\"enum\":[[],[\"a\"]],\"const\":[]}"},
    {"return {items={type='string'}, default={}}",
     "{\"items\":{\"type\":\"string\"},\"default\":[]}"},
    /* numbers: integral floats become integers */
    {"return {minimum=3.0, maximum=2.5, multipleOf=1e300, minLength=2, const=-0.0}",
     "{\"minimum\":3,\"maximum\":2.5,\"multipleOf\":1e300,\"minLength\":2,\"const\":0}"},
    /* booleans, arrays, json.null */
    {"return {properties={a=true, b=false}, additionalProperties=false}",
     "{\"properties\":{\"a\":true,\"b\":false},\"additionalProperties\":false}"},
    {"return {enum={'a', null, 2, true}}", "{\"enum\":[\"a\",null,2,true]}"},
    {"return true", "true"},
    {"return false", "false"},
    /* metamethods never run: __index/__pairs would raise */
    {"local mt = {__index=function() error('ran __index') end, "
     "__pairs=function() error('ran __pairs') end, __len=function() error('ran __len') end}\n"
     "return setmetatable({type='object', properties=setmetatable({a={type='string'}}, mt)}, mt)",
     "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}"},
    /* unknown keywords still convert, so compile can name them */
    {"return {['$ref']='#/x', patternProperties={['^a']={}}}",
     "{\"$ref\":\"#/x\",\"patternProperties\":{\"^a\":{}}}"},
};

static void test_from_lua_ok(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof lua_ok_cases / sizeof lua_ok_cases[0]; i++) {
    json_t *out = NULL;
    ac_err err = {0};
    int rc = lua_convert(lua_ok_cases[i].chunk, &out, &err);
    if (rc != AC_OK)
      fail_msg("case %zu: %s", i, err.msg);
    assert_json_eq(out, lua_ok_cases[i].want);
    json_decref(out);
  }
}

static void test_from_lua_integer_types(void **state) {
  (void)state;
  json_t *out = NULL;
  assert_int_equal(lua_convert("return {minimum=3.0, maximum=2.5, minItems=1}", &out, NULL), AC_OK);
  assert_true(json_is_integer(json_object_get(out, "minimum")));
  assert_true(json_is_real(json_object_get(out, "maximum")));
  assert_true(json_is_integer(json_object_get(out, "minItems")));
  json_decref(out);
}

/* Keys come out sorted, whatever Lua's hash order: the exported schema is
 * the same on every run. */
static void test_from_lua_sorted(void **state) {
  (void)state;
  json_t *out = NULL;
  assert_int_equal(lua_convert("return {type='object', title='t', description='d', "
                               "properties={z={}, a={}, m={}}}",
                               &out, NULL),
                   AC_OK);
  char *text = json_dumps(out, JSON_COMPACT);
  assert_string_equal(text, "{\"description\":\"d\",\"properties\":{\"a\":{},\"m\":{},\"z\":{}},"
                            "\"title\":\"t\",\"type\":\"object\"}");
  free(text);
  json_decref(out);
}

typedef struct lua_bad_case {
  const char *chunk;
  const char *message;
} lua_bad_case;

static const lua_bad_case lua_bad_cases[] = {
    {"return {properties={x={default=function() end}}}",
     "configSchema/properties/x/default: functions cannot appear in a schema"},
    {"return {properties={x={default=io.stdout}}}",
     "configSchema/properties/x/default: userdata cannot appear in a schema"},
    {"return {examples={coroutine.create(function() end)}}",
     "configSchema/examples/0: threads cannot appear in a schema"},
    {"local t = {type='object'}; t.properties = {self=t}; return t",
     "configSchema/properties/self: a table cannot contain itself"},
    {"local s = {}; for i = 1, 70 do s = {items=s} end; return s",
     "tables nested deeper than 64 levels"},
    {"return {minimum=0/0}", "configSchema/minimum: NaN and infinity cannot appear in a schema"},
    {"return {maximum=math.huge}", "configSchema/maximum: NaN and infinity cannot appear in a schema"},
    {"return {properties={[1]={}, a={}}}",
     "configSchema/properties: tables must be arrays (keys 1..n) or have only string keys"},
    {"return {[true]='x'}",
     "configSchema: tables must be arrays (keys 1..n) or have only string keys"},
    {"return {required={[1]='a', [3]='b'}}",
     "configSchema/required: tables must be arrays (keys 1..n) or have only string keys"},
    {"return {default={[1.5]=1}}",
     "configSchema/default: tables must be arrays (keys 1..n) or have only string keys"},
    {"return {title='\\xff'}", "configSchema/title: strings must be valid UTF-8"},
    {"return {properties={['a/b']={enum={print}}}}",
     "configSchema/properties/a~1b/enum/0: functions cannot appear in a schema"},
};

static void test_from_lua_refusals(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof lua_bad_cases / sizeof lua_bad_cases[0]; i++) {
    json_t *out = NULL;
    ac_err err = {0};
    int rc = lua_convert(lua_bad_cases[i].chunk, &out, &err);
    if (rc == AC_OK)
      fail_msg("case %zu converted: %s", i, lua_bad_cases[i].chunk);
    assert_int_equal(rc, AC_ERR_INVALID);
    assert_null(out);
    if (!strstr(err.msg, lua_bad_cases[i].message))
      fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, lua_bad_cases[i].message);
  }
}

/* ---- ac_schema_compile refusals ---- */

typedef struct compile_case {
  const char *schema;
  int code;
  const char *message; /* exact, or a prefix when it ends in '*' */
} compile_case;

static const compile_case compile_cases[] = {
    {"{\"properties\":{\"url\":{\"$ref\":\"#/x\"}}}", AC_ERR_UNSUPPORTED,
     "configSchema/properties/url: unsupported keyword \"$ref\""},
    {"{\"properties\":{\"a/b\":{\"type\":\"string\",\"$ref\":\"x\"}}}", AC_ERR_UNSUPPORTED,
     "configSchema/properties/a~1b: unsupported keyword \"$ref\""},
    {"{\"patternProperties\":{}}", AC_ERR_UNSUPPORTED,
     "configSchema: unsupported keyword \"patternProperties\""},
    {"{\"$defs\":{}}", AC_ERR_UNSUPPORTED, "configSchema: unsupported keyword \"$defs\""},
    {"{\"$id\":\"urn:x\"}", AC_ERR_UNSUPPORTED, "configSchema: unsupported keyword \"$id\""},
    {"{\"if\":{}}", AC_ERR_UNSUPPORTED, "configSchema: unsupported keyword \"if\""},
    {"{\"items\":{\"contains\":{}}}", AC_ERR_UNSUPPORTED,
     "configSchema/items: unsupported keyword \"contains\""},
    {"{\"allOf\":[{},{\"dependentRequired\":{}}]}", AC_ERR_UNSUPPORTED,
     "configSchema/allOf/1: unsupported keyword \"dependentRequired\""},
    {"{\"unevaluatedProperties\":false}", AC_ERR_UNSUPPORTED,
     "configSchema: unsupported keyword \"unevaluatedProperties\""},
    {"{\"readOnly\":true}", AC_ERR_UNSUPPORTED, "configSchema: unsupported keyword \"readOnly\""},
    {"{\"nullable\":true}", AC_ERR_UNSUPPORTED, "configSchema: unsupported keyword \"nullable\""},
    {"{\"additionalItems\":false}", AC_ERR_UNSUPPORTED,
     "configSchema: unsupported keyword \"additionalItems\""},
    {"{\"minLength\":1,\"$ref\":\"x\"}", AC_ERR_UNSUPPORTED,
     "configSchema: unsupported keyword \"$ref\""},
    {"{\"format\":\"date\"}", AC_ERR_UNSUPPORTED, "configSchema/format: unsupported format \"date\""},
    {"{\"items\":{\"format\":\"iri\"}}", AC_ERR_UNSUPPORTED,
     "configSchema/items/format: unsupported format \"iri\""},
    {"{\"$schema\":\"http://json-schema.org/draft-07/schema#\"}", AC_ERR_UNSUPPORTED,
     "configSchema/$schema: unsupported dialect \"http://json-schema.org/draft-07/schema#\" "
     "(only https://json-schema.org/draft/2020-12/schema)"},
    {"{\"properties\":{\"a\":{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}}}",
     AC_ERR_UNSUPPORTED,
     "configSchema/properties/a/$schema: \"$schema\" is only supported at the schema root"},
    {"{\"minLength\":-1}", AC_ERR_INVALID, "configSchema/minLength: must be a non-negative integer"},
    {"{\"maxLength\":1.5}", AC_ERR_INVALID, "configSchema/maxLength: must be a non-negative integer"},
    {"{\"minItems\":\"3\"}", AC_ERR_INVALID, "configSchema/minItems: must be a non-negative integer"},
    {"{\"properties\":{\"n\":{\"maxProperties\":true}}}", AC_ERR_INVALID,
     "configSchema/properties/n/maxProperties: must be a non-negative integer"},
    {"{\"type\":\"strin\"}", AC_ERR_INVALID,
     "configSchema/type: type names are null, boolean, object, array, number, string and integer"},
    {"{\"type\":[]}", AC_ERR_INVALID,
     "configSchema/type: must be a type name or a non-empty array of type names"},
    {"{\"type\":[\"string\",\"string\"]}", AC_ERR_INVALID, "configSchema/type: type names must be unique"},
    {"{\"required\":[\"a\",\"a\"]}", AC_ERR_INVALID, "configSchema/required: must be an array of unique strings"},
    {"{\"required\":\"a\"}", AC_ERR_INVALID, "configSchema/required: must be an array of unique strings"},
    {"{\"required\":[1]}", AC_ERR_INVALID, "configSchema/required: must be an array of unique strings"},
    {"{\"multipleOf\":0}", AC_ERR_INVALID, "configSchema/multipleOf: must be a number greater than 0"},
    {"{\"multipleOf\":-0.5}", AC_ERR_INVALID, "configSchema/multipleOf: must be a number greater than 0"},
    {"{\"minimum\":\"1\"}", AC_ERR_INVALID, "configSchema/minimum: must be a number"},
    {"{\"pattern\":\"(\"}", AC_ERR_INVALID, "configSchema/pattern: invalid regular expression*"},
    {"{\"pattern\":\"\\\\p{NoSuchProperty}\"}", AC_ERR_INVALID,
     "configSchema/pattern: invalid regular expression*"},
    {"{\"pattern\":1}", AC_ERR_INVALID, "configSchema/pattern: must be a string"},
    {"{\"format\":7}", AC_ERR_INVALID, "configSchema/format: must be a string"},
    {"{\"enum\":\"a\"}", AC_ERR_INVALID, "configSchema/enum: must be an array"},
    {"{\"examples\":{}}", AC_ERR_INVALID, "configSchema/examples: must be an array"},
    {"{\"allOf\":[]}", AC_ERR_INVALID, "configSchema/allOf: must be a non-empty array of schemas"},
    {"{\"anyOf\":{}}", AC_ERR_INVALID, "configSchema/anyOf: must be a non-empty array of schemas"},
    {"{\"oneOf\":[{},3]}", AC_ERR_INVALID, "configSchema/oneOf/1: a schema must be an object or a boolean"},
    {"{\"properties\":[]}", AC_ERR_INVALID, "configSchema/properties: must be an object of schemas"},
    {"{\"properties\":{\"a\":1}}", AC_ERR_INVALID,
     "configSchema/properties/a: a schema must be an object or a boolean"},
    {"{\"items\":[{}]}", AC_ERR_INVALID,
     "configSchema/items: must be a schema (a tuple is written with prefixItems)"},
    {"{\"not\":null}", AC_ERR_INVALID, "configSchema/not: a schema must be an object or a boolean"},
    {"{\"uniqueItems\":\"yes\"}", AC_ERR_INVALID, "configSchema/uniqueItems: must be a boolean"},
    {"{\"writeOnly\":1}", AC_ERR_INVALID, "configSchema/writeOnly: must be a boolean"},
    {"{\"title\":1}", AC_ERR_INVALID, "configSchema/title: must be a string"},
    {"\"string\"", AC_ERR_INVALID, "configSchema: a schema must be an object or a boolean"},
};

static void test_compile_refusals(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof compile_cases / sizeof compile_cases[0]; i++) {
    const compile_case *c = &compile_cases[i];
    json_t *j = parse(c->schema);
    ac_schema *s = NULL;
    ac_err err = {0};
    int rc = ac_schema_compile(j, &s, &err);
    json_decref(j);
    if (rc != c->code)
      fail_msg("case %zu (%s): rc %d (%s), want %d", i, c->schema, rc, err.msg, c->code);
    assert_null(s);
    size_t n = strlen(c->message);
    int match = c->message[n - 1] == '*' ? strncmp(err.msg, c->message, n - 1) == 0
                                         : strcmp(err.msg, c->message) == 0;
    if (!match)
      fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, c->message);
  }
}

static void test_compile_accepts(void **state) {
  (void)state;
  static const char *const ok[] = {
      "true", "false", "{}", "{\"minLength\":2.0,\"maxItems\":0}",
      "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}",
      "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema#\"}",
      "{\"type\":[\"integer\",\"null\"],\"enum\":[],\"required\":[],\"const\":null}",
      "{\"properties\":{\"\":{},\"a\":true,\"b\":false},\"additionalProperties\":{\"not\":{}}}",
      "{\"prefixItems\":[true,{}],\"items\":false,\"title\":\"t\",\"description\":\"d\","
      "\"$comment\":\"c\",\"examples\":[],\"default\":{\"a\":[1]},\"writeOnly\":false}",
      "{\"pattern\":\"^[\\\\p{Lu}\\\\p{Letter}]\\\\d+$\",\"format\":\"date-time\"}",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    ac_schema_free(compile_text(ok[i]));
  ac_schema_free(NULL); /* no-op */
}

/* A deep schema from a file (which from_lua's limit does not cover) is
 * refused rather than recursed into without bound. */
static void test_compile_depth(void **state) {
  (void)state;
  json_t *schema = json_object();
  json_t *cur = schema;
  for (int i = 0; i < 100; i++) {
    json_t *next = json_object();
    json_object_set_new(cur, "not", next);
    cur = next;
  }
  ac_schema *s = NULL;
  ac_err err = {0};
  assert_int_equal(ac_schema_compile(schema, &s, &err), AC_ERR_INVALID);
  assert_non_null(strstr(err.msg, "schema nested deeper than 64 levels"));
  json_decref(schema);
}

/* ---- validation details the case files cannot express ---- */

static void test_validate_api(void **state) {
  (void)state;
  ac_schema *s = compile_text("{\"type\":\"string\"}");
  json_t *errors = (json_t *)1;
  json_t *v = json_string("x");
  assert_int_equal(ac_schema_validate(s, v, &errors), AC_OK);
  assert_int_equal(json_array_size(errors), 0);
  json_decref(errors);
  json_t *n = json_integer(1);
  assert_int_equal(ac_schema_validate(s, n, NULL), AC_ERR_INVALID); /* no error list wanted */
  assert_int_equal(ac_schema_validate(s, NULL, &errors), AC_ERR_INVALID);
  assert_null(errors);
  json_decref(v);
  json_decref(n);
  ac_schema_free(s);
}

/* Every error is collected, up to a cap that keeps a hostile instance from
 * growing the answer without bound. */
static void test_validate_error_cap(void **state) {
  (void)state;
  ac_schema *s = compile_text("{\"items\":{\"type\":\"string\"}}");
  json_t *big = json_array();
  for (int i = 0; i < 5000; i++)
    json_array_append_new(big, json_integer(i));
  json_t *errors = NULL;
  assert_int_equal(ac_schema_validate(s, big, &errors), AC_ERR_INVALID);
  assert_int_equal(json_array_size(errors), 1000);
  assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 999), "path")), "/999");
  json_decref(errors);
  json_decref(big);
  ac_schema_free(s);
}

/* A catastrophic pattern stops at the match limit and counts as a failure. */
static void test_validate_pattern_limit(void **state) {
  (void)state;
  ac_schema *s = compile_text("{\"pattern\":\"^(a|a)*(a|a)*(a|a)*$\"}");
  char text[64];
  memset(text, 'a', 40);
  memcpy(text + 40, "b", 2);
  json_t *v = json_string(text);
  json_t *errors = NULL;
  assert_int_equal(ac_schema_validate(s, v, &errors), AC_ERR_INVALID);
  const char *msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
  assert_non_null(strstr(msg, "must match pattern"));
  json_decref(errors);
  json_decref(v);
  ac_schema_free(s);
}

/* ---- defaults ---- */

static void test_defaults(void **state) {
  (void)state;
  ac_schema *s = compile_text(
      "{\"type\":\"object\",\"properties\":{"
      "\"mode\":{\"default\":\"mock\"},"
      "\"retry\":{\"type\":\"object\",\"default\":{},\"properties\":{"
      "  \"count\":{\"default\":3},"
      "  \"backoff\":{\"type\":\"object\",\"properties\":{\"ms\":{\"default\":100}}}}},"
      "\"opts\":{\"type\":\"object\",\"properties\":{\"x\":{\"default\":1}}},"
      "\"present\":{\"default\":\"d\"},"
      "\"nothing\":false,"
      "\"list\":{\"type\":\"array\",\"items\":{\"properties\":{\"on\":{\"default\":true}}}},"
      "\"extra\":{\"additionalProperties\":{\"properties\":{\"w\":{\"default\":0}}}}},"
      "\"allOf\":[{\"properties\":{\"fromAllOf\":{\"default\":\"a\"}}}],"
      "\"anyOf\":[{\"properties\":{\"fromAnyOf\":{\"default\":\"b\"}}}]}");
  json_t *inst = parse("{\"present\":\"mine\",\"list\":[{},{\"on\":false}],\"extra\":{\"k\":{}}}");
  assert_int_equal(ac_schema_apply_defaults(s, inst), AC_OK);
  assert_json_eq(inst, "{\"present\":\"mine\",\"list\":[{\"on\":true},{\"on\":false}],"
                       "\"extra\":{\"k\":{\"w\":0}},\"mode\":\"mock\",\"retry\":{\"count\":3},"
                       "\"fromAllOf\":\"a\"}");
  /* The default was copied: changing the result leaves the schema alone. */
  json_object_set_new(json_object_get(inst, "retry"), "count", json_integer(9));
  json_t *again = json_object();
  assert_int_equal(ac_schema_apply_defaults(s, again), AC_OK);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(again, "retry"), "count")), 3);
  json_t *str = json_string("not an object");
  assert_int_equal(ac_schema_apply_defaults(s, str), AC_OK);
  assert_string_equal(json_string_value(str), "not an object");
  assert_int_equal(ac_schema_apply_defaults(s, NULL), AC_ERR_INVALID);
  json_decref(str);
  json_decref(again);
  json_decref(inst);
  ac_schema_free(s);
}

/* ---- secrets ---- */

static const char secrets_schema[] =
    "{\"properties\":{"
    "\"apiKey\":{\"type\":\"string\",\"writeOnly\":true},"
    "\"nested\":{\"properties\":{\"token\":{\"writeOnly\":true},\"plain\":{}}},"
    "\"list\":{\"items\":{\"properties\":{\"pw\":{\"writeOnly\":true}}}},"
    "\"tuple\":{\"prefixItems\":[{\"writeOnly\":true},{}]},"
    "\"extra\":{\"additionalProperties\":{\"writeOnly\":true}},"
    "\"either\":{\"anyOf\":[{\"type\":\"string\",\"writeOnly\":true},{\"type\":\"integer\"}]},"
    "\"viaAll\":{\"allOf\":[{\"writeOnly\":true}]},"
    "\"notSecret\":{\"writeOnly\":false}}}";

static void test_mask_secrets(void **state) {
  (void)state;
  ac_schema *s = compile_text(secrets_schema);
  const char *in_text =
      "{\"apiKey\":\"k\",\"nested\":{\"token\":{\"a\":1},\"plain\":\"p\"},"
      "\"list\":[{\"pw\":\"1\"},{\"x\":1}],\"tuple\":[\"s\",\"t\"],\"extra\":{\"a\":\"1\",\"b\":\"2\"},"
      "\"either\":5,\"viaAll\":\"v\",\"notSecret\":\"n\",\"other\":\"o\"}";
  json_t *in = parse(in_text);
  json_t *masked = ac_schema_mask_secrets(s, in);
  /* anyOf/oneOf: a value is masked when any branch marks it secret, even
   * if it matched another branch (5 here) — over-masking beats a leak. */
  assert_json_eq(masked,
                 "{\"apiKey\":\"********\",\"nested\":{\"token\":\"********\",\"plain\":\"p\"},"
                 "\"list\":[{\"pw\":\"********\"},{\"x\":1}],\"tuple\":[\"********\",\"t\"],"
                 "\"extra\":{\"a\":\"********\",\"b\":\"********\"},\"either\":\"********\","
                 "\"viaAll\":\"********\",\"notSecret\":\"n\",\"other\":\"o\"}");
  assert_json_eq(in, in_text); /* the input is untouched */
  json_decref(masked);
  json_decref(in);
  ac_schema_free(s);

  ac_schema *root = compile_text("{\"writeOnly\":true}");
  json_t *v = json_string("secret");
  json_t *m = ac_schema_mask_secrets(root, v);
  assert_string_equal(json_string_value(m), AC_SECRET_MASK);
  json_decref(m);
  json_decref(v);
  ac_schema_free(root);
}

static void test_keep_masked_secrets(void **state) {
  (void)state;
  ac_schema *s = compile_text(secrets_schema);
  json_t *stored = parse("{\"apiKey\":\"old\",\"nested\":{\"token\":\"oldtok\"},"
                         "\"list\":[{\"pw\":\"p0\"}],\"tuple\":[\"s0\",\"t\"],\"viaAll\":\"v0\"}");
  json_t *incoming = parse(
      "{\"apiKey\":\"********\",\"nested\":{\"token\":\"********\",\"plain\":\"new\"},"
      "\"list\":[{\"pw\":\"********\"},{\"pw\":\"********\"}],\"tuple\":[\"********\"],"
      "\"extra\":{\"a\":\"********\",\"b\":\"fresh\"},\"viaAll\":\"changed\","
      "\"notSecret\":\"********\"}");
  assert_int_equal(ac_schema_keep_masked_secrets(s, incoming, stored), AC_OK);
  /* A mask with nothing stored behind it is dropped from an object, not
   * kept as the secret; a mask where no secret is declared stays as sent. */
  assert_json_eq(incoming,
                 "{\"apiKey\":\"old\",\"nested\":{\"token\":\"oldtok\",\"plain\":\"new\"},"
                 "\"list\":[{\"pw\":\"p0\"},{}],\"tuple\":[\"s0\"],\"extra\":{\"b\":\"fresh\"},"
                 "\"viaAll\":\"changed\",\"notSecret\":\"********\"}");
  /* Nothing stored at all. */
  json_t *first = parse("{\"apiKey\":\"********\",\"nested\":{\"plain\":1}}");
  assert_int_equal(ac_schema_keep_masked_secrets(s, first, NULL), AC_OK);
  assert_json_eq(first, "{\"nested\":{\"plain\":1}}");
  json_decref(first);
  json_decref(incoming);
  json_decref(stored);
  ac_schema_free(s);
}

/* ---- export ---- */

static void test_export(void **state) {
  (void)state;
  ac_schema *s = compile_text("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}");
  json_t *e = ac_schema_export(s);
  assert_json_eq(e, "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\","
                    "\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}");
  assert_string_equal(json_object_iter_key(json_object_iter(e)), "$schema"); /* first */
  /* The export is a copy: changing it leaves the compiled schema alone. */
  json_object_set_new(json_object_get(json_object_get(e, "properties"), "a"), "type",
                      json_string("integer"));
  assert_json_eq(ac_schema_json(s), "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}");
  json_decref(e);
  ac_schema_free(s);

  static const char *const cases[][2] = {
      {"{\"$schema\":\"https://json-schema.org/draft/2020-12/schema#\",\"type\":\"null\"}",
       "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"null\"}"},
      {"true", "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}"},
      {"false", "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"not\":{}}"},
  };
  for (size_t i = 0; i < 3; i++) {
    s = compile_text(cases[i][0]);
    e = ac_schema_export(s);
    assert_json_eq(e, cases[i][1]);
    json_decref(e);
    ac_schema_free(s);
  }
}

/* ---- `agentcore schema validate` ---- */

typedef struct cli_result {
  int status;
  char out[8192];
  char err[8192];
} cli_result;

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void slurp(int fd, char *buf, size_t size) {
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, size - 1);
  buf[n > 0 ? n : 0] = '\0';
}

/* Runs ac_cmd_schema with stdout/stderr captured (and stdin from a file). */
static void run_cli(cli_result *r, const char *stdin_path, int argc, ...) {
  char *argv[8];
  va_list ap;
  va_start(ap, argc);
  for (int i = 0; i < argc; i++)
    argv[i] = va_arg(ap, char *);
  va_end(ap);
  argv[argc] = NULL;
  char out_path[] = "/tmp/ac-schema-out-XXXXXX", err_path[] = "/tmp/ac-schema-err-XXXXXX";
  int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
  assert_true(out_fd >= 0 && err_fd >= 0);
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2), saved_in = dup(0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  if (stdin_path) {
    int in_fd = open(stdin_path, O_RDONLY);
    dup2(in_fd, 0);
    close(in_fd);
    clearerr(stdin);
  }
  r->status = ac_cmd_schema(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  dup2(saved_in, 0);
  close(saved_out);
  close(saved_err);
  close(saved_in);
  clearerr(stdin);
  slurp(out_fd, r->out, sizeof r->out);
  slurp(err_fd, r->err, sizeof r->err);
  close(out_fd);
  close(err_fd);
  unlink(out_path);
  unlink(err_path);
}

static void test_cli(void **state) {
  (void)state;
  char dir[] = "/tmp/ac-schema-cli-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char schema[256], unsupported[256], good[256], bad[256], dup[256], lua[256], notjson[256];
  snprintf(schema, sizeof schema, "%s/s.json", dir);
  snprintf(unsupported, sizeof unsupported, "%s/u.json", dir);
  snprintf(good, sizeof good, "%s/good.json", dir);
  snprintf(bad, sizeof bad, "%s/bad.json", dir);
  snprintf(dup, sizeof dup, "%s/dup.json", dir);
  snprintf(lua, sizeof lua, "%s/p.lua", dir);
  snprintf(notjson, sizeof notjson, "%s/n.json", dir);
  write_file(schema, "{\"type\":\"object\",\"properties\":{\"url\":{\"type\":\"string\",\"format\":"
                     "\"uri\"},\"n\":{\"type\":\"integer\",\"maximum\":10}},\"required\":[\"url\"]}");
  write_file(unsupported, "{\"properties\":{\"url\":{\"$ref\":\"#/x\"}}}");
  write_file(good, "{\"url\":\"https://example.com\",\"n\":10}");
  write_file(bad, "{\"url\":\"nope\",\"n\":11}");
  write_file(dup, "{\"url\":\"https://a.example\",\"url\":\"https://b.example\"}");
  write_file(notjson, "{\"url\":");
  write_file(lua, "return { id = 'cli-sample', name = 'CLI sample', category = 'test',\n"
                  "  configSchema = { type = 'object', properties = { url = { type = 'string',"
                  " format = 'uri' } }, required = { 'url' } },\n"
                  "  capabilities = { 'agent_query' },\n"
                  "  onAgentQuery = function(query, context) return {} end }\n");
  cli_result r;

  run_cli(&r, NULL, 4, "schema", "validate", schema, good);
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out, "{\"valid\":true,\"errors\":[]}\n");

  run_cli(&r, NULL, 4, "schema", "validate", schema, bad);
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "{\"valid\":false,\"errors\":["
                             "{\"path\":\"/url\",\"keyword\":\"format\",\"message\":\"must match format \\\"uri\\\"\"},"
                             "{\"path\":\"/n\",\"keyword\":\"maximum\",\"message\":\"must be <= 10\"}]}\n");

  run_cli(&r, bad, 4, "schema", "validate", schema, "-"); /* instance on stdin */
  assert_int_equal(r.status, 1);
  assert_non_null(strstr(r.out, "\"valid\":false"));

  run_cli(&r, NULL, 4, "schema", "validate", unsupported, good);
  assert_int_equal(r.status, 2);
  assert_non_null(strstr(r.err, "configSchema/properties/url: unsupported keyword \"$ref\""));
  assert_string_equal(r.out, "");

  run_cli(&r, NULL, 4, "schema", "validate", schema, dup); /* duplicate keys refused */
  assert_int_equal(r.status, 2);
  assert_non_null(strstr(r.err, "duplicate"));

  run_cli(&r, NULL, 4, "schema", "validate", schema, notjson);
  assert_int_equal(r.status, 2);

  run_cli(&r, NULL, 4, "schema", "validate", lua, bad);
  assert_int_equal(r.status, 1);
  assert_string_equal(r.out, "{\"valid\":false,\"errors\":["
                             "{\"path\":\"/url\",\"keyword\":\"format\",\"message\":\"must match format \\\"uri\\\"\"}]}\n");

  run_cli(&r, NULL, 4, "schema", "validate", "/nonexistent/x.json", good);
  assert_int_equal(r.status, 2);

  run_cli(&r, NULL, 2, "schema", "--help");
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "usage: agentcore schema validate SCHEMA INSTANCE"));
  run_cli(&r, NULL, 3, "schema", "validate", "--help");
  assert_int_equal(r.status, 0);
  run_cli(&r, NULL, 1, "schema");
  assert_int_equal(r.status, 2);
  assert_non_null(strstr(r.err, "usage:"));
  run_cli(&r, NULL, 2, "schema", "check");
  assert_int_equal(r.status, 2);
  run_cli(&r, NULL, 3, "schema", "validate", schema);
  assert_int_equal(r.status, 2);
  run_cli(&r, NULL, 5, "schema", "validate", schema, good, good);
  assert_int_equal(r.status, 2);
  run_cli(&r, NULL, 5, "schema", "validate", "--strict", schema, good);
  assert_int_equal(r.status, 2);

  const char *files[] = {schema, unsupported, good, bad, dup, lua, notjson};
  for (size_t i = 0; i < 7; i++)
    unlink(files[i]);
  rmdir(dir);
}

int main(void) {
  struct CMUnitTest tests[64];
  size_t n = 0;
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_case_files);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_from_lua_ok);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_from_lua_integer_types);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_from_lua_sorted);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_from_lua_refusals);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_compile_refusals);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_compile_accepts);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_compile_depth);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_validate_api);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_validate_error_cap);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_validate_pattern_limit);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_defaults);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mask_secrets);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_keep_masked_secrets);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_export);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_cli);
  if (getenv("AC_JSTS_DIR"))
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_official_suite);
  return _cmocka_run_group_tests("schema", tests, n, NULL, NULL);
}
