-- message: syntax_error.lua:4:
return {
  id = "syntax-error",
  name = = "broken",
}
