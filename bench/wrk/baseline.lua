-- The HTTP ceiling of this machine: chirp's cheapest JSON endpoint, through the same middleware.
dofile("bench/wrk/common.lua")
wrk.path = "/healthz"
