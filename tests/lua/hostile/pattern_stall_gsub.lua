-- expect: timeout
-- message: timeout
return { id = "pattern-gsub", capabilities = { "agent_query" },
  onAgentQuery = function()
    local ok = pcall(string.gsub, ("a"):rep(100), ".-.-.-.-.-b", "")
    while true do end
  end }
