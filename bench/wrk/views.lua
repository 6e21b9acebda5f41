dofile("bench/wrk/common.lua")
local tweets = lines("bench/out/tweets.txt")
request = function()
  return wrk.format("PATCH", "/api/v1/tweet/" .. tweets[math.random(#tweets)] .. "/views")
end
