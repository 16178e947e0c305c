-- expect: timeout
-- message: timeout
-- A __call chain written into the metatable after setmetatable took it:
-- Lua chains the calls inside C, growing the stack, for minutes. Past the
-- deadline the allocator refuses growth, so the chain ends at its next
-- stack growth.
return { id = "call-chain-late", capabilities = { "agent_query" },
  onAgentQuery = function()
    local mt = {}
    local t = setmetatable({}, mt)
    mt.__call = t
    return { t() }
  end }
