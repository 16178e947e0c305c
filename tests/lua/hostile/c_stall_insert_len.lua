-- expect: timeout
-- message: timeout
-- table.insert at the front of a table whose __len says maxinteger - 1:
-- the shift loop runs inside C.
return { id = "insert-stall", capabilities = { "agent_query" },
  onAgentQuery = function()
    local t = setmetatable({}, { __len = function() return math.maxinteger - 1 end })
    table.insert(t, 1, "x")
    return {}
  end }
