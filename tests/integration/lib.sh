# shellcheck shell=bash
# Shared by the integration scripts: start a real nginx + sessiond on a free
# loopback port, make requests, check answers, and report.
#   it_setup [sessiond options...]   starts the stack; sets BASE, DATA, RUN
#   it_prepare                       it_setup without the stack: the folder
#                                    (IT_TMP), PORT, BASE and the teardown
#   req METHOD PATH [curl args...]   sets STATUS, BODY (and headers in $HDRS)
#   hdr NAME                         a response header of the last req
#   auth KEY                         sets AUTH: curl arguments carrying KEY's write token
#   ok NAME CONDITION-COMMAND...     one check
#   eq NAME ACTUAL EXPECTED          one check
#   it_done                          prints the tally; exit status
#   hot_run NAME                     loadgen on one hot key in the background; sets HOT, HOT_PID
# Named predicates for ok, below it_done (instead of bash -c strings): the
# last answer (answered, answered_empty, answered_header, status_in,
# body_json, body_lacks, has_header, header_has, no_header), text (contains,
# contains_all, matches, starts_with, has_line, one_line, row_has), exit statuses
# (rc_is, exited, one_line_exit, failed), files and the store (file_json,
# canonical, file_lacks, file_line_has, file_matches_all, cannot_write,
# no_temp_files, session_files, wrote_nothing, none_exist, same_sessions,
# versions_at_least, in_quarantine, jsonl_compact, jsonl_keys_are,
# sorted_by_first_field), the stack (log_has, metrics_have, proc_env_has,
# prints), and not, which negates any of them.
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

it_prepare() {
  IT_TMP=$(mktemp -d /tmp/sessiond-it.XXXXXX)
  RUN=$IT_TMP/run DATA=$IT_TMP/data HDRS=$IT_TMP/headers
  PORT=${IT_PORT:-$(free_port)} || { echo "no free port" >&2; exit 1; }   # IT_PORT: chosen by the caller
  BASE=http://127.0.0.1:$PORT
  trap it_teardown EXIT
}

it_setup() {
  it_prepare
  # IT_ACCESS_LOG=1: nginx writes its access log to $RUN/access.log.
  [ "${IT_ACCESS_LOG:-}" = 1 ] && STACK_ACCESS_LOG=$RUN/access.log
  stack_start "$RUN" "$PORT" "$DATA" "$@" || { echo "stack did not start" >&2; exit 1; }
}

# Stops every server stack.sh started (a cluster's nodes and router too).
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

