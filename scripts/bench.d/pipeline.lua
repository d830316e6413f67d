-- Scenario "pipeline": POST /pipeline with 100 GETs of the 100-byte value.
local token = os.getenv("BENCH_TOKEN") or ""
local cmds = {}
for i = 1, 100 do
  cmds[i] = '["GET","bench:k100"]'
end
wrk.method = "POST"
wrk.body = "[" .. table.concat(cmds, ",") .. "]"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
