-- iso-wait: waits on an upstream (the call is parked while the event loop
-- runs the transfer), then does what the query text asks: answer, spin
-- until the deadline, or grow until the memory cap.
return { id = "iso-wait", capabilities = { "agent_query" },
  configSchema = { type = "object", additionalProperties = false, required = { "url" },
    properties = { url = { type = "string", format = "uri" } } },
  onAgentQuery = function(query, context)
    local r, err = context.http.get(context.config.url)
    if not r then error("upstream: " .. err, 0) end
    if query.text == "spin" then while true do end end
    if query.text == "grow" then
      local t, chunk = {}, ("x"):rep(4 << 20)
      for i = 1, math.maxinteger do t[i] = chunk .. i end
    end
    return { { type = "upstream", title = "status " .. r.status } }
  end }
