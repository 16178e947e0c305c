-- stage: load
-- expect: contract
-- message: field "id" is required
-- Reading the contract must not run the plugin table's metamethods.
return setmetatable({}, {
  __index = function() while true do end end,
  __pairs = function() while true do end end,
})
