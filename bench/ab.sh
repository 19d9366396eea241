#!/usr/bin/env bash
# bench/ab.sh: two sessiond binaries side by side on a save storm (or, with
# AB_ENDPOINT=instantiate or load, an instantiate or load storm), measured
# alternately (A, B, A, B, ...), so that a change to the save path is seen
# against its parent in the same minutes of a shared machine.
#   bench/ab.sh OLD_BINARY NEW_BINARY [sessiond options...]
# e.g. build the parent commit into a second binary:
#   git worktree add /tmp/sd-old HEAD~1 && make -C /tmp/sd-old cgi-bin/sessiond
#   bench/ab.sh /tmp/sd-old/cgi-bin/sessiond cgi-bin/sessiond --durability none
# Each round: a fresh nginx + sessiond (scripts/stack.sh, abuse limits off)
# on a free loopback port, AB_SESSIONS (200) sessions holding
# bench/session-data.json, a 1 s warm-up, then wrk's save script for
# AB_SECONDS (5) at 100 connections. Prints per round the saves/s and
# sessiond's CPU time per save (user and system, from /proc/PID/stat),
# then the median of each binary over AB_ROUNDS (3) rounds and their ratio.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
[ $# -ge 2 ] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY [sessiond options...]" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2")
shift 2
ROUNDS=${AB_ROUNDS:-3} SECS=${AB_SECONDS:-5} NSESS=${AB_SESSIONS:-200} EP=${AB_ENDPOINT:-save}
case $EP in save | load | instantiate) ;; *) echo "ab: AB_ENDPOINT is save, load or instantiate" >&2; exit 2 ;; esac
for tool in wrk jq curl nginx; do
  command -v "$tool" >/dev/null || { echo "ab: $tool is missing (scripts/deps.sh --bench)" >&2; exit 1; }
done
. "$root/scripts/stack.sh"
tmp=$(mktemp -d /tmp/sessiond-ab.XXXXXX)
trap 'stack_stop; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
export BENCH_DIR=$root/bench BENCH_KEYS=$tmp/keys BENCH_DATA=$tmp/data.json
jq -c . bench/session-data.json > "$BENCH_DATA"
printf '{"data":%s}' "$(cat "$BENCH_DATA")" > "$tmp/inst.json"
tck=$(getconf CLK_TCK)

# One round of binary $1 (label $2): prints "label rps user_us sys_us".
round() {
  local bin=$1 label=$2 port
  shift 2
  port=$(free_port) || return 1
  rm -rf "$tmp/run" "$tmp/data"
  SESSIOND=$bin STACK_LIMITS=off stack_start "$tmp/run" "$port" "$tmp/data" --log-level warn "$@" || return 1
  local pid=${STACK_PIDS[0]}
  for ((i = 0; i < NSESS; i++)); do echo "url = \"http://127.0.0.1:$port/api/instantiate\""; done > "$tmp/urls"
  timeout 120 curl -s --parallel --parallel-max 16 -H 'Content-Type: application/json' \
    --data-binary "@$tmp/inst.json" -K "$tmp/urls" 2>/dev/null |
    jq -r 'if .token then "\(.key) \(.token)" else .key end' > "$BENCH_KEYS"
  timeout 30 wrk -t2 -c100 -d1s -s "bench/wrk-$EP.lua" "http://127.0.0.1:$port/api/$EP" >/dev/null 2>&1
  local u0 s0 u1 s1 w
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  w=$(timeout $((SECS + 60)) wrk -t2 -c100 -d"${SECS}s" -s "bench/wrk-$EP.lua" "http://127.0.0.1:$port/api/$EP" 2>&1 | grep '^WRK ')
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  stack_stop
  local n rps bad
  n=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$w")
  rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$w")
  bad=$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$w")
  [ -n "$n" ] && [ "$n" -gt 0 ] && [ "${bad:-1}" = 0 ] || { echo "ab: round of $label failed: $w" >&2; return 1; }
  awk -v l="$label" -v r="$rps" -v n="$n" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v t="$tck" \
    'BEGIN { printf "%s %s %.0f %.0f\n", l, r, du * 1e6 / t / n, ds * 1e6 / t / n }'
}

echo "round binary ${EP}s/s user_us/$EP sys_us/$EP  (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
: > "$tmp/rounds"
for ((r = 1; r <= ROUNDS; r++)); do
  for side in A B; do
    bin=$A; [ $side = B ] && bin=$B
    line=$(round "$bin" "$side" "$@") || exit 1
    echo "$r $line"
    echo "$line" >> "$tmp/rounds"
  done
done
echo "medians over $ROUNDS rounds (loadavg $(cut -d' ' -f1-3 /proc/loadavg)):"
for side in A B; do
  for col in 2 3 4; do
    grep "^$side " "$tmp/rounds" | awk -v c=$col '{print $c}' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
  done | paste -sd' ' | sed "s/^/$side /"
done | tee "$tmp/med"
awk -v ep="$EP" 'NR == 1 {r = $2; u = $3; s = $4} NR == 2 {printf "B / A: %ss/s %.2fx, user CPU per %s %.2fx, system CPU per %s %.2fx\n", ep, $2 / r, ep, $3 / u, ep, $4 / s}' "$tmp/med"
