-- expect: error
-- message: stack overflow
-- timeout-ms: 5000
local function f(n) return 1 + f(n + 1) end
return { id = "deep-lua", capabilities = { "agent_query" },
  onAgentQuery = function() return f(1) end }
