-- expect: ok
-- result: ["logged"]
-- context.log with a message alone, the common case (the message's string
-- once landed where the fields are checked and failed the call).
return { id = "log-message-only", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    context.log.info("hello")
    context.log.debug(42)
    context.log.warn("with fields", { a = 1 })
    context.log.error("nil fields", nil)
    return { "logged" }
  end }
