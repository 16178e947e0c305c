-- expect: timeout
-- message: timeout: call exceeded
-- The handler loops only after an ordinary error, with hooks on.
return { id = "xpcall-error", capabilities = { "agent_query" },
  onAgentQuery = function()
    return xpcall(error, function() while true do end end, "boom")
  end }
