-- expect: timeout
-- message: timeout: call exceeded
return { id = "loop-nested", capabilities = { "agent_query" },
  onAgentQuery = function()
    local inner = coroutine.wrap(function() while true do end end)
    local outer = coroutine.create(function() while true do pcall(inner) end end)
    while true do coroutine.resume(outer) end
  end }
