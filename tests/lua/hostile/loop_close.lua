-- expect: timeout
-- message: timeout: call exceeded
-- A to-be-closed variable whose __close loops runs while the error unwinds.
return { id = "loop-close", capabilities = { "agent_query" },
  onAgentQuery = function()
    local guard <close> = setmetatable({}, { __close = function() while true do end end })
    error("unwind")
  end }
