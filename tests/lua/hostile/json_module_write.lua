-- expect: error
-- message: json is read-only
-- The json module is one table for every call of the state: read-only.
return { id = "json-module-write", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    require("cjson").encode = function() return "forged" end
    return {}
  end }
