-- stage: load
-- expect: timeout
-- message: timeout
-- The top level is plugin code under the same deadline as a hook, C
-- functions included.
table.move({}, 1, math.maxinteger - 1, 1)
return { id = "load-c-stall", capabilities = { "agent_query" },
  onAgentQuery = function() return {} end }
