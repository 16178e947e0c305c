-- expect: error
-- message: more than 262144 values
-- timeout-ms: 3000
-- Found by the sandbox fuzzer: log fields made of a table shared ten ways
-- over seven levels (ten million values once written out).
return { id = "log-fields-shared", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    local t = { "leaf" }
    for _ = 1, 7 do
      local u = {}
      for i = 1, 10 do u[i] = t end
      t = u
    end
    context.log.info(nil, t)
    return {}
  end }
