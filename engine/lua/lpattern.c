/* lpattern.c — a deadline-checked backtracking matcher for Lua 5.4 patterns
 * and the string.find/match/gmatch/gsub bindings built on it.
 *
 * Its semantics and structure follow Lua 5.4's lstrlib.c,
 * Copyright (C) 1994-2022 Lua.org, PUC-Rio, under the MIT license (see
 * LICENSE). */
#include "lua/lpattern.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include <lauxlib.h>

/* Limits observable from Lua: they must equal stock 5.4.4's so that the
 * same patterns fail with the same "too many captures" / "pattern too
 * complex" errors. */
#define MAX_CAPTURES 32
#define MAX_DEPTH 200

/* A capture's len while its ')' has not been seen, and for "()". */
#define CAP_OPEN (-1)
#define CAP_POS (-2)

/* What the four closures share (their upvalue 1). */
typedef struct hook {
  ac_lpattern_check check;
  void *ud;
} hook;

typedef struct capture {
  const char *start;
  ptrdiff_t len; /* >= 0, CAP_OPEN or CAP_POS */
} capture;

/* Everything one match attempt needs; lives on the C stack only, so a
 * check that raises leaves nothing to release. */
typedef struct mstate {
  lua_State *L;
  const hook *hk;
  const char *subj;     /* whole subject: %f looks before the start */
  const char *subj_end;
  const char *pat_end;
  int budget;           /* steps left before the next check */
  int depth;            /* nested match calls left */
  int ncap;
  capture cap[MAX_CAPTURES];
} mstate;

/* ---------------------------------------------------------------- steps */

static void run_check(mstate *ms) {
  ms->budget = AC_LPATTERN_CHECK_STEPS;
  if (ms->hk->check != NULL)
    ms->hk->check(ms->L, ms->hk->ud);
}

/* Charges cost steps; every AC_LPATTERN_CHECK_STEPS of them the check runs.
 * Kept inline and branch-light because it sits in the innermost loop. */
static inline void charge(mstate *ms, ptrdiff_t cost) {
  ms->budget -= (int)(cost > AC_LPATTERN_CHECK_STEPS ? AC_LPATTERN_CHECK_STEPS
                                                     : cost);
  if (ms->budget <= 0)
    run_check(ms);
}

static void state_init(mstate *ms, lua_State *L, const hook *hk,
                       const char *s, size_t ls, const char *p, size_t lp) {
  ms->L = L;
  ms->hk = hk;
  ms->subj = s;
  ms->subj_end = s + ls;
  ms->pat_end = p + lp;
  ms->budget = AC_LPATTERN_CHECK_STEPS;
  ms->depth = MAX_DEPTH;
  ms->ncap = 0;
}

/* Each attempt at a new subject position starts with no captures. */
static void state_reset(mstate *ms) {
  ms->ncap = 0;
  ms->depth = MAX_DEPTH;
}

/* -------------------------------------------------------- single items */

/* Whether byte c is in class letter cl (%a, %D, ...); a non-class letter or
 * other byte after '%' stands for itself. */
static int in_class(int c, int cl) {
  int yes;
  switch (tolower(cl)) {
  case 'a': yes = isalpha(c); break;
  case 'c': yes = iscntrl(c); break;
  case 'd': yes = isdigit(c); break;
  case 'g': yes = isgraph(c); break;
  case 'l': yes = islower(c); break;
  case 'p': yes = ispunct(c); break;
  case 's': yes = isspace(c); break;
  case 'u': yes = isupper(c); break;
  case 'w': yes = isalnum(c); break;
  case 'x': yes = isxdigit(c); break;
  case 'z': yes = (c == 0); break; /* deprecated but still accepted by 5.4 */
  default: return cl == c;
  }
  if (isupper(cl))
    yes = !yes;
  return yes != 0;
}

/* Whether c is in the set whose '[' is at open and final ']' at close (the
 * set was validated by item_end). */
static int in_set(int c, const char *open, const char *close) {
  const char *q = open + 1;
  int found = 1;
  if (*q == '^') {
    found = 0;
    q++;
  }
  for (; q < close; q++) {
    if (*q == '%') {
      q++;
      if (in_class(c, (unsigned char)*q))
        return found;
    } else if (q + 2 < close && q[1] == '-') {
      if ((unsigned char)q[0] <= c && c <= (unsigned char)q[2])
        return found;
      q += 2;
    } else if ((unsigned char)*q == c) {
      return found;
    }
  }
  return !found;
}

