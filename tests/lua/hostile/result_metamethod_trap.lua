-- expect: ok
-- Results are read raw: __index/__pairs/__len on a result never run.
local trap = { __index = function() while true do end end,
               __pairs = function() while true do end end,
               __len = function() while true do end end,
               __tostring = function() while true do end end }
return { id = "result-trap", capabilities = { "agent_query" },
  onAgentQuery = function()
    return { setmetatable({ type = "note", title = "t" }, trap) }
  end }
