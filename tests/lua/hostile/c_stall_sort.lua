-- expect: timeout
-- message: timeout
-- timeout-ms: 3000
-- Seconds inside table.sort (C code: no hook fires there). Whether the
-- deadline falls inside the sort (the caller is released at the timeout
-- plus half a second and the stuck thread finishes on its own) or in the
-- Lua comparator after it, the outcome is a timeout in bounded time.
local t = {}
for i = 1, 2000000 do t[i] = math.random() end
return { id = "c-stall-sort", capabilities = { "agent_query" },
  onAgentQuery = function()
    table.sort(t, nil)
    table.sort(t, function(a, b) return a > b end)
    while true do end -- a fast machine finished the sorts: the loop times out
  end }
