-- Scenario "pipeline-spread": POST /pipeline with 100 GETs of 100 different keys
-- (bench:spread:1 .. bench:spread:100), which a Redis Cluster spreads over its primaries.
local token = os.getenv("BENCH_TOKEN") or ""
local cmds = {}
for i = 1, 100 do
  cmds[i] = '["GET","bench:spread:' .. i .. '"]'
end
wrk.method = "POST"
wrk.body = "[" .. table.concat(cmds, ",") .. "]"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
