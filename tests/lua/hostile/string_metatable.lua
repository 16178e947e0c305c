-- expect: error
-- message: attempt to index a string value
-- getmetatable("") answers "protected", not the metatable.
return { id = "string-mt", capabilities = { "agent_query" },
  onAgentQuery = function()
    local mt = getmetatable("")
    mt.__index = function() return "pwned" end
  end }
