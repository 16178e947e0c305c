-- expect: ok
-- log-truncated: yes
-- timeout-ms: 5000
return { id = "print-flood", capabilities = { "agent_query" },
  onAgentQuery = function()
    for i = 1, 30000 do print(string.rep("p", 100), i) end
    return {}
  end }
