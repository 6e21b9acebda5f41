-- Text tweets from random users.
dofile("bench/wrk/common.lua")
local tokens = lines("bench/out/tokens.txt")
local n = 0
request = function()
  n = n + 1
  local headers = { ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)], ["Content-Type"] = "application/json" }
  return wrk.format("POST", "/api/v1/tweet", headers, '{"content":"load tweet ' .. n .. '"}')
end
