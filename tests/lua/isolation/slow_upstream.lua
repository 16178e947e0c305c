-- iso-slow: waits on an upstream that answers only after the call's
-- deadline (a local sink delaying every answer), and asks again whenever a
-- request fails, as a client bent on an answer does: the call spends its
-- time in the HTTP client until the engine ends it as a timeout.
return { id = "iso-slow", capabilities = { "agent_query" },
  configSchema = { type = "object", additionalProperties = false, required = { "url" },
    properties = { url = { type = "string", format = "uri" } } },
  onAgentQuery = function(query, context)
    while true do
      local r = context.http.get(context.config.url)
      if r then return { { type = "upstream", title = "status " .. r.status } } end
    end
  end }
