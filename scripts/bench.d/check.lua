-- Sanity check used by scripts/bench before measuring a scenario: load the
-- scenario script named by BENCH_SCENARIO_LUA, send one request, print the
-- status and the body of the first response, and stop the thread.
dofile(os.getenv("BENCH_SCENARIO_LUA"))
local done = false
function response(status, headers, body)
  if not done then
    done = true
    io.write("STATUS ", status, "\n", body, "\n")
    io.flush()
    wrk.thread:stop()
  end
end
