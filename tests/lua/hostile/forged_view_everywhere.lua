-- expect: ok
-- result: [{"type":"note","title":"{\"a\":1}"}]
-- The same forgery handed to log fields, db.set and json.encode.
return { id = "forged-view-all", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    local t = { a = 1 }
    setmetatable(t, { __ac_readonly = t, __index = t })
    context.log.info("forged", { f = t })
    assert(context.db.set("k", t))
    return { { type = "note", title = context.json.encode(t) } }
  end }
