#!/usr/bin/env bash
# `make run`: nginx + sessiond in the foreground on 127.0.0.1:PORT, data in
# DATA_DIR. Ctrl-C or SIGTERM stops both; nothing is left running.
#   --limits on|off     nginx's limit_req and sessiond's miss limit (LIMITS=)
#   --cors-origin LIST  allowed origins for sessiond and nginx's own errors
#                       (CORS_ORIGIN=; empty: SESSIOND_CORS_ORIGIN, else none)
set -uo pipefail
port=8080 data="$(pwd)/var" limits=on cors=""
while [ $# -gt 0 ]; do
  case $1 in
    --port) port=$2; shift 2 ;;
    --data-dir) data=$2; shift 2 ;;
    --limits) limits=$2; shift 2 ;;
    --cors-origin) cors=$2; shift 2 ;;
    *) echo "run: unknown option $1" >&2; exit 2 ;;
  esac
done
case $limits in on|off) ;; *) echo "run: LIMITS must be on or off" >&2; exit 2 ;; esac
mkdir -p "$data"
data=$(cd "$data" && pwd)
run="$data/run"
# shellcheck source=scripts/stack.sh
. "$(dirname "$0")/stack.sh"

if port_taken "$port"; then
  echo "run: something already listens on 127.0.0.1:$port (make run PORT=...)" >&2
  exit 1
fi
stack_foreground_trap run "nginx and sessiond" stack_stop
opts=()
[ -n "$cors" ] && opts=(--cors-origin "$cors")
STACK_LIMITS=$limits STACK_ACCESS_LOG="$run/access.log" stack_start "$run" "$port" "$data" "${opts[@]}" || exit 1
cat <<MSG
sessiond is serving on http://127.0.0.1:$port (data in $data/sessions, logs in $run)
Limits (nginx limit_req, sessiond miss limit): $limits; CORS origins: ${cors:-${SESSIOND_CORS_ORIGIN:-none}}
The demo app: http://127.0.0.1:$port/ (the browser client: /client/sessiond.js)
Try:
  curl -s -X POST http://127.0.0.1:$port/api/instantiate -H 'Content-Type: application/json' -d '{"data":{"hello":"world"}}'
  curl -s 'http://127.0.0.1:$port/api/load?key=KEY'
Press Ctrl-C to stop.
MSG
# Stay in the foreground; if either server dies, stop the other.
stack_foreground || exit 1
