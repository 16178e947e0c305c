-- expect: ok
-- result: [{"type":"note","title":"0"}]
-- Stock string.rep loops n times even to build "": years in C.
return { id = "rep-empty", capabilities = { "agent_query" },
  onAgentQuery = function()
    local s = string.rep("", math.maxinteger) .. ("").rep("", math.maxinteger, "")
    return { { type = "note", title = tostring(#s) } }
  end }
