/* test_lpattern.c — the deadline-checked pattern functions: same results as
 * stock Lua 5.4 (differential), stopped by the check, and fast enough. */
#include "lua/lpattern.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"

/* Helpers defined identically in both states. ser() turns any results into
 * one comparable string (type-tagged, strings %q-quoted so floats, integers
 * and strings differ); all4() runs one (subject, pattern) pair through
 * every function and several argument shapes. */
static const char PRELUDE[] =
    "function ser(...)\n"
    "  local t = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    if type(v) == 'string' then t[i] = 's:' .. string.format('%q', v)\n"
    "    elseif math.type(v) then t[i] = math.type(v) .. ':' .. tostring(v)\n"
    "    else t[i] = type(v) .. ':' .. tostring(v) end\n"
    "  end\n"
    "  return '(' .. table.concat(t, ' ') .. ')'\n"
    "end\n"
    "function gm(s, p, init)\n"
    "  local it = string.gmatch(s, p, init)\n"
    "  local out = {}\n"
    "  for i = 1, 60 do\n"
    "    local r = table.pack(it())\n"
    "    if r.n == 0 or r[1] == nil then break end\n"
    "    out[#out + 1] = ser(table.unpack(r, 1, r.n))\n"
    "  end\n"
    "  return table.concat(out, ';')\n"
    "end\n"
    "function all4(s, p)\n"
    "  local r = {}\n"
    "  local function add(...) r[#r + 1] = ser(...) end\n"
    "  add(pcall(string.find, s, p))\n"
    "  add(pcall(string.find, s, p, 2))\n"
    "  add(pcall(string.find, s, p, -3))\n"
    "  add(pcall(string.match, s, p))\n"
    "  add(pcall(string.match, s, p, 3))\n"
    "  add(pcall(gm, s, p))\n"
    "  add(pcall(gm, s, p, 2))\n"
    "  add(pcall(string.gsub, s, p, '<%0>'))\n"
    "  add(pcall(string.gsub, s, p, '[%1]'))\n"
    "  add(pcall(string.gsub, s, p, function(...) return ser(...) end))\n"
    "  add(pcall(string.gsub, s, p, {a = 'A', [''] = 'E', b = false}))\n"
    "  add(pcall(string.gsub, s, p, 'x', 1))\n"
    "  return table.concat(r, '\\n')\n"
    "end\n"
    "do\n"
    "  local t = {}\n"
    "  for i = 0, 255 do t[#t + 1] = string.char(i) end\n"
    "  allbytes = table.concat(t)\n"
    "end\n";

static void noop_check(lua_State *L, void *ud) {
  (void)L;
  (*(long *)ud)++;
}

typedef struct pair {
  lua_State *stock; /* stock string library */
  lua_State *mine;  /* the same with lpattern installed */
  long checks;      /* calls of the no-op check */
} pair;

static lua_State *new_state(int install, long *checks) {
  lua_State *L = luaL_newstate();
  assert_non_null(L);
  luaL_openlibs(L);
  if (install) {
    lua_getglobal(L, "string");
    ac_lpattern_install(L, -1, noop_check, checks);
    lua_pop(L, 1);
  }
  assert_int_equal(luaL_loadbuffer(L, PRELUDE, sizeof PRELUDE - 1, "=prelude"),
                   LUA_OK);
  assert_int_equal(lua_pcall(L, 0, 0, 0), LUA_OK);
  return L;
}

static int setup_pair(void **state) {
  pair *p = test_calloc(1, sizeof *p);
  p->stock = new_state(0, NULL);
  p->mine = new_state(1, &p->checks);
  *state = p;
  return 0;
}

static int teardown_pair(void **state) {
  pair *p = *state;
  lua_close(p->stock);
  lua_close(p->mine);
  test_free(p);
  return 0;
}

/* Runs "return <expr>" (already serialized by the expression itself) and
 * copies the string result or the failure into out. */
static void eval(lua_State *L, const char *chunk, char *out, size_t cap) {
  size_t len = 0;
  const char *r;
  int rc = luaL_loadbuffer(L, chunk, strlen(chunk), "=case");
  if (rc == LUA_OK)
    rc = lua_pcall(L, 0, 1, 0);
  r = lua_tolstring(L, -1, &len);
  snprintf(out, cap, "%s%.*s", rc == LUA_OK ? "" : "ERROR ", (int)len,
           r ? r : "(non-string)");
  lua_settop(L, 0);
}