# hot_run NAME: start the load generator in the background on one hot key
# (contention, 4 users, 8 s; report in $IT_TMP/NAME.json, output in
# $IT_TMP/NAME.out) and wait up to 10 s for that key's session to be on
# disk (setup is then over). Sets HOT_PID and HOT (the key; "" if none).
hot_run() {
  touch "$IT_TMP/$1.mark"
  timeout 60 "$LOADGEN" --url "$BASE" --quiet --json "$IT_TMP/$1.json" \
    --scenario contention --users 4 --keys 1 --duration 8s --backoff 10ms > "$IT_TMP/$1.out" 2>&1 &
  HOT_PID=$! HOT=""
  local f
  for _ in $(seq 1 100); do
    f=$(find "$DATA/sessions" -name '*.json' -newer "$IT_TMP/$1.mark" | head -n1)
    [ -n "$f" ] && { HOT=$(basename "$f" .json); return 0; }
    sleep 0.1
  done
  return 1
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
# no_temp_files [DIR]: no temporary file under DIR (default: the sessions).
no_temp_files() { [ -z "$(find "${1:-$DATA/sessions}" -name '*.tmp')" ]; }

# not CMD...: CMD fails.
not() { ! "$@"; }
# status_in STATUS...: the last answer had one of these statuses.
status_in() { local s; for s; do [ "$STATUS" = "$s" ] && return 0; done; return 1; }
# body_json JQ: the last body is JSON on which JQ holds.
body_json() { printf '%s' "$BODY" | jq -e "$1" >/dev/null 2>&1; }
# has_header PREFIX: a header line of the last answer starts with PREFIX.
has_header() { grep -qi "^$1" "$HDRS"; }
# header_has NAME TEXT: header NAME of the last answer contains TEXT.
header_has() { contains "$(hdr "$1")" "$2"; }
# contains TEXT NEEDLE; contains_all TEXT NEEDLE...; starts_with TEXT PREFIX;
# matches TEXT REGEX (bash =~); one_line TEXT.
contains() { [[ $1 == *"$2"* ]]; }
contains_all() { local t=$1 n; shift; for n; do contains "$t" "$n" || return 1; done; }
starts_with() { [[ $1 == "$2"* ]]; }
matches() { [[ $1 =~ $2 ]]; }
# has_line TEXT LINE: TEXT has LINE as a whole line.
has_line() { grep -qxF -- "$2" <<<"$1"; }
one_line() { [ "$(printf '%s\n' "$1" | wc -l)" = 1 ]; }
# row_has TEXT FIRST NEEDLE: a line of TEXT whose first field is FIRST
# contains NEEDLE.
row_has() { awk -v k="$2" '$1 == k' <<<"$1" | grep -qF -- "$3"; }
# rc_is WANT [CMD...]: the last command's status $RC is WANT and CMD holds.
rc_is() { [ "$RC" = "$1" ] && { [ $# -lt 2 ] || "${@:2}"; }; }
# exited WANT RC [OUTPUT NEEDLE]: RC is WANT and OUTPUT contains NEEDLE.
exited() { [ "$2" = "$1" ] && { [ $# -lt 4 ] || contains "$3" "$4"; }; }
# one_line_exit WANT RC OUTPUT [NEEDLE]: exited, with one line of OUTPUT.
one_line_exit() { exited "$@" && one_line "$3"; }
# failed RC OUTPUT NEEDLE: RC is not 0 and OUTPUT contains NEEDLE.
failed() { [ "$1" != 0 ] && contains "$2" "$3"; }
# file_lacks FILE TEXT: FILE does not contain TEXT.
file_lacks() { ! grep -qF -- "$2" "$1"; }
# file_line_has FILE TEXT NEEDLE: a line of FILE has both TEXT and NEEDLE.
file_line_has() { grep -F -- "$2" "$1" | grep -qF -- "$3"; }
# file_matches_all FILE REGEX...: each REGEX (grep -E) matches a line of FILE.
file_matches_all() { local f=$1 r; shift; for r; do grep -qE -- "$r" "$f" || return 1; done; }
# cannot_write FILE: appending to FILE fails (a full or read-only disk).
cannot_write() { ! { echo x >>"$1"; } 2>/dev/null; }
# session_files: how many session files the store holds.
session_files() { find "$DATA/sessions" -name '*.json' | wc -l; }
# wrote_nothing FILE COPY N: FILE is still COPY and the store holds N files.
wrote_nothing() { cmp -s "$1" "$2" && [ "$(session_files)" = "$3" ]; }
# none_exist DIR PATH...: no PATH exists under DIR.
none_exist() { local d=$1 p; shift; for p; do [ ! -e "$d/$p" ] || return 1; done; }
# same_sessions DIR1 DIR2 KEY...: each KEY's file is byte-identical in both.
same_sessions() {
  local a=$1 b=$2 k; shift 2
  for k; do cmp -s "$a/sessions/${k:0:2}/$k.json" "$b/sessions/${k:0:2}/$k.json" || return 1; done
}
# versions_at_least DIR GLOB MIN: every session file under DIR named GLOB
# has a version of at least MIN.
versions_at_least() {
  local f
  while read -r f; do
    [ "$(jq .version "$f")" -ge "$3" ] || return 1
  done < <(find "$1/sessions" -name "$2")
}
# in_quarantine QDIR SRC PATH...: each PATH (relative to SRC/sessions, as
# sessionctl fsck --repair names it: slashes to _) is in QDIR, files byte
# for byte.
in_quarantine() {
  local q=$1 src=$2 p; shift 2
  for p; do
    local f="$q/${p//\//_}"
    [ -e "$f" ] || return 1
    [ -d "$f" ] || cmp -s "$src/$p" "$f" || return 1
  done
}
# jsonl_compact FILE: one compact JSON document per line.
jsonl_compact() { jq -c . "$1" | cmp -s - "$1"; }
# jsonl_keys_are FILE KEY...: the documents' keys are exactly KEY...
jsonl_keys_are() { local f=$1; shift; [ "$(jq -r .key "$f" | sort)" = "$(printf '%s\n' "$@" | sort)" ]; }
# sorted_by_first_field FILE: the lines after the header are sorted by
# their first field.
sorted_by_first_field() { tail -n +2 "$1" | awk '{print $1}' | sort -c; }
# metrics_have REGEX...: one scrape of /api/metrics matches every REGEX.
metrics_have() {
  local m r; m=$(curl -s "$BASE/api/metrics")
  for r; do grep -qE -- "$r" <<<"$m" || return 1; done
}
# proc_env_has PID VAR=VALUE: the process's environment has that entry.
proc_env_has() { tr '\0' '\n' <"/proc/$1/environ" | grep -qxF -- "$2"; }
# prints NEEDLE CMD...: CMD's standard output contains NEEDLE.
prints() { "${@:2}" | grep -qF -- "$1"; }
