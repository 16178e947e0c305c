-- expect: memory
-- message: memory limit of
-- timeout-ms: 10000
-- Catching "not enough memory" does not let the plugin go on.
return { id = "mem-pcall", capabilities = { "agent_query" },
  onAgentQuery = function()
    local keep = {}
    while true do
      pcall(function() keep[#keep + 1] = string.rep("z", 1 << 22) .. #keep end)
    end
  end }
