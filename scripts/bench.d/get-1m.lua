-- Scenario "get-1m": GET of a 1 MiB value through POST / with an Upstash
-- JSON-array body and a bearer token (the large-value case of "get").
local token = os.getenv("BENCH_TOKEN") or ""
wrk.method = "POST"
wrk.body = '["GET","bench:k1m"]'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