/* Compares one chunk between the two states; prints any difference and
 * returns 1 when they differ. */
static int differs(pair *p, const char *chunk) {
  static char a[1 << 16], b[1 << 16];
  eval(p->stock, chunk, a, sizeof a);
  eval(p->mine, chunk, b, sizeof b);
  if (strcmp(a, b) == 0)
    return 0;
  print_message("DIFF for %s\n  stock: %s\n  mine:  %s\n", chunk, a, b);
  return 1;
}

/* ------------------------------------------------- hand-written pairs */

/* Lua expressions for a subject and a pattern, fed to all4(). */
static const char *const PAIRS[] = {
    /* literals, anchors, '.' and quantifiers */
    "'hello world', 'o'", "'hello world', 'o w'", "'hello world', 'l+'",
    "'hello world', 'l*'", "'hello world', 'l-o'", "'hello world', 'x?h'",
    "'hello world', 'lo?'", "'hello world', 'wor?ld'", "'hello', ''",
    "'', ''", "'', 'a*'", "'', '^$'", "'', '$'", "'', '^'", "'', '.'",
    "'', '()'", "'', 'a?'", "'', 'a-'", "'abc', '^abc$'", "'abc', '^b'",
    "'abc', 'c$'", "'abc', 'b$'", "'a$b', 'a$b'", "'a$b', '$b'",
    "'a$b', '%$b'", "'a^b', 'a^b'", "'a^b', '^a^b'", "'a^b', '%^'",
    "'abc', '^'", "'abc', '$'", "'abc', '^$'", "'abc', '$$'", "'a$', 'a$$'",
    "'abc', '.'", "'abc', '..'", "'abc', '.-'", "'abc', '.-$'",
    "'abc', '^.-$'", "'abc', '.*'", "'abc', '.+'", "'abc', '.?'",
    "'abc', '.-b'", "'abc', '.*b'", "'aaab', 'a-b'", "'aaab', 'a*b'",
    "'aaab', 'a+b'", "'aaab', 'a?b'", "'aaab', '^a-$'", "'aaa', 'a-'",
    "'aaa', 'a*'", "'aaa', 'a+'", "'aaa', 'a?'", "'baaac', 'a*'",
    "'baaac', 'a-c'", "'abab', 'ab*'", "'x*y', 'x*y'", "'x*y', 'x%*y'",
    "'x+y', '+'", "'x-y', '-'", "'x-y', 'x-'", "'x?y', '?'", "'*ab', '*a'",
    "'ab', 'a**'", "'ab', 'a+?'", "'a+', 'a++'", "'aa', 'a-?'",
    /* escapes and malformed escapes */
    "'a.b', '%.'", "'a%b', '%%'", "'a-b', '%-'", "'a[b]', '%['",
    "'a[b]', '%]'", "'a(b)', '%('", "'a(b)', '%)'", "'a(b)', '%(.-%)'",
    "'abc', 'a%'", "'abc', '%'", "'a%', 'a%%'", "'a_b', '%_'",
    "'a b', '% '", "'a\\0b', '%\\0'",
    /* sets */
    "'x]y', '[]]'", "'x]y', '[^]]'", "'x^y', '[^^]'", "'x^y', '[%^]'",
    "'x-y', '[a-]'", "'x-y', '[-a]'", "'x-y', '[%a-]+'", "'abcdef', '[a-c-e]+'",
    "'ab]^', '[]-a]+'", "'x]y', '[%]]'", "'a-z', '[a%-z]+'", "'zza', '[z-a]'",
    "'foo_bar9 x', '[%w_]+'", "'100%', '[%%]'", "'a.b', '[.]'",
    "'a.b', '[a.]+'", "'x[y', '[[]'", "'abc', '[]'", "'abc', '[^]'",
    "'abc', '['", "'abc', '[a'", "'abc', '[%'", "'abc', '[a%]'", "'abc', '[^'",
    "'abc', '[^a'", "'abc', '[a-'", "'abc', '[%a'", "'ab', '[ab]*'",
    "'abab', '[ab]-b'", "'xab', '[^a]+'", "'bc', '[ab]?c'", "'AbC', '[A-Z]+'",
    "'AbC', '[^A-Z]+'", "'a1_', '[%d_]+'", "'a1_', '[^%d_]+'",
    "'ab-', '[b-]+'", "'a\\0b', '[\\0]'", "'a\\0b', '[^\\0]+'",
    "'a\\0b', '[%z]'", "'a\\0b', '[%Z]+'", "'\\200\\255a', '[\\128-\\255]+'",
    "'\\200\\255a', '[^\\0-\\127]+'", "'a]b', '[]a]+'", "'-', '[-]'",
    "'--', '[--]'", "'a-c', '[a-c]'", "'b', '[a-c]'", "'-', '[a-c]'",
    "'%', '[%]'", "'a', '[a]]'", "'a]', '[a]]'",
    /* captures */
    "'hello', '(h)(e)'", "'hello', '(h(e)l)'", "'hello', '()ll()'",
    "'hello', '(l+)'", "'hello', '(l*)'", "'hello', '()'", "'hello', '(()e)'",
    "'ab', '((a)(b))'", "'abc', '(a'", "'abc', '(x'", "'abc', 'a)'",
    "'abc', ')'", "'abc', '('", "'abc', '(()'", "'abc', '(a))'",
    "'abc', '%1'", "'aab', '(a)%1'", "'aab', '(a*)%1'", "'xyyz', '(.)%1'",
    "'hello hello', '(%a+)%s*%1'", "'abc', '()%1'", "'abc', '(a)%2'",
    "'abc', '(a%1)'", "'abc', '%0'", "'abc', '%9'", "'aa', '(a)(%1)'",
    "'abab', '(ab)%1'", "'abab', '((a)b)%2'", "'a', '(a)%1?'",
    "'key = value', '(%w+)%s*=%s*(%w+)'", "'[[x]]', '%[(=*)%[(.-)%]%1%]'",
    "('a'):rep(40), ('(a)'):rep(32)", "('a'):rep(40), ('(a)'):rep(33)",
    "'abc', ('()'):rep(32)", "'abc', ('()'):rep(33)",
    "('a'):rep(40), ('(a)'):rep(9) .. '%9'",
    /* recursion depth */
    "('a'):rep(300), ('a?'):rep(199)", "('a'):rep(300), ('a?'):rep(200)",
    "('a'):rep(5), ('a-'):rep(200)", "('a'):rep(5), ('a-'):rep(199)",
    "('a'):rep(60), ('(a?)'):rep(32)", "('ab'):rep(150), ('.'):rep(300)",
    "('a'):rep(250), ('a*'):rep(150)",
    /* %b */
    "'x(a(b)c)y', '%b()'", "'x((a)(b))x)', '%b()'", "'x)(y', '%b)('",
    "'a a b a', '%baa'", "'abc', '%b'", "'abc', '%b('", "'(x)+', '%b()+'",
    "'((x))', '(%b())'", "'(((', '%b()'", "'(()', '%b()'",
    "'a\\0b\\1c', '%b\\0\\1'", "'[x]y[z]', '%b[]'", "'if x then end', '%bie'",
    "'<<a>b>', '%b<>%w*'",
    /* %f */
    "'THE (quick) fox', '%f[%a]%a+'", "'THE (quick) fox', '%f[%A]'",
    "'hello world', '%f[%w]%w+'", "'aba', '%f[a]'", "'aba', '%f[^a]'",
    "'a b', '%f[%z]'", "'a b', '%f[%Z]'", "'ab', '%f[]'", "'ab', '%fa'",
    "'ab', '%f'", "'ab', '%f[a'", "'ab', '%f[^\\0]'", "'abc', '%f[b]b'",
    "'a.b', '%f[%p]'", "'a.b', '%f[%P]'", "'aXb', '%f[%u]%u'",
    /* NULs and plain-search cases */
    "'a\\0b', '%z'", "'a\\0b', '\\0'", "'a\\0b', 'a%zb'", "'a\\0b', '\\0.'",
    "'a\\0(b', '\\0('", "'a)', 'a)'", "'a]', ']'", "'a}', '}'",
    "'a' .. ('b'):rep(20), 'bbbb'",
};

