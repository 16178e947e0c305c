-- expect: error
-- message: xxxxxxxxxx
-- timeout-ms: 3000
-- A 10 MB error message is cut to the outcome's cap.
return { id = "huge-error", capabilities = { "agent_query" },
  onAgentQuery = function() error(string.rep("x", 1e7)) end }
