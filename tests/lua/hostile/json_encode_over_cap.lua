-- expect: memory
-- message: memory limit
-- timeout-ms: 3000
-- json.encode's output is built outside the state, and counted against
-- what the state's cap leaves: with 40 MiB held, a 2.5 MiB string (15 MiB
-- once every byte is escaped, copied into Lua after) does not fit in the
-- 64 MiB cap.
return { id = "json-over-cap", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    local held = string.rep("a", 40 << 20)
    local s = string.rep("b", 5 << 19)
    return { #held, context.json.encode(s) }
  end }
