-- expect: error
-- message: would exceed 16 MiB
-- timeout-ms: 3000
-- The last value of a json.encode is checked too: an 18 MB string alone.
return { id = "json-last", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    return context.json.encode(string.rep("x", 18 << 20))
  end }
