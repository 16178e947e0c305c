-- iso-cstall: each call picks one of the standard functions that used to
-- run for years inside C (no count hook fires there); each now checks the
-- deadline as it goes, so every call ends as a timeout on its worker and
-- no thread is left behind.
local stalls = {
  function() table.move({}, 1, math.maxinteger - 1, 1) end,
  function()
    table.insert(setmetatable({}, { __len = function() return math.maxinteger - 1 end }), 1, 0)
  end,
  function() table.remove(setmetatable({}, { __len = function() return math.maxinteger end }), 1) end,
  function()
    table.concat(setmetatable({}, { __index = function() return "" end }), "", 1, math.maxinteger)
  end,
  function()
    table.sort(setmetatable({}, { __len = function() return 2147483646 end,
      __index = function(_, i) return i % 7 end, __newindex = function() end }))
  end,
  function() ("a"):rep(1 << 20):match("[" .. ("b"):rep(1 << 20) .. "a]*") end,
}
local n = 0
return { id = "iso-cstall", capabilities = { "agent_query" },
  onAgentQuery = function()
    n = n + 1
    stalls[n % #stalls + 1]()
    return {}
  end }
