-- iso-spin: spins until its deadline, where the count hook stops it
-- (outcome timeout). test_api_isolation's noisy neighbour.
return { id = "iso-spin", capabilities = { "agent_query" },
  onAgentQuery = function() while true do end end }
