-- expect: timeout
-- message: timeout
-- The same stall through the string metatable (s:match).
return { id = "pattern-method", capabilities = { "agent_query" },
  onAgentQuery = function()
    local s = ("a"):rep(300)
    return { s:match(".-.-.-.-.-b") }
  end }