static void test_pairs_match_stock(void **state) {
  char chunk[512];
  int bad = 0;
  size_t i;
  for (i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++) {
    snprintf(chunk, sizeof chunk, "return all4(%s)", PAIRS[i]);
    bad += differs(*state, chunk);
  }
  print_message("%zu hand-written pairs x 12 calls\n",
                sizeof PAIRS / sizeof PAIRS[0]);
  assert_int_equal(bad, 0);
}

/* Every class letter (and complement, and inside sets) over all 256
 * bytes, so the ctype mapping is checked byte by byte. */
static void test_classes_match_stock(void **state) {
  static const char letters[] = "acdglpsuwxzbeqAB_.%";
  char chunk[512];
  int bad = 0;
  const char *c;
  for (c = letters; *c; c++) {
    static const char *const shapes[] = {"%%%c", "%%%c+", "[%%%c]",
                                         "[^%%%c]+", "[%%%ca-c]"};
    size_t k;
    for (k = 0; k < 5; k++) {
      char pat[16];
      snprintf(pat, sizeof pat, shapes[k], *c);
      snprintf(chunk, sizeof chunk,
               "return ser(string.gsub(allbytes, '%s', '.'))", pat);
      bad += differs(*state, chunk);
      /* upper-case complement */
      if (*c >= 'a' && *c <= 'z') {
        snprintf(pat, sizeof pat, shapes[k], *c - 'a' + 'A');
        snprintf(chunk, sizeof chunk,
                 "return ser(string.gsub(allbytes, '%s', '.'))", pat);
        bad += differs(*state, chunk);
      }
    }
  }
  bad += differs(*state, "return ser(string.gsub(allbytes, '.', 'x'))");
  bad += differs(*state, "return ser(string.gsub(allbytes, '[\\1-\\255]+', ''))");
  bad += differs(*state, "return ser(string.find(allbytes, '[\\200-\\210]+'))");
  assert_int_equal(bad, 0);
}

