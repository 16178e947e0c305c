-- expect: ok
-- result: [{"type":"note","title":"copied"}]
-- json.encode copies read-only views to plain tables; a plugin metatable
-- given a __gc after setmetatable must not come back as a live finalizer
-- on the copy (finalizers run with hooks off: the state could never close).
return { id = "json-encode-gc", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    local mt = {}
    local x = setmetatable({}, mt)
    mt.__gc = function() while true do end end
    context.json.encode({ context.config, x })
    return { { type = "note", title = "copied" } }
  end }
