-- stage: approval
-- expect: retry
-- message: upstream busy
-- A retry caught and raised again unchanged is still a retry.
return { id = "retry-rethrown", capabilities = { "approval_hook" },
  onApprovalCreated = function(event, context)
    local ok, e = pcall(context.retry, "upstream busy", 5)
    error(e, 0)
  end }
