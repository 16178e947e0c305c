-- expect: error
-- message: attempt to load a binary chunk
return { id = "load-bytecode", capabilities = { "agent_query" },
  onAgentQuery = function()
    local f, err = load("\27Lua\84\0\25\147\13\10\26\10\4\8\8x", "evil", "b")
    if not f then error(err, 0) end
    return {}
  end }
