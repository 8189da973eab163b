-- wrk script for benchmarks/api_bench.py: replays a pool of /events request paths.
-- PATHS: file with one request path per line; API_KEY: sent as X-API-Key;
-- INTERVAL_MS (optional): pause between a connection's requests, jittered +-50% so that
-- connections do not fire in lockstep; unset means as fast as possible (closed loop).
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
local key = os.getenv("API_KEY")
local interval = tonumber(os.getenv("INTERVAL_MS") or "")
local index = 0

function setup(thread)
  thread:set("offset", math.random(#paths))
end

function request()
  index = index + 1
  local path = paths[((index + (offset or 0)) % #paths) + 1]
  return wrk.format("GET", path, {["X-API-Key"] = key})
end

if interval then
  function delay()
    return interval * (0.5 + math.random())
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, ' ..
    '"p99_ms": %.2f, "max_ms": %.2f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
