-- expect: error
-- message: ttlSeconds must be from 0
-- A TTL past what the store keeps is refused, not cut to 32 bits.
return { id = "db-ttl", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    context.db.set("k", 1, (1 << 32) + 1)
    return {}
  end }
