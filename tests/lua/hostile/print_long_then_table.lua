-- expect: ok
-- result: []
-- Found by the sandbox fuzzer: print with a first value longer than
-- luaL_Buffer's inline space, then a table. The separator used to be added
-- with the next value already on the stack, where the growing buffer
-- expected itself: a crash.
return { id = "print-long", capabilities = { "agent_query" },
  onAgentQuery = function()
    print(string.rep("ab", 1000, ","), { 1, 2, 3 })
    return {}
  end }
