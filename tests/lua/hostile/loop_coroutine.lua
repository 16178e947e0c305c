-- expect: timeout
-- message: timeout: call exceeded
return { id = "loop-coroutine", capabilities = { "agent_query" },
  onAgentQuery = function()
    local co = coroutine.create(function() while true do end end)
    while true do coroutine.resume(co) end
  end }
