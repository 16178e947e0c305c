-- message: field "id" must match ^[a-z][a-z0-9_-]{0,63}$, got "Bad Id"
return { id = "Bad Id", capabilities = {} }
