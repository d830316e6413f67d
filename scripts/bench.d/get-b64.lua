-- Scenario "get-b64": like "get", but asks for base64-encoded results
-- (the @upstash/redis default since v1.x).
local token = os.getenv("BENCH_TOKEN") or ""
wrk.method = "POST"
wrk.body = '["GET","bench:k100"]'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Upstash-Encoding"] = "base64"
