#!/usr/bin/env bash
# Conditional increments under contention, through nginx: 200 concurrent
# clients (the load generator's contention scenario) increment one session
# with read-modify-write saves that carry the version they read, retrying
# on 409. Afterwards, read with curl, the counter must equal the increments
# that were acknowledged and the version 1 + that number. First with one
# sessiond, then with two sessiond processes on one data dir behind one
# nginx (the flock protocol between processes, not only the in-process
# mutex, is what keeps increments from being lost there).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup --threads 32
STATUS="" BODY=""

[ -x "$LOADGEN" ] || { echo "no load generator at $LOADGEN (make all)" >&2; exit 1; }

contend() { # NAME: 200 clients on one key, bounded by count and time
  local n=$1
  timeout 120 "$LOADGEN" --url "$BASE" --quiet --json "$IT_TMP/$n.json" \
    --scenario contention --users 200 --keys 1 --requests 4000 --duration 60s --backoff 1s
  local rc=$?
  local f=$IT_TMP/$n.json
  eq "$n: load generator exit status 0" "$rc" 0
  eq "$n: no lost update, mismatch or error" \
    "$(jq '.lost_updates + .mismatches + .transport_errors + .http_5xx + .unexpected_status + .unverified' "$f")" 0
  eq "$n: every increment got an answer" "$(jq .uncertain "$f")" 0
  ok "$n: the clients did collide (409s)" [ "$(jq .conflicts "$f")" -gt 0 ]
  local key acked
  key=$(jq -r '.counters[0].key' "$f")
  acked=$(jq -r '.counters[0].acknowledged' "$f")
  ok "$n: increments were acknowledged" [ "$acked" -gt 0 ]
  req GET "/api/load?key=$key"
  eq "$n: counter == acknowledged increments ($acked)" "$(printf '%s' "$BODY" | jq -r .data.counter)" "$acked"
  eq "$n: version == 1 + acknowledged increments" "$(printf '%s' "$BODY" | jq -r .version)" "$((acked + 1))"
  eq "$n: ETag is that version" "$(hdr ETag)" "\"$((acked + 1))\""
}

contend one-process

# Same test, two sessiond processes sharing a fresh data dir behind one
# nginx. Debug logging shows that both processes answered saves.
stack_stop
DATA=$IT_TMP/data2
PORT=$(free_port) || { echo "no free port" >&2; exit 1; }
BASE=http://127.0.0.1:$PORT
skip=$(($(wc -l < "$RUN/sessiond.log") + 1)) # the first stack's lines
STACK_SECOND_SESSIOND=1 stack_start "$RUN" "$PORT" "$DATA" --threads 32 --log-level debug ||
  { echo "second stack did not start" >&2; exit 1; }
contend two-processes
s1=$(tail -n "+$skip" "$RUN/sessiond.log" | grep -c 'POST /api/save -> 200')
s2=$(grep -c 'POST /api/save -> 200' "$RUN/sessiond2.log")
echo "acknowledged saves: sessiond $s1, sessiond2 $s2"
ok "two-processes: both sessiond processes acknowledged saves" [ "$s1" -gt 0 -a "$s2" -gt 0 ]

it_done
