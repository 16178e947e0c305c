-- expect: error
-- message: cannot change a read-only table
return { id = "config-setmt", capabilities = { "agent_query" },
  onAgentQuery = function(q, context) setmetatable(context, {}) end }
