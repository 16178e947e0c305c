-- expect: ok
-- result: []
-- Returns the name of every forbidden global or field that is reachable.
local forbidden = { "io", "debug", "package", "dofile", "loadfile", "_G",
  "os.execute", "os.exit", "os.getenv", "os.remove", "os.rename", "os.tmpname",
  "os.setlocale", "string.dump", "coroutine.running == nil", "load_binary" }
local function reach(path)
  local f = load("return " .. path)
  local ok, v = pcall(f)
  return ok and v ~= nil
end
return { id = "removed-globals", capabilities = { "agent_query" },
  onAgentQuery = function()
    local leaks = {}
    for _, name in ipairs(forbidden) do
      if name == "coroutine.running == nil" then
        if coroutine.running == nil then leaks[#leaks + 1] = name end
      elseif name == "load_binary" then
        if load(string.char(27) .. "Lua", "b", "b") then leaks[#leaks + 1] = name end
      elseif reach(name) then leaks[#leaks + 1] = name end
    end
    if pcall(collectgarbage, "collect") then leaks[#leaks + 1] = "collectgarbage(collect)" end
    if type(collectgarbage("count")) ~= "number" then leaks[#leaks + 1] = "count broken" end
    if pcall(require, "os") then leaks[#leaks + 1] = "require(os)" end
    if pcall(require, "io") then leaks[#leaks + 1] = "require(io)" end
    if type(require("cjson").encode) ~= "function" then leaks[#leaks + 1] = "cjson missing" end
    return leaks
  end }
