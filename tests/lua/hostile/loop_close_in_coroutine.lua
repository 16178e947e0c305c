-- expect: timeout
-- message: timeout: call exceeded
-- A dying coroutine's pending __close handlers run when it is closed.
return { id = "close-in-co", capabilities = { "agent_query" },
  onAgentQuery = function()
    local f = coroutine.wrap(function()
      local x <close> = setmetatable({}, { __close = function() while true do end end })
      while true do end
    end)
    while true do pcall(f) end
  end }
