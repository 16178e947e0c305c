-- expect: error
-- message: PluginCapability is read-only
return { id = "capability-write", capabilities = { "agent_query" },
  onAgentQuery = function() PluginCapability.AgentQuery = "tools" end }
