/* query.h — query enrichment (SPEC §6 POST .../query, §7): every enabled
 * agent_query plugin of a namespace runs concurrently; the answer comes
 * within the hook timeout plus a small margin whatever the plugins do. */
#ifndef AC_DISPATCH_QUERY_H
#define AC_DISPATCH_QUERY_H

#include "dispatch/hooks.h"
#include "schema/schema.h"

#define AC_QUERY_MAX_RESULTS 20 /* kept per plugin */
#define AC_QUERY_MARGIN_MS 500  /* waited beyond the hook timeout */

/* Runs onAgentQuery of every plugin in snapshot (see
 * ac_store_ns_snapshot) with query {text, userId, locale, namespaceId}.
 * Appends valid results (pluginId set, checked against result_schema) to
 * results and {"pluginId","kind","message"} entries to errors. */
void ac_query_run(const ac_hook_env *env, const ac_schema *result_schema, const char *ns,
                  const json_t *snapshot, const json_t *query, json_t *results, json_t *errors);

#endif
