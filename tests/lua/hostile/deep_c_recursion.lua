-- expect: error
-- message: stack overflow
-- __index functions re-entering through C: Lua caps C calls at 200 levels.
return { id = "deep-c", capabilities = { "agent_query" },
  onAgentQuery = function()
    local t = setmetatable({}, { __index = function(t, k) return t[k .. "x"] end })
    return t.a
  end }