/* ------------------------------------------- hand-written expressions */

/* API-level behaviour: init, plain, coercion, replacement kinds, max n,
 * argument errors. Each is evaluated inside pcall in a Lua function so
 * errors carry the same "case:1:" prefix in both states. */
static const char *const EXPRS[] = {
    "string.find('hello', 'l', 1, true)", "string.find('a.b', '.', 1, true)",
    "string.find('a.b', '.', 3, true)", "string.find('a+b', '+', 1, true)",
    "string.find('abc', '[', 1, true)", "string.find('abc', '[', 1, 0)",
    "string.find('abc', '[', 1, false)", "string.find('abc', '[', 1, nil)",
    "string.find('abc', 'b', 10)", "string.find('abc', '', 4)",
    "string.find('abc', '', 5)", "string.find('abc', 'b', -1)",
    "string.find('abc', 'b', -2)", "string.find('abc', 'b', -100)",
    "string.find('abc', 'b', 0)", "string.find(123, 2)",
    "string.find(12.5, '%.')", "string.find('abc', 'b', '2')",
    "string.find('abc', 'b', 2.0)", "string.find('abc', 'b', 1.5)",
    "string.find('abc', 'b', 'x')", "string.find(nil, 'a')",
    "string.find('a')", "string.find('a', {})", "string.find()",
    "string.find('abc', 'b', nil, nil)", "string.find('abc', 'b', math.mininteger)",
    "string.find('abc', 'b', math.maxinteger)", "string.find('abc', '', math.maxinteger)",
    "string.find('', '', 1)", "string.find('', '', 2)", "string.find('', 'a', 0)",
    "string.find('', '', -1)", "string.find('abc', '', -1)",
    "string.find('abc', 'c', -1, true)", "string.find('abc', 'abcd', 1, true)",
    "string.find('abc', '', 3, true)", "string.find('abc', '', 10, true)",
    "string.find('abcabc', 'bc', 3, true)", "string.find('a\\0b', '\\0', 1, true)",
    "string.find('abc', '(b)(c)')", "string.find('abc', '()b()')",
    "string.find('abc', '^b', 2)", "string.find('abc', '^abc', 1)",
    "string.find('abc', '^', 4)", "string.find('abc', '$', 2)",
    "('hello'):find('l')", "('hello'):find('l', 4)", "('hello'):match('l+')",
    "('x'):rep(3):match('x+')",
    "string.match('abc', 'b', -1)", "string.match('abc', 'c', -1)",
    "string.match('hello world', '(%w+) (%w+)')", "string.match(123, '%d')",
    "string.match(123, '%d', 2)", "string.match('abc', '()', 4)",
    "string.match('abc', '()', 5)", "string.match('abc', '.', math.mininteger)",
    "string.match('abc', 'x')", "string.match('abc')", "string.match('abc', 'b', 1.5)",
    "string.match('  trim  ', '^%s*(.-)%s*$')", "string.match('2024-01-31', '(%d+)-(%d+)-(%d+)')",
    "string.match('a,b,,c', '([^,]*),([^,]*),([^,]*),([^,]*)')",
    "string.match('abc', '^(a)', 2)", "string.match('abc', 'a*', 4)",
    "string.match('abc', '%f[%w]')",
    "string.gsub('hello world', 'o', '0')", "string.gsub('hello world', 'o', '0', 1)",
    "string.gsub('hello world', 'o', '0', 0)", "string.gsub('hello world', 'o', '0', -1)",
    "string.gsub('hello world', 'o', '0', 1.0)", "string.gsub('hello world', 'o', '0', '1')",
    "string.gsub('hello world', 'o', '0', 1.5)", "string.gsub('hello world', 'o', '0', 'x')",
    "string.gsub('hello world', 'o', '0', math.maxinteger)",
    "string.gsub('hello world', 'o', '0', math.mininteger)",
    "string.gsub('abc', '%w', '%0%0')", "string.gsub('abc', '%w', '%%')",
    "string.gsub('abc', '%w', '%')", "string.gsub('abc', '%w', 'x%')",
    "string.gsub('abc', '%w', '%a')", "string.gsub('abc', '%w', '%\\0')",
    "string.gsub('abc', '(%w)', '%2')", "string.gsub('abc', '%w', '%1')",
    "string.gsub('abc', '%w', '%2')", "string.gsub('abc', '%w', '%9')",
    "string.gsub('abc', '(%w)()', '%2%1')", "string.gsub('abc', '()', '%1')",
    "string.gsub('abc', '', '-')", "string.gsub('abc', '.-', '-')",
    "string.gsub('abc', 'x*', '-')", "string.gsub('abc', 'b*', '-')",
    "string.gsub('abc', '^', '>')", "string.gsub('abc', '$', '<')",
    "string.gsub('abc', '^a', 'X')", "string.gsub('aaa', '^a', 'X')",
    "string.gsub('aaa', '^a*', 'X')", "string.gsub('', '', 'X')",
    "string.gsub('', 'a', 'X')", "string.gsub('', '^', 'X')",
    "string.gsub('hello', 'l', {l = 'L'})", "string.gsub('hello', 'l', {l = false})",
    "string.gsub('hello', 'l', {l = {}})", "string.gsub('hello', 'l', {l = 1.5})",
    "string.gsub('hello', 'l', {l = 7})", "string.gsub('hello', 'l', {l = true})",
    "string.gsub('hello', '(l)(l)', {l = 'Y'})", "string.gsub('hello', '()l', {[3] = 'three'})",
    "string.gsub('hello', 'l', function(x) return x:upper() end)",
    "string.gsub('hello', 'l', function() end)",
    "string.gsub('hello', 'l', function() return false end)",
    "string.gsub('hello', 'l', function() return true end)",
    "string.gsub('hello', 'l', function() return {} end)",
    "string.gsub('hello', 'l', function() return 42 end)",
    "string.gsub('hello', 'l', function() error('boom') end)",
    "select(2, pcall(string.gsub, 'hello', 'l', function() error({code = 7}) end)).code",
    "string.gsub('hello', '(h)(e)', function(a, b) return b .. a end)",
    "string.gsub('hello', '()', function(p) return p end)",
    "string.gsub('hello', '(l)()', function(a, b) return a .. b end)",
    "string.gsub('hello', 'l', 5)", "string.gsub('hello', 'l', 5.5)",
    "string.gsub('hello', 'l', 2^63)", "string.gsub('hello', 'l', true)",
    "string.gsub('hello', 'l')", "string.gsub('hello', 'l', nil)",
    "string.gsub('hello', 'l', 'x', 'y')", "string.gsub('hello', 'l', nil, 'y')",
    "string.gsub(123, '2', 'x')", "string.gsub(123, 'x', 'y')",
    "string.gsub(1.5, '%.', ',')", "string.gsub('abc', '(', 'x')",
    "string.gsub('abc', '(b', '%0')", "string.gsub('abc', '(b', '%1')",
    "string.gsub('abc', '(b', {})", "string.gsub('abc', '(b', function() end)",
    "string.gsub('abc', '(b', 'x')", "string.gsub('abc', 'b)', 'x')",
    "string.gsub('hello', 'l', setmetatable({}, {__index = function(t, k) return k .. '!' end}))",
    "string.gsub('abc', '%f[%w]', '^')", "string.gsub('THE (quick) fox', '%f[%a]%a+', string.lower)",
    "string.gsub('hello world', '(%w+)', '<%1>')", "string.gsub('hello world', '%w+', '%0 %0', 1)",
    "string.gsub('abc', '.', {a = 1, b = 2})", "string.gsub('a,b', ',', '%%')",
    "string.gsub('x = 1, y = 2', '(%w+) = (%w+)', '%2 = %1')",
    "string.gsub('hello', '', '-', 3)", "string.gsub('abc', '%w', '%0', 2)",
    "string.gsub(('x'):rep(100), 'x', 'yy')",
    "('hello'):gsub('l', 'L')", "('hello'):gsub('l+', '%0%0')",
    "gm('hello world from lua', '%a+')", "gm('a=1, b=2', '(%w+)=(%w+)')",
    "gm('abc', '')", "gm('abc', '', 4)", "gm('abc', '', 5)", "gm('abc', 'x*')",
    "gm('baaac', 'a*')", "gm('a^b^c', '^.')", "gm('abc', '^a')", "gm('abc', 'b', -1)",
    "gm('abc', '.', -2)", "gm('abc', '()', 2)", "gm(123, '%d')", "gm('abc', '[')",
    "gm('abc', '(a')", "gm('abc', '%b')", "gm('abc', 'b', 1.5)", "gm('abc', 'b', 'x')",
    "gm('abc', '.', 0)", "gm('abc', '.', math.mininteger)", "gm('abc', '.', math.maxinteger)",
    "gm('hello', '()l()')", "gm('', '')", "gm('', 'a')",
    "string.gmatch('abc')", "string.gmatch()", "type(string.gmatch('abc', 'b'))",
    "(function() local it = string.gmatch(('ab'):rep(3), 'b') collectgarbage()"
    " collectgarbage() local t = {} for x in it do t[#t + 1] = x end"
    " return #t, it() end)()",
    "(function() local it = string.gmatch('a b', '%a') return it(), it(), it(), it() end)()",
    "pcall(string.find, nil, 'a')", "pcall(string.gsub, 'a', 'a', true)",
    "pcall(string.gmatch, 'a')", "pcall(string.match, 'a', '%')",
    "select('#', string.find('abc', 'x'))", "select('#', string.gsub('abc', 'x', ''))",
    "select('#', string.match('abc', '(a)(b)(c)'))",
};

