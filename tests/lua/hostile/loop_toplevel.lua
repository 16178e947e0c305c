-- stage: load
-- expect: timeout
-- message: timeout: call exceeded
while true do end
return { id = "loop-toplevel" }
