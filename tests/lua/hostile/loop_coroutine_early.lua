-- expect: timeout
-- message: timeout: call exceeded
-- The coroutine exists before the call starts, so no hook was copied into it.
local co = coroutine.create(function()
  while true do coroutine.yield() end
end)
local spin = coroutine.create(function() while true do end end)
return { id = "loop-early", capabilities = { "agent_query" },
  onAgentQuery = function()
    coroutine.resume(co)
    coroutine.resume(spin)
    while true do coroutine.resume(spin) end
  end }
