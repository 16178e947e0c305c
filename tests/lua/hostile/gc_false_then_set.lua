-- expect: error
-- message: __gc metamethods are not allowed
return { id = "gc-false", capabilities = { "agent_query" },
  onAgentQuery = function()
    local mt = { __gc = false }
    setmetatable({}, mt)
    mt.__gc = function() while true do end end
    return {}
  end }