/* One past the single-character item starting at p (a byte, '.', %x or a
 * set); raises on a malformed escape or set. */
static const char *item_end(mstate *ms, const char *p) {
  const char *end = ms->pat_end, *start = p;
  char c = *p++;
  if (c == '%') {
    if (p == end)
      luaL_error(ms->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < end && *p == '^')
      p++;
    /* The first member is taken before looking for ']', so "[]]" and
     * "[^]]" hold a ']'; "%]" never closes the set. */
    do {
      if (p == end)
        luaL_error(ms->L, "malformed pattern (missing ']')");
      c = *p++;
      if (c == '%' && p < end)
        p++;
    } while (p == end || *p != ']');
    charge(ms, (p - start) / 8); /* a long set costs its length */
    return p + 1;
  }
  return p;
}

/* What testing one subject byte against the item [p, ep) costs, in steps
 * times 8: a set is scanned member by member. */
static inline ptrdiff_t item_cost(const char *p, const char *ep) {
  return *p == '[' ? ep - p : 1;
}

/* Whether the subject byte at s matches the item [p, ep). */
static inline int item_match(const mstate *ms, const char *s, const char *p,
                             const char *ep) {
  int c;
  if (s >= ms->subj_end)
    return 0;
  c = (unsigned char)*s;
  switch (*p) {
  case '.': return 1;
  case '%': return in_class(c, (unsigned char)p[1]);
  case '[': return in_set(c, p, ep - 1);
  default: return (unsigned char)*p == c;
  }
}

/* ------------------------------------------------------------- matcher */

static const char *match(mstate *ms, const char *s, const char *p);

/* item* (or item+ after the first byte was taken): take as many as
 * possible, then give back one at a time until the rest matches. */
static const char *greedy(mstate *ms, const char *s, const char *p,
                          const char *ep) {
  ptrdiff_t n = 0, cost = item_cost(p, ep);
  /* charged as it runs, not after: with a long set every byte is a scan */
  ptrdiff_t every = cost >= 64 ? 1 : 256, left = every;
  while (item_match(ms, s + n, p, ep)) {
    n++;
    if (--left == 0) {
      charge(ms, every * cost / 8);
      left = every;
    }
  }
  charge(ms, (every - left) * cost / 8);
  for (; n >= 0; n--) {
    const char *r = match(ms, s + n, ep + 1);
    if (r != NULL)
      return r;
  }
  return NULL;
}

/* item-: try the rest first, taking one more byte after each failure. */
static const char *lazy(mstate *ms, const char *s, const char *p,
                        const char *ep) {
  ptrdiff_t cost = item_cost(p, ep) / 8;
  for (;;) {
    const char *r = match(ms, s, ep + 1);
    if (r != NULL)
      return r;
    charge(ms, cost);
    if (!item_match(ms, s, p, ep))
      return NULL;
    s++;
  }
}

static const char *open_capture(mstate *ms, const char *s, const char *p,
                                ptrdiff_t kind) {
  const char *r;
  if (ms->ncap >= MAX_CAPTURES)
    luaL_error(ms->L, "too many captures");
  ms->cap[ms->ncap].start = s;
  ms->cap[ms->ncap].len = kind;
  ms->ncap++;
  r = match(ms, s, p);
  if (r == NULL)
    ms->ncap--;
  return r;
}

static const char *close_capture(mstate *ms, const char *s, const char *p) {
  int i = ms->ncap - 1;
  const char *r;
  while (i >= 0 && ms->cap[i].len != CAP_OPEN)
    i--;
  if (i < 0)
    luaL_error(ms->L, "invalid pattern capture");
  ms->cap[i].len = s - ms->cap[i].start;
  r = match(ms, s, p);
  if (r == NULL)
    ms->cap[i].len = CAP_OPEN;
  return r;
}

/* %bxy at s: end of the balanced run, or NULL. */
static const char *balance(mstate *ms, const char *s, const char *p) {
  const char *start = s;
  int depth = 1;
  if (s >= ms->subj_end || *s != p[0])
    return NULL;
  while (++s < ms->subj_end) {
    if (*s == p[1]) {
      if (--depth == 0) {
        charge(ms, (s - start) / 8);
        return s + 1;
      }
    } else if (*s == p[0]) {
      depth++;
    }
  }
  charge(ms, (s - start) / 8);
  return NULL;
}

/* %1..%9 at s: end of the repeated text, or NULL. A position capture
 * never matches (it has no text). */
