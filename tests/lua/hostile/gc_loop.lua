-- expect: error
-- message: __gc metamethods are not allowed
-- A looping finalizer would run with hooks off, at collection or lua_close.
return { id = "gc-loop", capabilities = { "agent_query" },
  onAgentQuery = function()
    setmetatable({}, { __gc = function() while true do end end })
    return {}
  end }
