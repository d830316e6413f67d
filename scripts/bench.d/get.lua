-- Scenario "get": GET of a 100-byte value through POST / with an Upstash
-- JSON-array body and a bearer token (the form @upstash/redis sends).
local token = os.getenv("BENCH_TOKEN") or ""
wrk.method = "POST"
wrk.body = '["GET","bench:k100"]'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
