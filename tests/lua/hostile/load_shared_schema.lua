-- stage: load
-- expect: contract
-- message: more than 65536 tables
-- timeout-ms: 3000
-- A configSchema of a few tables shared ten ways over six levels: a
-- million tables once written out. Loading counts what it writes.
local t = { type = "string" }
for _ = 1, 6 do
  local n = { type = "object", properties = {} }
  for i = 1, 10 do n.properties["p" .. i] = t end
  t = n
end
return { id = "load-shared-schema", capabilities = { "agent_query" }, configSchema = t,
  onAgentQuery = function() return {} end }