static void test_exprs_match_stock(void **state) {
  char chunk[1024];
  int bad = 0;
  size_t i;
  for (i = 0; i < sizeof EXPRS / sizeof EXPRS[0]; i++) {
    snprintf(chunk, sizeof chunk,
             "return ser(pcall(function() return %s end))", EXPRS[i]);
    bad += differs(*state, chunk);
  }
  print_message("%zu hand-written expressions\n", sizeof EXPRS / sizeof EXPRS[0]);
  assert_int_equal(bad, 0);
}

/* The install really replaced the functions (a closure with the hook as
 * upvalue) and method calls on strings reach them too. */
static void test_install_replaces(void **state) {
  pair *p = *state;
  static const char chunk[] =
      "local n = 0 for _, f in ipairs{string.find, string.match,"
      " string.gmatch, string.gsub} do"
      " if debug.getupvalue(f, 1) ~= nil then n = n + 1 end end"
      " return tostring(n) .. ' ' .. tostring(('a'):find('a') == 1)";
  char out[64];
  eval(p->mine, chunk, out, sizeof out);
  assert_string_equal(out, "4 true");
  eval(p->stock, chunk, out, sizeof out);
  assert_string_equal(out, "0 true");
}

/* ------------------------------------------------------ random pairs */

static uint64_t rng_next(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

/* Appends bytes as a Lua literal of decimal escapes (any byte is safe). */
static size_t lua_literal(char *out, size_t cap, const char *bytes, size_t n) {
  size_t o = 0, i;
  out[o++] = '"';
  for (i = 0; i < n && o + 5 < cap; i++)
    o += (size_t)snprintf(out + o, cap - o, "\\%d", (unsigned char)bytes[i]);
  out[o++] = '"';
  out[o] = '\0';
  return o;
}

static void test_random_pairs_match_stock(void **state) {
  static const char alphabet[] = "ab().%-[]";
  static const char *const tokens[] = {
      "a", "b", ".", "%a", "[ab]", "[^a]", "*", "+", "-", "?", "(", ")",
      "%1", "%2", "%b()", "%f[a]", "%f[^a]", "^", "$", "()", "%(", "%.",
      "[%a-]", "[]", "%", "[", "]", "(a)", "(.-)", "%b", "%f", "[(]", "%-",
  };
  const size_t ntok = sizeof tokens / sizeof tokens[0];
  uint64_t seed = 0x5eed1234abcdULL;
  int bad = 0, i;
  for (i = 0; i < 5000; i++) {
    char subj[16], pat[64], ls[128], lp[400], chunk[600];
    size_t n = rng_next(&seed) % 13, np = 0, k, nt = 1 + rng_next(&seed) % 6;
    for (k = 0; k < n; k++)
      subj[k] = alphabet[rng_next(&seed) % (sizeof alphabet - 1)];
    for (k = 0; k < nt; k++) {
      const char *t = tokens[rng_next(&seed) % ntok];
      size_t tl = strlen(t);
      memcpy(pat + np, t, tl);
      np += tl;
    }
    lua_literal(ls, sizeof ls, subj, n);
    lua_literal(lp, sizeof lp, pat, np);
    snprintf(chunk, sizeof chunk, "return all4(%s, %s)", ls, lp);
    bad += differs(*state, chunk);
    if (bad > 20)
      break; /* enough to diagnose */
  }
  print_message("5000 random pairs x 12 calls\n");
  assert_int_equal(bad, 0);
}

/* ----------------------------------------------------------- deadline */

typedef struct deadline {
  int64_t at_ms;
  long calls;
} deadline;

static void deadline_check(lua_State *L, void *ud) {
  deadline *d = ud;
  d->calls++;
  if (ac_clock_mono_ms() >= d->at_ms) {
    lua_pushliteral(L, "timeout");
    lua_error(L);
  }
}

/* Each returns the error its pcall caught; stock Lua runs every one of
 * these for seconds to hours. */
static const char *const SLOW[] = {
    "return select(2, pcall(string.find, string.rep('a', 400), '.-.-.-.-b'))",
    "return select(2, pcall(function() return ('a'):rep(100):find('.-.-.-.-.-b') end))",
    "return select(2, pcall(string.match, string.rep('a', 400), '.-.-.-.-b'))",
    "return select(2, pcall(function() for x in ('a'):rep(400):gmatch('.-.-.-.-b')"
    " do end end))",
    "return select(2, pcall(string.gsub, ('a'):rep(400), '.-.-.-.-b', 'x'))",
    "return select(2, pcall(string.gsub, ('a'):rep(100), '(.-)(.-)(.-)(.-)(.-)b', "
    "function() return 'x' end))",
    "return select(2, pcall(string.gsub, ('a'):rep(200000), '(a*)%1b', 'x'))",
    "return select(2, pcall(string.gsub, ('('):rep(1000000), '%b()', ''))",
    "return select(2, pcall(string.match, ('a'):rep(1000000), ('a'):rep(500000) .. 'b'))",
    "return select(2, pcall(string.find, ('a'):rep(30), ('a?'):rep(30) .. ('a'):rep(30) .. 'b'))",
};

static void test_deadline_stops_matching(void **state) {
  deadline d = {0, 0};
  lua_State *L = luaL_newstate();
  size_t i;
  (void)state;
  luaL_openlibs(L);
  lua_getglobal(L, "string");
  ac_lpattern_install(L, -1, deadline_check, &d);
  lua_pop(L, 1);
  for (i = 0; i < sizeof SLOW / sizeof SLOW[0]; i++) {
    int64_t t0 = ac_clock_mono_ms(), ms;
    const char *msg;
    d.at_ms = t0 + 100;
    d.calls = 0;
    assert_int_equal(luaL_loadstring(L, SLOW[i]), LUA_OK);
    assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_OK);
    ms = ac_clock_mono_ms() - t0;
    msg = lua_tostring(L, -1);
    print_message("slow case %zu: %s after %lld ms (%ld checks)\n", i,
                  msg ? msg : "(none)", (long long)ms, d.calls);
    assert_non_null(msg);
    assert_string_equal(msg, "timeout");
    assert_true(ms < 1000);
    assert_true(d.calls > 0);
    lua_settop(L, 0);

    /* the state is still usable and the functions still work */
    d.at_ms = ac_clock_mono_ms() + 10000;
    assert_int_equal(luaL_loadstring(L, "return select(2, string.gsub('hello',"
                                        " 'l', 'L')) + string.find('hello', 'l+')"),
                     LUA_OK);
    assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_OK);
    assert_int_equal(lua_tointeger(L, -1), 5);
    lua_settop(L, 0);
  }
  lua_close(L);
}

