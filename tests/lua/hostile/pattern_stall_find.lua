-- expect: timeout
-- message: timeout
-- Minutes inside the pattern matcher, where no count hook fires.
return { id = "pattern-find", capabilities = { "agent_query" },
  onAgentQuery = function()
    return { string.find(string.rep("a", 400), ".-.-.-.-b") }
  end }
