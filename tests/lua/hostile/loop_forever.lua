-- expect: timeout
-- message: timeout: call exceeded
return { id = "loop-forever", capabilities = { "agent_query" },
  onAgentQuery = function() while true do end end }
