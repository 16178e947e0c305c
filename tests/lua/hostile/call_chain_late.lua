-- expect: timeout
-- message: timeout
-- timeout-ms: 100
-- A __call chain written into the metatable after setmetatable took it:
-- Lua chains the calls inside C, growing the stack, for minutes. Past the
-- deadline the allocator refuses growth, so the chain ends at its next
-- stack growth. Growths come further apart as the stack doubles (the
-- chain shifts the whole stack each step): a short timeout keeps the next
-- one well inside the second the sandbox allows past it.
return { id = "call-chain-late", capabilities = { "agent_query" },
  onAgentQuery = function()
    local mt = {}
    local t = setmetatable({}, mt)
    mt.__call = t
    return { t() }
  end }
