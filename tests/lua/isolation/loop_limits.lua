-- iso-loop: context.http through the event loop keeps every limit it had
-- when it blocked. "three" makes three requests under a tight rate limit
-- (the waits for tokens happen while the call is parked); "guard" asks for
-- a link-local address; "hang" waits on a receiver that never answers.
return { id = "iso-loop", capabilities = { "agent_query" },
  configSchema = { type = "object", additionalProperties = false, required = { "url" },
    properties = { url = { type = "string", format = "uri" } } },
  onAgentQuery = function(query, context)
    if query.text == "guard" then
      local r, err = context.http.get("http://169.254.169.254/latest/meta-data/")
      return { { type = "loop", title = r and "reached" or err } }
    end
    local n = query.text == "three" and 3 or 1
    local statuses = {}
    for i = 1, n do
      local r, err = context.http.get(context.config.url)
      if not r then error("upstream: " .. err, 0) end
      statuses[i] = tostring(r.status)
    end
    return { { type = "loop", title = table.concat(statuses, ",") } }
  end }
