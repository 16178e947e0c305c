-- expect: error
-- message: would exceed 16 MiB
-- timeout-ms: 3000
-- cjson allocates outside the state's cap; shared references multiply.
return { id = "json-bomb", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    local s = string.rep("x", 1 << 20)
    local t = {}
    for i = 1, 1000 do t[i] = s end
    return context.json.encode(t)
  end }
