-- The home timeline (20 tweets) of a user following every seeded account.
dofile("bench/wrk/common.lua")
local reader = lines("bench/out/reader.txt")[1]
wrk.headers["Authorization"] = "Bearer " .. reader
wrk.path = "/api/v1/timeline?limit=20"
