-- expect: memory
-- message: memory limit of
-- timeout-ms: 10000
return { id = "mem-table", capabilities = { "agent_query" },
  onAgentQuery = function()
    local t = {}
    for i = 1, math.maxinteger do t[i] = i end
  end }
