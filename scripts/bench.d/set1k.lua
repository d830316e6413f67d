-- Scenario "set1k": SET of a 1 KiB value through POST /.
local token = os.getenv("BENCH_TOKEN") or ""
wrk.method = "POST"
wrk.body = '["SET","bench:k1k","' .. string.rep("x", 1024) .. '"]'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