/* A check that never raises lets the same kind of pattern finish. */
static void test_null_check_finishes(void **state) {
  lua_State *L = luaL_newstate();
  (void)state;
  luaL_openlibs(L);
  lua_getglobal(L, "string");
  ac_lpattern_install(L, -1, NULL, NULL);
  lua_pop(L, 1);
  assert_int_equal(luaL_loadstring(L, "return string.find(('a'):rep(30),"
                                      " '.-.-.-b')"),
                   LUA_OK);
  assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_OK);
  assert_true(lua_isnil(L, -1));
  lua_close(L);
}

/* ---------------------------------------------------------- benchmark */

static const char *const BENCH[] = {
    "return string.find(S, '%d+x')",
    "return select(2, string.gsub(S, '%w+', '<%0>'))",
    "return select(2, string.gsub(S, 'o', '0'))",
    "local n = 0 for w in string.gmatch(S, '%a+') do n = n + 1 end return n",
    "return string.find(S, 'zz', 1, true)",
    "return select(2, string.gsub(S, '(%w+)_(%w+)', '%2_%1'))",
    "return string.match(S, '^(.-)%s*$')",
};

static double time_chunk(lua_State *L, const char *chunk, char *res, size_t cap) {
  int64_t t0;
  int rep;
  lua_gc(L, LUA_GCCOLLECT); /* start both states with no GC debt */
  t0 = ac_clock_mono_us();
  for (rep = 0; rep < 3; rep++) {
    lua_settop(L, 0);
    assert_int_equal(luaL_loadstring(L, chunk), LUA_OK);
    assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_OK);
  }
  snprintf(res, cap, "%s", luaL_tolstring(L, -1, NULL));
  lua_settop(L, 0);
  return (double)(ac_clock_mono_us() - t0);
}

