-- expect: error
-- message: __call must be a function
-- A __call that is itself callable: Lua chains the calls inside C,
-- growing the stack each time, for minutes.
return { id = "call-chain", capabilities = { "agent_query" },
  onAgentQuery = function()
    local t = {}
    setmetatable(t, { __call = t })
    return { t() }
  end }
