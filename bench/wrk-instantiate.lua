-- wrk: POST /api/instantiate {"data":DATA}, DATA the JSON in BENCH_DATA.
dofile(os.getenv("BENCH_DIR") .. "/wrk-report.lua")
local body
local headers = {["Content-Type"] = "application/json"}
function init(args)
  body = '{"data":' .. read_all(os.getenv("BENCH_DATA")) .. '}'
end
function request()
  return wrk.format("POST", "/api/instantiate", headers, body)
end
