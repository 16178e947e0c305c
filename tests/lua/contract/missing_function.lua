-- message: capability "approval_hook" needs function "onApprovalCreated", got nil
return { id = "missing-fn", capabilities = { PluginCapability.ApprovalHook } }
