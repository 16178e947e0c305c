-- expect: error
-- message: functions cannot be JSON
return { id = "result-function", capabilities = { "agent_query" },
  onAgentQuery = function() return { { type = "x", title = "y", data = { f = print } } } end }
