-- expect: timeout
-- message: timeout
-- timeout-ms: 1000
-- About two seconds inside table.sort (C code: no hook fires there). The
-- caller is released at the timeout plus half a second; the stuck thread
-- finishes on its own and frees its state.
local t = {}
for i = 1, 2000000 do t[i] = math.random() end
return { id = "c-stall-sort", capabilities = { "agent_query" },
  onAgentQuery = function()
    table.sort(t, nil)
    table.sort(t, function(a, b) return a > b end)
    return {}
  end }
