-- expect: error
-- message: more than 262144 values
-- timeout-ms: 3000
-- Six levels of a table shared ten times over: a tree of a million nodes
-- from a few tables. The conversion counts every node it writes.
return { id = "result-shared", capabilities = { "agent_query" },
  onAgentQuery = function()
    local t = { "leaf" }
    for _ = 1, 6 do
      local n = {}
      for i = 1, 10 do n[i] = t end
      t = n
    end
    return { { type = "note", title = "shared", data = { t = t } } }
  end }
