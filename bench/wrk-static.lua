-- wrk: GET the static copy of a session document (nginx ceiling for load).
-- Only the report; the URL path is given on the wrk command line.
dofile(os.getenv("BENCH_DIR") .. "/wrk-report.lua")
