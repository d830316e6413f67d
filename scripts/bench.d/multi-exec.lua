-- Scenario "multi-exec": POST /multi-exec with a transaction of 5 commands
-- (reads and writes; Redis also sees the MULTI and EXEC around them).
local token = os.getenv("BENCH_TOKEN") or ""
wrk.method = "POST"
wrk.body = '[["INCR","bench:ctr"],["GET","bench:k100"],["SET","bench:mx","1"],'
  .. '["INCR","bench:mx"],["GET","bench:mx"]]'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
