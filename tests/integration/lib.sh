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
# Named predicates for ok (below it_done): answered, answered_empty,
# answered_header, no_header, body_lacks, log_has, file_json, canonical,
# no_temp_files.
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
  PORT=${IT_PORT:-$(free_port)} || { echo "no free port" >&2; exit 1; }   # IT_PORT: chosen by the caller
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
  : >"$IT_TMP/body"   # curl leaves the file alone when no body comes (304, HEAD)
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

# ---- predicates for ok: each a named check of the last req, a file or
# the stack's log, instead of a bash -c string ----

# answered STATUS [JQ]: the last answer had STATUS and (if given) its body
# is JSON on which the jq expression JQ holds.
answered() {
  [ "$STATUS" = "$1" ] || return 1
  [ $# -lt 2 ] || printf '%s' "$BODY" | jq -e "$2" >/dev/null 2>&1
}
# answered_empty STATUS: STATUS with an empty body.
answered_empty() { [ "$STATUS" = "$1" ] && [ -z "$BODY" ]; }
# answered_header STATUS NAME VALUE: STATUS, and header NAME is VALUE
# (VALUE "": the header is absent or empty).
answered_header() { [ "$STATUS" = "$1" ] && [ "$(hdr "$2")" = "$3" ]; }
# no_header PREFIX: no header of the last answer starts with PREFIX.
no_header() { ! grep -qi "^$1" "$HDRS"; }
# body_lacks TEXT: the last body does not contain TEXT.
body_lacks() { ! grep -qF -- "$1" <<<"$BODY"; }
# log_has PATTERN: sessiond's log has a line matching PATTERN (grep -E).
log_has() { grep -qE -- "$1" "$RUN/sessiond.log"; }
# file_json FILE JQ: FILE is JSON on which JQ holds.
file_json() { jq -e "$2" "$1" >/dev/null 2>&1; }
# canonical FILE JQ: FILE is a stored document in canonical form (fields
# in order, two-space indentation, a final newline) and JQ holds on it.
canonical() {
  file_json "$1" "$2" &&
    [ "$(jq -r 'keys_unsorted|join(",")' "$1")" = key,version,created,updated,meta,data ] &&
    [ "$(tail -c1 "$1" | od -An -c | tr -d ' ')" = '\n' ] &&
    grep -q '^  "version": [0-9]*,$' "$1"
}
# no_temp_files: no temporary file under the data directory's sessions.
no_temp_files() { [ -z "$(find "$DATA/sessions" -name '*.tmp')" ]; }
