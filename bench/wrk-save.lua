-- wrk: POST /api/save {"key":K,"data":DATA} (unconditional: no version),
-- K drawn at random from BENCH_KEYS (one "KEY" or "KEY TOKEN" a line: the
-- write token, when instantiate gave one, goes in Authorization: Bearer),
-- DATA the JSON in BENCH_DATA (requests are built once, in init).
dofile(os.getenv("BENCH_DIR") .. "/wrk-report.lua")
local reqs = {}
function init(args)
  local data = read_all(os.getenv("BENCH_DATA"))
  for _, line in ipairs(read_lines(os.getenv("BENCH_KEYS"))) do
    local k, token = key_token(line)
    local headers = {["Content-Type"] = "application/json"}
    if token then headers["Authorization"] = "Bearer " .. token end
    reqs[#reqs + 1] = wrk.format("POST", "/api/save", headers, '{"key":"' .. k .. '","data":' .. data .. '}')
  end
  seed(#reqs + math.floor(os.clock() * 1e6))
end
function request()
  return reqs[math.random(#reqs)]
end