static const char *backref(mstate *ms, const char *s, int digit) {
  int i = digit - '1';
  ptrdiff_t len;
  if (i < 0 || i >= ms->ncap || ms->cap[i].len == CAP_OPEN)
    luaL_error(ms->L, "invalid capture index %%%d", i + 1);
  len = ms->cap[i].len;
  if (len < 0 || ms->subj_end - s < len)
    return NULL;
  charge(ms, len / 8);
  if (memcmp(ms->cap[i].start, s, (size_t)len) != 0)
    return NULL;
  return s + len;
}

/* Matches the pattern [p, pat_end) at s; returns the end of the match or
 * NULL. Every nested call counts against MAX_DEPTH like stock Lua's, so
 * the same patterns are "too complex". */
static const char *match(mstate *ms, const char *s, const char *p) {
  const char *end = ms->pat_end;
  if (ms->depth-- == 0)
    luaL_error(ms->L, "pattern too complex");
  for (;;) {
    const char *ep;
    char q;
    charge(ms, 1);
    if (p == end)
      break;
    switch (*p) {
    case '(':
      if (p + 1 < end && p[1] == ')')
        s = open_capture(ms, s, p + 2, CAP_POS);
      else
        s = open_capture(ms, s, p + 1, CAP_OPEN);
      goto out;
    case ')':
      s = close_capture(ms, s, p + 1);
      goto out;
    case '$':
      if (p + 1 == end) {
        if (s != ms->subj_end)
          s = NULL;
        goto out;
      }
      break; /* a '$' elsewhere is a plain byte */
    case '%':
      if (p + 1 == end)
        break; /* item_end reports it */
      if (p[1] == 'b') {
        if (p + 3 >= end)
          luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
        s = balance(ms, s, p + 2);
        if (s == NULL)
          goto out;
        p += 4;
        continue;
      }
      if (p[1] == 'f') {
        int before, here;
        p += 2;
        if (p == end || *p != '[')
          luaL_error(ms->L, "missing '[' after '%%f' in pattern");
        ep = item_end(ms, p);
        charge(ms, item_cost(p, ep) / 4); /* two scans of the set */
        before = (s == ms->subj) ? 0 : (unsigned char)s[-1];
        here = (s < ms->subj_end) ? (unsigned char)*s : 0;
        if (in_set(before, p, ep - 1) || !in_set(here, p, ep - 1)) {
          s = NULL;
          goto out;
        }
        p = ep;
        continue;
      }
      if (p[1] >= '0' && p[1] <= '9') {
        s = backref(ms, s, p[1]);
        if (s == NULL)
          goto out;
        p += 2;
        continue;
      }
      break;
    default:
      break;
    }
    /* A single-character item, maybe followed by a quantifier. */
    ep = item_end(ms, p);
    q = (ep < end) ? *ep : '\0';
    charge(ms, item_cost(p, ep) / 8);
    if (!item_match(ms, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') {
        p = ep + 1; /* zero repetitions are fine */
        continue;
      }
      s = NULL;
      goto out;
    }
    switch (q) {
    case '?': {
      const char *r = match(ms, s + 1, ep + 1);
      if (r != NULL) {
        s = r;
        goto out;
      }
      p = ep + 1;
      continue;
    }
    case '+': s = greedy(ms, s + 1, p, ep); goto out;
    case '*': s = greedy(ms, s, p, ep); goto out;
    case '-': s = lazy(ms, s, p, ep); goto out;
    default:
      s++;
      p = ep;
      continue;
    }
  }
out:
  ms->depth++;
  return s;
}

/* ------------------------------------------------------------ captures */

/* Text (or, for "()", position) of capture i; with no captures at all,
 * capture 1 is the whole match [s, e). Returns the length or CAP_POS. */
static ptrdiff_t capture_get(mstate *ms, int i, const char *s, const char *e,
                             const char **text) {
  if (i >= ms->ncap) {
    if (i != 0)
      luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    *text = s;
    return e - s;
  }
  if (ms->cap[i].len == CAP_OPEN)
    luaL_error(ms->L, "unfinished capture");
  *text = ms->cap[i].start;
  return ms->cap[i].len;
}

static void capture_push(mstate *ms, int i, const char *s, const char *e) {
  const char *text;
  ptrdiff_t len = capture_get(ms, i, s, e, &text);
  if (len == CAP_POS)
    lua_pushinteger(ms->L, (lua_Integer)(text - ms->subj) + 1);
  else
    lua_pushlstring(ms->L, text, (size_t)len);
}

