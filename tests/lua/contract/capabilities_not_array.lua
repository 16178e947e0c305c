-- message: field "capabilities" must be an array of strings
return { id = "caps-map", capabilities = { agent = "agent_query" } }
