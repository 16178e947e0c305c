-- expect: memory
-- message: memory limit of
-- timeout-ms: 10000
return { id = "mem-concat", capabilities = { "agent_query" },
  onAgentQuery = function()
    local parts = {}
    for i = 1, 64 do parts[i] = string.rep("y", 1 << 18) end
    local s = table.concat(parts)
    while true do s = s .. s end
  end }
