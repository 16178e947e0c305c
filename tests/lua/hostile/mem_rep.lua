-- expect: memory
-- message: memory limit of
-- timeout-ms: 10000
return { id = "mem-rep", capabilities = { "agent_query" },
  onAgentQuery = function() return { string.rep("x", 1e9) } end }
