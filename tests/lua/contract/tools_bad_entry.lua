-- message: tools[1].inputSchema must be a table
return { id = "tools-bad", capabilities = { "tools" },
  tools = { { name = "lookup", description = "Looks up" } } }
