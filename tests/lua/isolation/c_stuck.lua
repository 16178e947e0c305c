-- iso-stuck: stays inside C for seconds, where no count hook fires:
-- table.sort without a comparator compares strings with l_strcmp
-- (strcoll), and these are 8000 references to one 2 MiB string. Measured
-- on the 2-core dev machine with
--   AGENTCORE_HOOK_TIMEOUT_MS=60000 build/agentcore plugin run ... (os.clock
--   around the sort): 6.4 to 7.4 s in the sort, 15 MiB resident
-- (liblua is the system library, so the ASan build is no slower): more than
-- 10x the 500 ms timeout of test_api_isolation and longer than the 5 s a
-- shutdown may take, so every call is abandoned and still running when the
-- server is stopped. Should the sort ever return early, the loop after it
-- still ends the call as a timeout.
local big = string.rep("a", 1 << 21)
local t = {}
for i = 1, 8000 do t[i] = big end

return { id = "iso-stuck", capabilities = { "agent_query" },
  onAgentQuery = function()
    table.sort(t)
    while true do end
  end }
