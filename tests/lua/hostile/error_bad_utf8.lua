-- expect: error
-- message: ?? not UTF-8
-- An error message with bytes that are not UTF-8: the outcome's message is
-- repaired where it is made, so it can be stored and sent as JSON.
return { id = "error-bad-utf8", capabilities = { "agent_query" },
  onAgentQuery = function()
    error("\255\254 not UTF-8 " .. string.rep("é", 600), 0)
  end }
