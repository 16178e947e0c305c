-- expect: timeout
-- message: timeout: call exceeded
return { id = "loop-xpcall", capabilities = { "agent_query" },
  onAgentQuery = function()
    while true do
      xpcall(function() while true do end end, function(e) while true do end end)
    end
  end }
