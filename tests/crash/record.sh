#!/usr/bin/env bash
# Record one run for the power-loss checker.
#   record.sh OUT SCENARIO SESSIOND [sessiond options...]
# SCENARIO: existing (a store made by an earlier run), empty (DATA_DIR exists
# and is empty), nodir (DATA_DIR does not exist). Starts the real nginx +
# sessiond (under strace, through strace-sessiond.sh) on a free loopback
# port, snapshots the folder holding DATA_DIR first, runs client.py's
# workload and stops the stack. OUT gets: base/ (that folder, as the run left
# it), snapshot.json, trace, requests.jsonl, meta.json.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=$1 scenario=$2 bin=$3; shift 3
# shellcheck source=scripts/stack.sh
. "$here/../../scripts/stack.sh"
SCALE=${CRASH_SCALE:-1}
# All requests come from one address: no rate or miss limits (LIMITS=off).
export STACK_LIMITS=off
rm -rf "$out"; mkdir -p "$out/base" "$out/run"
data=$out/base/data
# The secret lives outside base/: its creation fsyncs the folder it is made
# in, which would make DATA_DIR's own entries durable and hide the
# no-mkdir-fsync build from the checker. Both runs share it (tokens).
secret=(--secret-file "$out/secret")
port=$(free_port)
trap 'stack_stop' EXIT
case $scenario in
  existing)
    SESSIOND=$bin stack_start "$out/run0" "$port" "$data" "${secret[@]}" "$@" || exit 1
    python3 "$here/client.py" seed "http://127.0.0.1:$port" "$out/keys.json" 3 || exit 1
    stack_stop
    keys=(--keys "$out/keys.json");;
  empty) mkdir "$data"; keys=();;
  nodir) keys=();;
  *) echo "record.sh: unknown scenario $scenario" >&2; exit 2;;
esac
python3 "$here/client.py" snapshot "$out/base" "$out/snapshot.json" || exit 1
# stack_start makes the folder it is given; for "nodir" it gets a scratch
# folder outside base/, and sessiond (whose last --data-dir wins) must make
# DATA_DIR itself.
export SD_CRASH_TRACE=$out/trace SESSIOND_REAL=$bin
SESSIOND=$here/strace-sessiond.sh stack_start "$out/run" "$port" "$out/run/unused" --data-dir "$data" "${secret[@]}" "$@" || exit 1
python3 "$here/client.py" workload "http://127.0.0.1:$port" "$out/requests.jsonl" "${keys[@]}" --scale "$SCALE" || exit 1
stack_stop
trap - EXIT
printf '{"base":"%s","data":"data","scenario":"%s"}\n' "$out/base" "$scenario" > "$out/meta.json"
