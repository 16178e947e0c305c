-- expect: timeout
-- message: timeout: call exceeded
-- The plugin catches every error, including the timeout, and loops again.
return { id = "loop-pcall", capabilities = { "agent_query" },
  onAgentQuery = function()
    while true do pcall(function() while true do end end) end
  end }
