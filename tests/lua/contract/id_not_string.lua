-- message: field "id" must be a string, got number
return { id = 42 }