static void test_benchmark_vs_stock(void **state) {
  pair *p = *state;
  static const char mk[] = "S = string.rep('hello world 12345 foo_bar ', 40000)";
  size_t i;
  long before = p->checks;
  assert_int_equal(luaL_dostring(p->stock, mk), LUA_OK);
  assert_int_equal(luaL_dostring(p->mine, mk), LUA_OK);
  for (i = 0; i < sizeof BENCH / sizeof BENCH[0]; i++) {
    char ra[64], rb[64];
    double ts = time_chunk(p->stock, BENCH[i], ra, sizeof ra);
    double tm = time_chunk(p->mine, BENCH[i], rb, sizeof rb);
    double ratio = tm / (ts > 1 ? ts : 1);
    print_message("bench %-70s stock %8.1f ms mine %8.1f ms ratio %.2f\n",
                  BENCH[i], ts / 3000.0, tm / 3000.0, ratio);
    assert_string_equal(ra, rb);
    assert_true(ratio < 10.0);
  }
  assert_true(p->checks > before); /* the check ran during long work */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_install_replaces, setup_pair, teardown_pair),
      cmocka_unit_test_setup_teardown(test_pairs_match_stock, setup_pair, teardown_pair),
      cmocka_unit_test_setup_teardown(test_classes_match_stock, setup_pair, teardown_pair),
      cmocka_unit_test_setup_teardown(test_exprs_match_stock, setup_pair, teardown_pair),
      cmocka_unit_test_setup_teardown(test_random_pairs_match_stock, setup_pair,
                                      teardown_pair),
      cmocka_unit_test(test_deadline_stops_matching),
      cmocka_unit_test(test_null_check_finishes),
      cmocka_unit_test_setup_teardown(test_benchmark_vs_stock, setup_pair, teardown_pair),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