/* Pushes all captures (or the whole match when there are none and s is
 * not NULL); returns how many. */
static int captures_push(mstate *ms, const char *s, const char *e) {
  int n = (ms->ncap == 0 && s != NULL) ? 1 : ms->ncap;
  int i;
  luaL_checkstack(ms->L, n, "too many captures");
  for (i = 0; i < n; i++)
    capture_push(ms, i, s, e);
  return n;
}

/* ------------------------------------------------------------ bindings */

/* Stock 5.4's start-position rule: negative counts from the end, zero and
 * anything before the start mean 1. */
static size_t start_pos(lua_Integer pos, size_t len) {
  if (pos > 0)
    return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len)
    return 1;
  return len + (size_t)pos + 1;
}

static const hook *hook_of(lua_State *L, int idx) {
  return (const hook *)lua_touserdata(L, lua_upvalueindex(idx));
}

/* Plain search for [n, n+nl) in [h, h+hl). memchr on the first byte is the
 * fastest on ordinary text; after many false candidates (a repetitive
 * subject) it switches to memmem, which is linear in the worst case. */
static const char *find_plain(const char *h, size_t hl, const char *n,
                              size_t nl) {
  const char *last;
  int misses = 0;
  if (nl == 0)
    return h;
  if (nl > hl)
    return NULL;
  last = h + (hl - nl); /* the last possible start */
  while (h <= last) {
    const char *c = memchr(h, n[0], (size_t)(last - h) + 1);
    if (c == NULL)
      return NULL;
    if (memcmp(c + 1, n + 1, nl - 1) == 0)
      return c;
    h = c + 1;
    if (++misses == 32)
      return h <= last ? memmem(h, (size_t)(last - h) + nl, n, nl) : NULL;
  }
  return NULL;
}

/* find uses a plain search when the pattern has none of these bytes (an
 * unmatched ')' is therefore not an error in find, like in stock Lua). */
static int has_specials(const char *p, size_t lp) {
  static const char specials[] = "^$*+?.([%-";
  size_t i;
  for (i = 0; i < lp; i++)
    if (memchr(specials, p[i], sizeof specials - 1) != NULL)
      return 1;
  return 0;
}

static int find_or_match(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    const char *hit = find_plain(s + init, ls - init, p, lp);
    if (hit != NULL) {
      lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
      lua_pushinteger(L, (lua_Integer)(hit - s + (ptrdiff_t)lp));
      return 2;
    }
  } else {
    mstate ms;
    const char *at = s + init;
    int anchored = (lp > 0 && *p == '^');
    if (anchored) {
      p++;
      lp--;
    }
    state_init(&ms, L, hook_of(L, 1), s, ls, p, lp);
    for (;;) { /* every start position up to and including the end */
      const char *e;
      state_reset(&ms);
      e = match(&ms, at, p);
      if (e != NULL) {
        if (!find)
          return captures_push(&ms, at, e);
        lua_pushinteger(L, (lua_Integer)(at - s) + 1);
        lua_pushinteger(L, (lua_Integer)(e - s));
        return captures_push(&ms, NULL, NULL) + 2;
      }
      if (anchored || at >= ms.subj_end)
        break;
      at++;
    }
  }
  luaL_pushfail(L);
  return 1;
}

static int lp_find(lua_State *L) { return find_or_match(L, 1); }

static int lp_match(lua_State *L) { return find_or_match(L, 0); }

/* gmatch iterator state: offsets into the subject kept as an upvalue. */
typedef struct gm_state {
  size_t next;      /* where the next search starts */
  ptrdiff_t last;   /* end offset of the previous match, -1 before any */
} gm_state;

/* Upvalues: subject, pattern, gm_state, hook. An empty match right where
 * the previous match ended is skipped, so "a*" over "baa" yields "", "aa",
 * "" like stock Lua. '^' is a plain byte here, as in stock 5.4. */
static int gmatch_next(lua_State *L) {
  size_t ls, lp, pos;
  const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
  gm_state *gm = (gm_state *)lua_touserdata(L, lua_upvalueindex(3));
  mstate ms;
  state_init(&ms, L, hook_of(L, 4), s, ls, p, lp);
  for (pos = gm->next; pos <= ls; pos++) {
    const char *e;
    state_reset(&ms);
    e = match(&ms, s + pos, p);
    if (e != NULL && e - s != gm->last) {
      gm->next = (size_t)(e - s);
      gm->last = e - s;
      return captures_push(&ms, s + pos, e);
    }
  }
  return 0;
}

