#!/usr/bin/env bash
# How sessionctl scales: fill a throw-away store with N sessions (default
# 1,000,000) through the store's own create (bench/sessionctl_gen.c), then
# time list, stats, fsck and the other whole-store commands against it and
# print a table (wall time, peak memory). Not part of make test; docs/admin.md
# ("How long it takes on a million sessions") records the figures.
#
#   bench/sessionctl_bench.sh [N]      BENCH_TMP=DIR to put the store elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
N=${1:-1000000}
SESSIONCTL=${SESSIONCTL:-$root/build/sessionctl}
GEN=${GEN:-$root/build/bench/sessionctl_gen}
make --no-print-directory build/sessionctl build/bench/sessionctl_gen >/dev/null

base=${BENCH_TMP:-/tmp}
# About 4 KiB of disk (one block) and one inode per session, plus room.
need_kb=$((N * 5))
free_kb=$(df -Pk "$base" | awk 'NR == 2 {print $4}')
free_inodes=$(df -Pi "$base" | awk 'NR == 2 {print $4}')
if [ "$free_kb" -lt "$need_kb" ] || { [ "$free_inodes" != "-" ] && [ "$free_inodes" -lt $((N + 10000)) ]; }; then
  echo "sessionctl_bench: $base has ${free_kb} KiB and ${free_inodes} inodes free; $N sessions need ~${need_kb} KiB and $N inodes" >&2
  exit 1
fi
store=$(mktemp -d "$base/sessionctl-bench.XXXXXX")
trap 'rm -rf "$store"' EXIT

# run NAME CMD...: one timed run, stdout to /dev/null; prints a table row.
rows=()
run() {
  local name=$1; shift
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$store.rss" "$@" >/dev/null 2>"$store.err" || rc=$?
  t1=$(date +%s.%N)
  local secs rss
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  rss=$(awk '{ printf "%.0f", $1 / 1024 }' "$store.rss")
  rows+=("$(printf '%-42s %9s %8s %5s' "$name" "$secs" "$rss" "$rc")")
  if [ "$rc" -gt 1 ]; then echo "sessionctl_bench: $name failed (exit $rc):" >&2; head "$store.err" >&2; exit 1; fi
}

echo "filling $store with $N sessions..."
run "generate $N sessions (no fsync)" "$GEN" "$store" "$N" "$(nproc)"
du_mb=$(du -sm "$store" | cut -f1)
S=("$SESSIONCTL" --data-dir "$store")
run "sessionctl list > /dev/null" "${S[@]}" list
run "sessionctl list --sort updated --limit 10" "${S[@]}" list --sort updated --limit 10
run "sessionctl stats" "${S[@]}" stats
run "sessionctl fsck" "${S[@]}" fsck
run "sessionctl export > /dev/null" "${S[@]}" export
run "sessionctl gc --older-than 30d --dry-run" "${S[@]}" gc --older-than 30d --dry-run
"${S[@]}" stats
rm -f "$store.rss" "$store.err"

echo
echo "sessionctl on $N sessions ($du_mb MB on disk, $(nproc) CPUs, page cache warm)"
printf '%-42s %9s %8s %5s\n' "command" "seconds" "peak MB" "exit"
printf '%s\n' "${rows[@]}"
echo "removing the store..."
