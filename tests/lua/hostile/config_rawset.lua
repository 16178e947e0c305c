-- expect: error
-- message: cannot write to a read-only table
return { id = "config-rawset", capabilities = { "agent_query" },
  onAgentQuery = function(q, context) rawset(context.config, "url", "x") end }
