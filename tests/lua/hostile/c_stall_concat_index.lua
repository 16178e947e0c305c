-- expect: timeout
-- message: timeout
-- table.concat over a huge range whose every element is "": nothing
-- grows, the loop alone would run for years inside C.
return { id = "concat-stall", capabilities = { "agent_query" },
  onAgentQuery = function()
    local s = setmetatable({}, { __index = function() return "" end })
    table.concat(s, "", 1, math.maxinteger)
    return {}
  end }
