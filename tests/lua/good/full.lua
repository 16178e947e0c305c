return {
  id = "full-sample", name = "Full sample", category = "test", version = "1.2.3-beta.1+build.5",
  configSchema = { type = "object", properties = { greeting = { type = "string", default = "hi" } },
                   additionalProperties = false },
  capabilities = { PluginCapability.AgentQuery, PluginCapability.ApprovalHook,
                   PluginCapability.DocumentHook, PluginCapability.Tools },
  init = function(context) context.db.set("initialised", true) end,
  onAgentQuery = function(query, context)
    return { { type = "note", title = "echo: " .. query.text,
               data = { initialised = context.db.get("initialised"), ns = context.namespaceId } } }
  end,
  onApprovalCreated = function(event, context) context.log.info("approval", { id = event.approvalId }) end,
  onDocumentReady = function(event, context) return { seen = event.documentId } end,
  tools = { { name = "lookup", description = "Looks a thing up",
              inputSchema = { type = "object", properties = { q = { type = "string" } } } } },
}