static int lp_gmatch(lua_State *L) {
  size_t ls, lp;
  gm_state *gm;
  size_t init;
  luaL_checklstring(L, 1, &ls);
  luaL_checklstring(L, 2, &lp);
  init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls)
    init = ls + 1; /* past the end: the iterator yields nothing */
  lua_settop(L, 2);
  gm = (gm_state *)lua_newuserdatauv(L, sizeof *gm, 0);
  gm->next = init;
  gm->last = -1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, gmatch_next, 4);
  return 1;
}

/* Appends the replacement string repl for the match [s, e): %0 whole match,
 * %1-%9 captures, %% a percent. */
static void add_repl_string(mstate *ms, luaL_Buffer *b, const char *repl,
                            size_t rl, const char *s, const char *e) {
  const char *r = repl, *rend = repl + rl, *pc;
  while ((pc = memchr(r, '%', (size_t)(rend - r))) != NULL) {
    int c;
    luaL_addlstring(b, r, (size_t)(pc - r));
    pc++;
    c = (pc < rend) ? (unsigned char)*pc : 0;
    if (c == '%') {
      luaL_addchar(b, '%');
    } else if (c == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (c >= '1' && c <= '9') {
      const char *text;
      ptrdiff_t len = capture_get(ms, c - '1', s, e, &text);
      if (len == CAP_POS) {
        lua_pushinteger(ms->L, (lua_Integer)(text - ms->subj) + 1);
        luaL_addvalue(b);
      } else {
        luaL_addlstring(b, text, (size_t)len);
      }
    } else {
      luaL_error(ms->L, "invalid use of '%%' in replacement string");
    }
    r = pc + 1;
  }
  luaL_addlstring(b, r, (size_t)(rend - r));
}

/* Appends the replacement for [s, e) per the type of argument 3; returns
 * whether the output differs from the input there. */
static int add_replacement(mstate *ms, luaL_Buffer *b, const char *s,
                           const char *e, int kind, const char *repl,
                           size_t rl) {
  lua_State *L = ms->L;
  if (kind == LUA_TFUNCTION) {
    int n;
    lua_pushvalue(L, 3);
    n = captures_push(ms, s, e);
    lua_call(L, n, 1);
  } else if (kind == LUA_TTABLE) {
    capture_push(ms, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_repl_string(ms, b, repl, rl, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)",
                      luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

static int lp_gsub(lua_State *L) {
  size_t ls, lp, rl = 0;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  const char *last = NULL, *repl = NULL;
  int kind = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  lua_Integer n = 0;
  int anchored, changed = 0;
  mstate ms;
  luaL_Buffer b;
  luaL_argexpected(L, kind == LUA_TNUMBER || kind == LUA_TSTRING ||
                          kind == LUA_TFUNCTION || kind == LUA_TTABLE,
                   3, "string/function/table");
  if (kind == LUA_TNUMBER || kind == LUA_TSTRING)
    repl = lua_tolstring(L, 3, &rl);
  anchored = (lp > 0 && *p == '^');
  if (anchored) {
    p++;
    lp--;
  }
  luaL_buffinit(L, &b);
  state_init(&ms, L, hook_of(L, 1), src, ls, p, lp);
  while (n < max_n) {
    const char *e;
    state_reset(&ms);
    e = match(&ms, src, p);
    if (e != NULL && e != last) {
      n++;
      changed |= add_replacement(&ms, &b, src, e, kind, repl, rl);
      src = last = e;
    } else if (src < ms.subj_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchored)
      break;
  }
  if (!changed) {
    lua_pushvalue(L, 1); /* the subject, as a string */
  } else {
    luaL_addlstring(&b, src, (size_t)(ms.subj_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

void ac_lpattern_install(lua_State *L, int string_table_idx,
                         ac_lpattern_check check, void *ud) {
  static const luaL_Reg fns[] = {{"find", lp_find},
                                 {"match", lp_match},
                                 {"gmatch", lp_gmatch},
                                 {"gsub", lp_gsub},
                                 {NULL, NULL}};
  int t = lua_absindex(L, string_table_idx);
  const luaL_Reg *f;
  hook *hk = (hook *)lua_newuserdatauv(L, sizeof *hk, 0);
  hk->check = check;
  hk->ud = ud;
  for (f = fns; f->name != NULL; f++) {
    lua_pushstring(L, f->name);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, f->func, 1);
    lua_rawset(L, t);
  }
  lua_pop(L, 1);
}
