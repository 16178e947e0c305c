-- expect: ok
-- log-truncated: yes
-- The log cap counts what is written: fields and escaping too.
return { id = "log-fields", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    local big = string.rep("\1", 60000) -- six bytes each once escaped
    for i = 1, 200 do context.log.info("x", { f = big }) end
    return {}
  end }
