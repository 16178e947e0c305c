-- expect: error
-- message: cyclic table
return { id = "result-cycle", capabilities = { "agent_query" },
  onAgentQuery = function()
    local r = { type = "note", title = "loop" }
    r.data = r
    return { r }
  end }
