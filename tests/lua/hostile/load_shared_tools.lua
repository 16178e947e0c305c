-- stage: load
-- expect: contract
-- message: more than 262144 values
-- timeout-ms: 3000
-- tools whose inputSchema shares one table ten ways over six levels.
local t = { type = "string" }
for _ = 1, 6 do
  local n = { type = "object", properties = {} }
  for i = 1, 10 do n.properties["p" .. i] = t end
  t = n
end
return { id = "load-shared-tools", capabilities = { "tools" },
  tools = { { name = "t", description = "d", inputSchema = t } },
  onToolCall = function() return {} end }
