-- Shared by the bench/wrk-*.lua scripts (loaded with dofile): one line
-- that bench/run.sh parses, printed by wrk's done() when the run ends.
--   WRK requests=N seconds=S rps=R p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
--       errors=N non2xx=N
function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRK requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end

-- Lines of a file, for keys.
function read_lines(path)
  local t = {}
  for line in io.lines(path) do
    if #line > 0 then t[#t + 1] = line end
  end
  return t
end

-- A line of BENCH_KEYS: "KEY" or "KEY TOKEN"; returns key, token or nil.
function key_token(line)
  local k, t = line:match("^(%S+)%s+(%S+)")
  if k then return k, t end
  return line:match("^(%S+)"), nil
end

function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return (s:gsub("%s+$", ""))
end

-- Each wrk thread has its own Lua state: seed it differently.
function seed(thread_salt)
  math.randomseed(os.time() * 1000 + thread_salt)
end
