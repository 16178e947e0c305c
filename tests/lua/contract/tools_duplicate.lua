-- message: tools[2].name "lookup" is used twice
return { id = "tools-dup", capabilities = { "tools" },
  tools = { { name = "lookup", description = "a", inputSchema = { type = "object" } },
            { name = "lookup", description = "b", inputSchema = { type = "object" } } } }
