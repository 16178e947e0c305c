-- expect: error
-- message: context.config is read-only
return { id = "config-write", capabilities = { "agent_query" },
  onAgentQuery = function(q, context) context.config.url = "http://evil" end }
