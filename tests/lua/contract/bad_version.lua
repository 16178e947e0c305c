-- message: field "version" must be a semantic version like 1.0.0, got "1.0"
return { id = "bad-version", version = "1.0", capabilities = {} }
