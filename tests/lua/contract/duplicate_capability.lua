-- message: capabilities[2]: "agent_query" is listed twice
return { id = "dup-cap", capabilities = { "agent_query", "agent_query" },
  onAgentQuery = function() return {} end }
