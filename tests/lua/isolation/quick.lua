-- iso-quick: a well-behaved agent_query plugin that answers at once; it
-- shares a namespace with a bad plugin and must keep answering.
return { id = "iso-quick", capabilities = { "agent_query" },
  onAgentQuery = function(query, context)
    return { { type = "echo", title = query.text, data = { namespace = context.namespaceId } } }
  end }
