-- expect: ok
-- result: [{"type":"note","title":"forged"}]
-- A table whose metatable names itself as the engine's read-only marker:
-- it is a plain table to the engine, converted once, never followed.
return { id = "forged-view-result", capabilities = { "agent_query" },
  onAgentQuery = function()
    local t = { type = "note", title = "forged" }
    setmetatable(t, { __ac_readonly = t, __index = t, __newindex = function() end })
    return { t }
  end }
