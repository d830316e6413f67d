-- Scenario "get-path": GET /get/bench:k100 (path form of a command).
-- The path comes from the URL that scripts/bench passes to wrk.
local token = os.getenv("BENCH_TOKEN") or ""
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. token
