-- wrk: POST /api/save {"key":K,"data":DATA} (unconditional: no version),
-- K drawn at random from BENCH_KEYS (lines "KEY TOKEN"; the write token
-- goes in Authorization: Bearer), DATA the JSON in BENCH_DATA (requests
-- are built once, in init).
dofile(os.getenv("BENCH_DIR") .. "/wrk-report.lua")
local reqs = {}
function init(args)
  local data = read_all(os.getenv("BENCH_DATA"))
  for _, line in ipairs(read_lines(os.getenv("BENCH_KEYS"))) do
    local k, t = line:match("^(%S+) (%S+)$")
    local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. t}
    reqs[#reqs + 1] = wrk.format("POST", "/api/save", headers, '{"key":"' .. k .. '","data":' .. data .. '}')
  end
  seed(#reqs + math.floor(os.clock() * 1e6))
end
function request()
  return reqs[math.random(#reqs)]
end
