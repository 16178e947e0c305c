-- iso-tenant: keeps its tenant's secret (context.config.token) in a global,
-- a file-level local and a file-level cache table, and reports what it
-- found there from earlier calls before overwriting. Only SHA-256
-- fingerprints are reported, never a secret: title is the fingerprint of
-- this call's own token, data.seenGlobal / data.seenLocal the fingerprint of
-- what the global / local held ("" for nothing), data.seenCache every
-- fingerprint the cache held, sorted and comma-separated.
local last
local cache = {}

return { id = "iso-tenant", capabilities = { "agent_query" },
  configSchema = { type = "object", additionalProperties = false, required = { "token" },
    properties = { token = { type = "string", minLength = 8, writeOnly = true } } },
  onAgentQuery = function(query, context)
    local crypto = context.crypto
    local function fp(s) return s and crypto.hex(crypto.sha256(s)) or "" end
    local cached = {}
    for k in pairs(cache) do cached[#cached + 1] = fp(k) end
    table.sort(cached)
    local result = { type = "tenant", title = fp(context.config.token),
      data = { namespace = context.namespaceId, seenGlobal = fp(ISO_TENANT_SECRET),
               seenLocal = fp(last), seenCache = table.concat(cached, ",") } }
    ISO_TENANT_SECRET = context.config.token
    last = context.config.token
    cache[context.config.token] = true
    return { result }
  end }
