-- expect: timeout
-- message: timeout
-- table.sort of two billion virtual elements served by __index and __len
-- (writes are dropped, so only time can end it).
return { id = "sort-stall", capabilities = { "agent_query" },
  onAgentQuery = function()
    local t = setmetatable({}, { __len = function() return 2147483646 end,
      __index = function(_, i) return i % 7 end, __newindex = function() end })
    table.sort(t)
    return {}
  end }
