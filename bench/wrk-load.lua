-- wrk: GET /api/load?key=K, K drawn at random from the pre-created keys in
-- the file named by BENCH_KEYS (one "KEY" or "KEY TOKEN" a line; a load
-- needs no token; requests are built once, in init).
dofile(os.getenv("BENCH_DIR") .. "/wrk-report.lua")
local reqs = {}
function init(args)
  for _, line in ipairs(read_lines(os.getenv("BENCH_KEYS"))) do
    local k = key_token(line)
    reqs[#reqs + 1] = wrk.format("GET", "/api/load?key=" .. k)
  end
  seed(#reqs + math.floor(os.clock() * 1e6))
end
function request()
  return reqs[math.random(#reqs)]
end
