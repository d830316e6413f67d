-- Scenario "get-1m-b64": like "get-1m", with Upstash-Encoding: base64.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "get-1m.lua")
wrk.headers["Upstash-Encoding"] = "base64"
