/* query.h — query enrichment: every enabled agent_query plugin of a
 * namespace runs concurrently; the answer comes within the hook timeout
 * plus a small margin whatever the plugins do, and the thread that starts
 * it never waits for plugin code. */
#ifndef AC_DISPATCH_QUERY_H
#define AC_DISPATCH_QUERY_H

#include "dispatch/hooks.h"
#include "schema/schema.h"

#define AC_QUERY_MAX_RESULTS 20 /* kept per plugin */
#define AC_QUERY_BODY_MAX ((size_t)256 << 20) /* an answer's text */

/* Called once with the text of {"results":[...],"errors":[...],"tookMs"}
 * (the caller frees it), or NULL when the engine ran out of memory. */
typedef void (*ac_query_done_fn)(char *body, void *ud);

/* Runs onAgentQuery of every plugin in snapshot (the namespace's entry of
 * the tenancy snapshot) with query {text, userId, locale, namespaceId}.
 * Calls start on this thread within one shared slice and go on on the
 * workers; done runs when the last one ends — possibly before this
 * returns, else on a worker. Valid results (pluginId set, checked against
 * result_schema) are kept in plugin order; failures become
 * {"pluginId","kind","message"} entries. start_ms: when the request
 * began, for tookMs. */
void ac_query_start(const ac_hook_env *env, const ac_schema *result_schema, const char *ns,
                    const json_t *snapshot, const json_t *query, int64_t start_ms,
                    ac_query_done_fn done, void *ud);

#endif
