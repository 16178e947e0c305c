-- expect: error
-- message: key must not contain NUL bytes
-- A key with a NUL byte could be stored but never read back: refused.
return { id = "db-key-nul", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    context.db.set("a\0b", 1)
    return {}
  end }
