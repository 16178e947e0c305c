-- stage: approval
-- expect: error
-- message: unrelated failure
-- A retry caught by pcall is over: a later, unrelated error is an error.
return { id = "retry-caught", capabilities = { "approval_hook" },
  onApprovalCreated = function(event, context)
    pcall(context.retry, "later", 5)
    error("unrelated failure")
  end }
