-- expect: timeout
-- message: timeout
-- table.remove at the front of a table whose __len is huge.
return { id = "remove-stall", capabilities = { "agent_query" },
  onAgentQuery = function()
    local t = setmetatable({}, { __len = function() return math.maxinteger end })
    table.remove(t, 1)
    return {}
  end }
