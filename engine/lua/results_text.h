/* results_text.h — onAgentQuery's results written straight as JSON text.
 *
 * The general way to a query's answer converts what a hook returned to
 * jansson values, checks each result against the PluginResult schema and
 * writes the values out: a third of a /query went there, for results
 * that are almost always valid. This writes the Lua results as the text
 * of the answer in one walk, when every result is surely a valid
 * PluginResult (schemas/plugin-result.json) and the value is well within
 * the conversion limits. Anything it is not sure of (a result to refuse,
 * a read-only view, integer keys in an object, invalid UTF-8, a large
 * value) it leaves to the general way, which decides and explains: the
 * two agree on every value the fast one takes, byte for byte
 * (tests/unit/test_results_text.c compares them). */
#ifndef AC_LUA_RESULTS_TEXT_H
#define AC_LUA_RESULTS_TEXT_H

#include "core/buf.h"

#include <lua.h>

/* Values and bytes past which the general way takes over. */
#define AC_RESULTS_TEXT_NODES_MAX 4096
#define AC_RESULTS_TEXT_BYTES_MAX (256u << 10)

/* Appends the results in the value at idx — nil, an empty table, or an
 * array of at most AC_QUERY_MAX_RESULTS (20) tables — to out as JSON
 * objects separated by commas, each with "pluginId":plugin_id last (the
 * id is a checked plugin id: nothing to escape). Returns 1 when written
 * (no results writes nothing), 0 when the general way must take the value
 * (out is then as it was). The memory the text takes is counted against
 * what the state's cap leaves, as the general way counts it. Raw access
 * only; never raises but for memory. */
int ac_lua_results_text(lua_State *L, int idx, const char *plugin_id, ac_buf *out);

#endif
