-- message: the file must return a table, got string
return "not a plugin"
