#!/usr/bin/env bash
# bench/profile.sh: where sessiond's time goes during a save storm (or,
# with PROFILE_ENDPOINT=load or instantiate, a load or instantiate storm).
# Starts nginx + sessiond (scripts/stack.sh) on a free loopback port,
# pre-creates PROFILE_SESSIONS (200) sessions, runs wrk's save script for
# PROFILE_SECONDS (10) at 100 connections and records sessiond with
# `perf record --call-graph dwarf` (call chains through libraries built
# without frame pointers; the cpu-clock software event, which works in guests
# without hardware counters), then prints the top of the profile:
#   the share of each shared object (the kernel's is one of them), the top
#   symbols (self and with callees), and sessiond's CPU time and context
#   switches per save (perf stat).
# Usage: bench/profile.sh [sessiond options...], e.g. --durability none
# --threads 4. Output also in build/bench/profile-*.txt, and the recording
# in build/bench/perf-*.data.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. "$root/scripts/stack.sh"
SECS=${PROFILE_SECONDS:-10}
NSESS=${PROFILE_SESSIONS:-200}
EP=${PROFILE_ENDPOINT:-save}
case $EP in save | load | instantiate) ;; *) echo "profile: PROFILE_ENDPOINT is save, load or instantiate" >&2; exit 2 ;; esac
for tool in wrk jq curl nginx perf; do
  command -v "$tool" >/dev/null || { echo "profile: $tool is missing (scripts/deps.sh --bench)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/sessiond-profile.XXXXXX)
trap 'stack_stop; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
export BENCH_DIR=$root/bench BENCH_KEYS=$tmp/keys BENCH_DATA=$tmp/data.json
jq -c . bench/session-data.json > "$BENCH_DATA"
PORT=$(free_port) || exit 1
STACK_LIMITS=off stack_start "$tmp/run" "$PORT" "$tmp/data" --log-level warn "$@" || exit 1
SD_PID=${STACK_PIDS[0]}
printf '{"data":%s}' "$(cat "$BENCH_DATA")" > "$tmp/inst.json"
for ((i = 0; i < NSESS; i++)); do echo "url = \"http://127.0.0.1:$PORT/api/instantiate\""; done > "$tmp/urls"
timeout 120 curl -s --parallel --parallel-max 16 -H 'Content-Type: application/json' \
  --data-binary "@$tmp/inst.json" -K "$tmp/urls" 2>/dev/null |
  jq -r 'if .token then "\(.key) \(.token)" else .key end' > "$BENCH_KEYS"
mkdir -p build/bench
tag=$(printf '%s' "$EP $*" | tr -c 'a-z0-9' '-')
out=build/bench/profile${tag:+-$tag}.txt
timeout 30 wrk -t2 -c100 -d2s -s bench/wrk-$EP.lua "http://127.0.0.1:$PORT/api/$EP" >/dev/null 2>&1
timeout $((SECS + 60)) perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$SD_PID" -o "$tmp/perf.data" -- sleep "$SECS" 2>/dev/null &
perf_pid=$!
timeout $((SECS + 60)) perf stat -e context-switches,cpu-clock -p "$SD_PID" -o "$tmp/stat" -- sleep "$SECS" 2>/dev/null &
stat_pid=$!
w=$(timeout $((SECS + 60)) wrk -t2 -c100 -d"${SECS}s" -s bench/wrk-$EP.lua "http://127.0.0.1:$PORT/api/$EP" 2>&1 | grep '^WRK ')
wait "$perf_pid" "$stat_pid"
ops=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$w")
{
  echo "sessiond $*, $EP: $w"
  awk -v n="$ops" -v ep="$EP" '/context-switches/ {gsub(",", "", $1); printf "context switches: %d (%.2f per %s)\n", $1, $1 / n, ep}
                     /cpu-clock/ {gsub(",", "", $1); printf "sessiond CPU: %.0f ms (%.0f us per %s)\n", $1, $1 * 1000 / n, ep}' "$tmp/stat"
  echo
  echo "## by shared object (self; [kernel.kallsyms] is the time in the kernel)"
  perf report -i "$tmp/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 8
  echo
  echo "## top symbols (self)"
  perf report -i "$tmp/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 25
  echo
  echo "## top symbols including callees (children), user-space entry points"
  perf report -i "$tmp/perf.data" --children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 40
  echo
  echo "## sessiond's and libfcgi's functions including callees (where user-space requests spend)"
  perf report -i "$tmp/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9].*\] (sd_|serve_one|read_body|write_response|worker|parse_stored|FCGX_|json_)' | head -n 30
} > "$out"
mv "$tmp/perf.data" "build/bench/perf${tag:+-$tag}.data"
cat "$out"
echo "(also in $out; the recording is build/bench/perf${tag:+-$tag}.data for perf report -i)"
