-- expect: timeout
-- message: timeout
-- A set of a million members scanned for every byte of a long subject:
-- each test costs the set's length, and is charged so.
return { id = "pattern-long-set", capabilities = { "agent_query" },
  onAgentQuery = function()
    local set = "[" .. string.rep("b", 1000000) .. "a]"
    local subject = string.rep("a", 1000000)
    return { { type = "n", title = tostring(#subject:match(set .. "*")) } }
  end }
