-- message: capability "tools" needs a "tools" array
return { id = "tools-missing", capabilities = { "tools" } }
