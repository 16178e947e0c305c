-- expect: error
-- message: nesting deeper than 128
return { id = "json-cycle", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    local t = {}
    t.self = t
    return context.json.encode(t)
  end }
