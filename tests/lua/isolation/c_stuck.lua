-- iso-stuck: stays inside C for minutes, where no count hook fires. A
-- __call that is itself a callable table makes Lua chain the calls inside
-- its call machinery, shifting a growing stack each time until the stack
-- overflows. setmetatable refuses such a __call, but not one written into
-- the metatable afterwards; and past the deadline the allocator refuses
-- growth, which ends a chain as soon as it needs a larger stack. A stack
-- grown beforehand (table.unpack of 900,000 values) leaves it room for
-- minutes without one allocation. This is what stays for the workers'
-- abandonment to catch: every call is abandoned and still running when the
-- server is stopped.
local big = {}
for i = 1, 900000 do big[i] = i end
return { id = "iso-stuck", capabilities = { "agent_query" },
  onAgentQuery = function()
    local mt = {}
    local t = setmetatable({}, mt)
    mt.__call = t
    select("#", table.unpack(big))
    t()
    while true do end
  end }
