-- message: field "init" must be a function, got string
return { id = "bad-init", init = "yes", capabilities = {} }
