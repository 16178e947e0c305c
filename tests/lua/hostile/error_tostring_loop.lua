-- expect: error
-- message: error object is a table value
-- The engine never runs __tostring of an error object.
return { id = "error-tostring", capabilities = { "agent_query" },
  onAgentQuery = function()
    error(setmetatable({}, { __tostring = function() while true do end end }))
  end }
