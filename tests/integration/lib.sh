# shellcheck shell=bash
# Shared by the integration scripts: start a real nginx + sessiond on a free
# loopback port, make requests, check answers, and report.
#   it_setup [sessiond options...]   starts the stack; sets BASE, DATA, RUN
#   req METHOD PATH [curl args...]   sets STATUS, BODY (and headers in $HDRS)
#   hdr NAME                         a response header of the last req
#   auth KEY                         sets AUTH: curl arguments carrying KEY's write token
#   ok NAME CONDITION-COMMAND...     one check
#   eq NAME ACTUAL EXPECTED          one check
#   it_done                          prints the tally; exit status
set -u
IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/stack.sh
. "$IT_ROOT/scripts/stack.sh"
SESSIONCTL=${SESSIONCTL:-$IT_ROOT/build/sessionctl}
LOADGEN=${LOADGEN:-$IT_ROOT/build/loadgen}
IT_PASS=0 IT_FAIL=0 STATUS="" BODY=""
# Every test request comes from one address, hundreds a second: the stacks
# run with limits off (no nginx limit_req, no sessiond miss limit) unless a
# script sets STACK_LIMITS=on before it_setup, as edge.sh does.
STACK_LIMITS=${STACK_LIMITS:-off}

it_setup() {
  IT_TMP=$(mktemp -d /tmp/sessiond-it.XXXXXX)
  RUN=$IT_TMP/run DATA=$IT_TMP/data HDRS=$IT_TMP/headers
  PORT=$(free_port) || { echo "no free port" >&2; exit 1; }
  BASE=http://127.0.0.1:$PORT
  # IT_ACCESS_LOG=1: nginx writes its access log to $RUN/access.log.
  [ "${IT_ACCESS_LOG:-}" = 1 ] && STACK_ACCESS_LOG=$RUN/access.log
  trap it_teardown EXIT
  stack_start "$RUN" "$PORT" "$DATA" "$@" || { echo "stack did not start" >&2; exit 1; }
}

it_teardown() {
  stack_stop
  # A sanitizer or valgrind report, or a leak, in any sessiond is a failure.
  # (valgrind -q prints nothing but its reports, each line "==PID==".)
  if grep -lE 'Sanitizer|runtime error|^==[0-9]+==' "$RUN"/*.log 2>/dev/null; then
    echo "FAIL: sanitizer or valgrind report in sessiond log:" >&2
    grep -hE -A30 'Sanitizer|runtime error|^==[0-9]+==' "$RUN"/*.log | head -60 >&2
    IT_FAIL=$((IT_FAIL + 1))
  fi
  [ "${IT_KEEP:-}" = 1 ] || rm -rf "$IT_TMP"
}

req() {
  local method=$1 path=$2; shift 2
  local out m=(-X "$method")
  [ "$method" = HEAD ] && m=(-I)   # -X HEAD would wait for a body that never comes
  out=$(curl -s -o "$IT_TMP/body" -D "$HDRS" -w '%{http_code}' "${m[@]}" "$@" "$BASE$path")
  STATUS=$out
  BODY=$(cat "$IT_TMP/body")
}

# The token comes from sessionctl token (the stack's secret), for sessions
# a test made by hand or whose instantiate answer it did not keep.
auth() {
  local t
  t=$("$SESSIONCTL" --data-dir "$DATA" token --json "$1" | jq -r .token) || return 1
  AUTH=(-H "Authorization: Bearer $t")
}

hdr() { grep -i "^$1:" "$HDRS" | head -n1 | cut -d: -f2- | sed 's/^ *//; s/\r$//'; }

ok() {
  local name=$1; shift
  if "$@" >/dev/null; then IT_PASS=$((IT_PASS + 1)); echo "ok   $name"
  else IT_FAIL=$((IT_FAIL + 1)); echo "FAIL $name (status=${STATUS:-} body=${BODY:0:300})"; fi
}

eq() {
  if [ "$2" = "$3" ]; then IT_PASS=$((IT_PASS + 1)); echo "ok   $1"
  else IT_FAIL=$((IT_FAIL + 1)); echo "FAIL $1: got '$2', want '$3' (status=${STATUS:-} body=${BODY:0:300})"; fi
}

it_done() {
  trap - EXIT
  it_teardown
  echo "$IT_PASS passed, $IT_FAIL failed"
  [ "$IT_FAIL" -eq 0 ]
}
