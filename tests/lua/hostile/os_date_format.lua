-- expect: error
-- message: invalid conversion specifier
return { id = "os-date", capabilities = { "agent_query" },
  onAgentQuery = function() return os.date("%Ez%Q") end }
