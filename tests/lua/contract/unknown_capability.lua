-- message: capabilities[2]: unknown capability "teleport"
return { id = "unknown-cap", capabilities = { "agent_query", "teleport" },
  onAgentQuery = function() return {} end }
