-- expect: error
-- message: too many nested
return { id = "json-deep", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    return context.json.decode(string.rep("[", 100000))
  end }
