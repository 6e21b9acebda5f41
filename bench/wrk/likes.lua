-- Each request: a random user likes a random tweet (a repeat answers 200).
dofile("bench/wrk/common.lua")
local tweets = lines("bench/out/tweets.txt")
local tokens = lines("bench/out/tokens.txt")
request = function()
  local headers = { ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] }
  return wrk.format("POST", "/api/v1/tweet/" .. tweets[math.random(#tweets)] .. "/like", headers)
end
