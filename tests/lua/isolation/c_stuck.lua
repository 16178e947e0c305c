-- iso-stuck: stays inside C for minutes, where no count hook fires. A
-- __call that is itself a callable table makes Lua chain the calls inside
-- its call machinery, shifting a growing stack each time until the stack
-- overflows (measured on the 2-core dev machine with
-- AGENTCORE_HOOK_TIMEOUT_MS=600000 build/agentcore plugin run: 334 s).
-- setmetatable refuses such a __call; one written into the metatable
-- afterwards cannot be seen, so this is what stays for the workers'
-- abandonment to catch: every call is abandoned and still running when the
-- server is stopped.
return { id = "iso-stuck", capabilities = { "agent_query" },
  onAgentQuery = function()
    local mt = {}
    local t = setmetatable({}, mt)
    mt.__call = t
    t()
    while true do end
  end }
