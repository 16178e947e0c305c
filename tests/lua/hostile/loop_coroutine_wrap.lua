-- expect: timeout
-- message: timeout: call exceeded
return { id = "loop-wrap", capabilities = { "agent_query" },
  onAgentQuery = function()
    while true do
      pcall(coroutine.wrap(function() while true do end end))
    end
  end }
