-- expect: timeout
-- message: timeout
-- table.move over almost the whole integer range, inside C.
return { id = "move-stall", capabilities = { "agent_query" },
  onAgentQuery = function()
    table.move({}, 1, math.maxinteger - 1, 1)
    return {}
  end }
