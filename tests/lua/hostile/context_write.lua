-- expect: error
-- message: context is read-only
return { id = "context-write", capabilities = { "agent_query" },
  onAgentQuery = function(q, context) context.http = {} end }
