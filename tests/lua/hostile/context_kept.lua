-- expect: error
-- message: context from an earlier call cannot be used
-- init keeps its context; the hook uses it in a later call.
local saved
return { id = "context-kept", capabilities = { "agent_query" },
  init = function(context) saved = context end,
  onAgentQuery = function() saved.log.info("from an old call") end }
