#!/usr/bin/env bash
# The cluster (docs/cluster.md) through `make cluster`'s machinery
# (scripts/cluster.sh): 3 sessiond nodes behind the routing nginx, one
# shard table, one secret. The issue's 15 tests, numbered as there:
#  1 every bucket routes to its table node, upper, lower and mixed case
#  2 malformed keys stop at the router; the nodes' counters do not move
#  3 ?KEY=, ?Key= and duplicate keys are 400
#  4 a URL and body key mismatch is 400                          (node table)
#  5 a direct request to a non-owner is 421, nothing written     (node table)
#  6 instantiate lands 100% in owned buckets                     (node table)
#  7 ?from= reaches the owner                                    (node table)
#  8 a frozen bucket refuses writes and serves loads
#  9 the freeze barrier waits for a write held inside its lock
# 10 a move under a contention storm loses 0 acknowledged updates; the same
#    move with --skip-freeze loses some: this test shows that it does (saves
#    the old owner acknowledges after the final copy never reach the new one)
# 11 a delete before a move stays deleted after it
# 12 the abort path leaves the old owner serving; 12b so does a new router
#    map that nginx refuses, checked before the table changes
# 13 a node down: 503 busy for its keys, 201 for instantiate
# 14 a router reload during a storm loses nothing acknowledged
# 15 a token from node A verifies on node B after a bucket move
# 16 the router's configuration a move regenerates keeps the settings the
#    cluster started with (CORS origins, access log, body size, workers)
# "(node table)": these need sessiond's --shard-table/--node-id (the node's
# half of issue 13); with a sessiond without them they are reported SKIP.
#
# The contention storm is driven from here (curl, conditional saves with
# retries on 409 and 503): loadgen's contention scenario creates its hot
# sessions with instantiate, so it cannot pin them in the bucket being
# moved. Its rule is loadgen's: the final counter of each key must equal the
# increments acknowledged with 200; lost = acknowledged - final.
. "$(dirname "$0")/lib.sh"
. "$IT_ROOT/scripts/cluster.sh"
# lib.sh's folder, port and teardown (which stops the nodes and the router
# and checks their logs, all in $RUN), without its single-node stack.
it_prepare
CDIR=$IT_TMP/cluster RUN=$IT_TMP/cluster/run
# Settings other than the defaults, for 16: scripts/move-bucket, another
# process without them in its environment, must keep them.
APP=http://app.example
STACK_NGINX_WORKERS=3 STACK_MAX_BODY=2m STACK_ACCESS_LOG=$RUN/access.log \
  cluster_start "$CDIR" "$PORT" 3 --cors-origin "$APP" 2>"$IT_TMP/start.err" ||
  { cat "$IT_TMP/start.err"; echo "cluster did not start"; exit 1; }
cp "$RUN/router.conf" "$IT_TMP/router.conf.start"; cp "$RUN/sessiond-cors.conf" "$IT_TMP/cors.conf.start"
TABLE=$CDIR/shard.table
NODE_TABLE=0
"$SESSIOND" --help 2>&1 | grep -q -- --shard-table && NODE_TABLE=1
skip() { echo "SKIP $1 (this sessiond has no --shard-table)"; }
CT=(-H 'Content-Type: application/json')
owner() { awk -v b="${1:0:2}" '$1 == toupper(b) { print $2 }' "$TABLE"; }
other() { local o; o=$(owner "$1"); for n in n1 n2 n3; do [ "$n" != "$o" ] && { echo "$n"; return; }; done; }
token() { "$SESSIONCTL" --data-dir "$CDIR/$(owner "$1")" token --secret-file "$CDIR/secret" --json "$1" | jq -r .token; }
NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
doc() { printf '{"key":"%s","version":1,"created":"%s","updated":"%s","meta":{},"data":{"n":0}}\n' "$1" "$NOW" "$NOW"; }
put() { local k; for k in "$@"; do doc "$k" | "$SESSIONCTL" --data-dir "$CDIR/$(owner "$k")" import >/dev/null; done; }
# Sum of the nodes' request counters, the metrics scrapes left out.
node_requests() {
  local n s=0 v
  for n in n1 n2 n3; do
    v=$(curl -s "$BASE/_node/$n/api/metrics" | awk '/^sessiond_requests_total/ && !/endpoint="metrics"/ { s += $2 } END { print s + 0 }')
    s=$((s + v))
  done
  echo "$s"
}

# --- 1. every bucket, three spellings ---
for n in n1 n2 n3; do
  awk -v n="$n" '$2 == n && $3 == "owned" { print $1 }' "$TABLE" | while read -r b; do doc "${b}RT0001"; done |
    "$SESSIONCTL" --data-dir "$CDIR/$n" import >/dev/null
done
awk '$3 == "owned" { b = $1; print b "RT0001"; print tolower(b) "rt0001"; print substr(b,1,1) tolower(substr(b,2,1)) "Rt0001" }' "$TABLE" |
  while read -r k; do printf 'url = "%s/api/load?key=%s"\noutput = "/dev/null"\n' "$BASE" "$k"; done > "$IT_TMP/urls"
codes=$(curl -s -K "$IT_TMP/urls" -w '%{http_code}\n' | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
eq "1: all 1296 buckets in 3 spellings load from their table node" "$codes" "200:3888 "
echo "1: the router's map covers the table: $(grep -c 'sd_node_' "$RUN/shard-map.conf") lines"
ok "1: the generated map names each bucket's table node" diff <(awk '$3 ~ /owned|frozen/ { print $1, "sd_node_" $2 }' "$TABLE") \
  <(awk '$1 ~ /^[A-Z0-9][A-Z0-9]$/ { sub(/;$/, "", $2); print $1, $2 }' "$RUN/shard-map.conf")

# --- 2 and 3: no usable key stops at the router ---
before=$(node_requests)
bad=0
for q in "/api/load" "/api/load?key=" "/api/load?key=abc" "/api/load?key=ab-defgh" "/api/load?key=ABCDEFGHI" \
  "/api/load?KEY=ABCDEFGH" "/api/load?Key=ABCDEFGH" "/api/load?key=ABCDEFGH&key=ABCDEFGH" \
  "/api/load?key=ABCDEFGH&x=1" "/api/save" "/api/delete?from=ABCDEFGH" "/api/instantiate?key=ABCDEFGH"; do
  req GET "$q"
  [ "$STATUS" = 400 ] && [ "$(jq -r .error <<<"$BODY")" = bad_key ] || { bad=$((bad + 1)); echo "  $q: $STATUS $BODY"; }
done
eq "2/3: malformed keys, KEY=, Key=, duplicates: 400 bad_key at the router" "$bad" 0
eq "2: the nodes' request counters did not move" "$(node_requests)" "$before"
ok "2: the router's bad_key is sessiond's code for that status" grep -q '\[SD_ERR_BAD_KEY\] = {400, "bad_key"' "$IT_ROOT/src/core/err.c"

K=ABRT0001 KT=$(token ABRT0001)
# --- 4, 5: the node's own checks ---
if [ "$NODE_TABLE" = 1 ]; then
  req POST "/api/save?key=$K" "${CT[@]}" -H "Authorization: Bearer $KT" -d '{"key":"CDRT0001","data":{}}'
  eq "4: URL and body key differ: 400" "$STATUS" 400
  o=$(other "$K")
  ls -la "$CDIR/$o/sessions/AB" >"$IT_TMP/o.before" 2>&1
  req POST "/_node/$o/api/save?key=$K" "${CT[@]}" -H "Authorization: Bearer $KT" -d '{"data":{"x":1}}'
  eq "5: a non-owner answers 421" "$STATUS" 421
  ok "5: ... and wrote nothing" diff <(ls -la "$CDIR/$o/sessions/AB" 2>&1) "$IT_TMP/o.before"
else skip "4"; skip "5"; fi

# --- 6, 7: instantiate ---
if [ "$NODE_TABLE" = 1 ]; then
  miss=0
  for _ in $(seq 1 30); do
    req POST /api/instantiate "${CT[@]}" -d '{"data":{}}'
    k=$(jq -r .key <<<"$BODY")
    [ "$STATUS" = 201 ] && [ "$(owner "$k")" = "$(hdr X-Sessiond-Node)" ] || miss=$((miss + 1))
  done
  eq "6: 30 instantiates, each key in a bucket its node owns" "$miss" 0
  req POST "/api/instantiate?from=$K" "${CT[@]}" -d '{}'
  eq "7: ?from= reaches the owner and copies" "$STATUS $(hdr X-Sessiond-Node)" "201 $(owner "$K")"
else skip "6"; skip "7"; fi

# --- 8: a frozen bucket ---
F=CDRT0001 FT=$(token CDRT0001) FO=$(owner CDRT0001)
"$SESSIONCTL" --data-dir "$CDIR/$FO" bucket freeze CD >/dev/null
req POST "/api/save?key=$F" "${CT[@]}" -H "Authorization: Bearer $FT" -d "{\"key\":\"$F\",\"data\":{\"n\":9}}"
eq "8: a save to a frozen bucket: 503 busy, Retry-After: 1" "$STATUS $(jq -r .error <<<"$BODY") $(hdr Retry-After)" "503 busy 1"
req POST "/api/delete?key=$F" "${CT[@]}" -H "Authorization: Bearer $FT" -d "{\"key\":\"$F\"}"
eq "8: a delete too" "$STATUS" 503
req GET "/api/load?key=$F"
eq "8: a load still answers 200, unchanged" "$STATUS $(jq -c .data <<<"$BODY")" '200 {"n":0}'
"$SESSIONCTL" --data-dir "$CDIR/$FO" bucket thaw CD >/dev/null
req POST "/api/save?key=$F" "${CT[@]}" -H "Authorization: Bearer $FT" -d "{\"key\":\"$F\",\"data\":{\"n\":9}}"
eq "8: thawed, the save works" "$STATUS" 200

# --- 9: the barrier, across processes ---
# A writer's shared lock on the bucket's lock file (what every store write
# takes, here held by flock(1) until we say) must hold the freeze back.
# Without the exclusive lock in sd_bucket_set, the freeze returned at once
# and this test failed (tests/unit/test_bucket.c holds a real save the same way).
LF=$CDIR/$FO/buckets/CD
mkfifo "$IT_TMP/hold"
flock -s "$LF" -c "read -r _ < '$IT_TMP/hold'" & holder=$!
stack_wait 50 bash -c "! flock -n -x '$LF' true"
"$SESSIONCTL" --data-dir "$CDIR/$FO" bucket freeze CD >/dev/null & freezer=$!
sleep 0.5
ok "9: the freeze waits while a write holds the bucket" kill -0 "$freezer"
echo > "$IT_TMP/hold"
wait "$holder"
wait "$freezer"; rc=$?
eq "9: ... and returns once the write is done" "$rc $("$SESSIONCTL" --data-dir "$CDIR/$FO" bucket state CD)" "0 CD frozen"
"$SESSIONCTL" --data-dir "$CDIR/$FO" bucket thaw CD >/dev/null

# --- the contention storm: W workers increment the counters of KEYS ---
storm() { # OUT DEADLINE_S KEYS...: until the deadline or until OUT.stop exists
  local out=$1 until=$(( $(date +%s) + $2 )); shift 2
  rm -f "$out.stop"
  local w
  STORM_PIDS=()
  for w in 1 2 3 4 5 6; do
    (
      local k t r v n code tries=0
      while [ "$(date +%s)" -lt "$until" ] && [ "$tries" -lt 2000 ] && [ ! -e "$out.stop" ]; do
        tries=$((tries + 1))
        k=${*:$((RANDOM % $# + 1)):1}
        t=${TOK[$k]}
        r=$(curl -s --max-time 5 "$BASE/api/load?key=$k") || continue
        v=$(jq -r '.version // empty' <<<"$r" 2>/dev/null) n=$(jq -r '.data.n // empty' <<<"$r" 2>/dev/null)
        [ -n "$v" ] && [ -n "$n" ] || { sleep 0.05; continue; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "${CT[@]}" -H "Authorization: Bearer $t" \
          -d "{\"key\":\"$k\",\"version\":$v,\"data\":{\"n\":$((n + 1))}}" "$BASE/api/save?key=$k")
        case $code in
          200) echo "$k" >> "$out.$w" ;;
          503|421|502) sleep 0.05 ;;
        esac
      done
    ) &
    STORM_PIDS+=($!)
  done
}
lost_of() { # OUT KEYS...: lost acknowledged increments (and phantom ones)
  local out=$1 k acked n lost=0 phantom=0; shift
  for k in "$@"; do
    acked=$(cat "$out".[0-9] 2>/dev/null | grep -c "^$k\$")
    n=$(curl -s "$BASE/api/load?key=$k" | jq -r .data.n)
    [ "$n" -lt "$acked" ] && lost=$((lost + acked - n))
    [ "$n" -gt "$acked" ] && phantom=$((phantom + n - acked))
  done
  echo "$lost $phantom $(cat "$out".[0-9] 2>/dev/null | wc -l)"
}
declare -A TOK
storm_keys() { local b=$1 i; for i in 1 2 3 4 5; do echo "${b}CT000$i"; done; }

# --- 10: a move under the storm, with and without the freeze ---
move_storm() { # BUCKET FROM TO [--skip-freeze] -> "lost phantom acked" in MS_RESULT, move log in $IT_TMP/move.$1
  local b=$1 from=$2 to=$3 flag=${4:-} keys k
  mapfile -t keys < <(storm_keys "$b")
  put "${keys[@]}"
  for k in "${keys[@]}"; do TOK[$k]=$(token "$k"); done
  # The storm runs from before the move to just after it (bounded: 60 s).
  storm "$IT_TMP/acks.$b" 60 "${keys[@]}"
  stack_wait 150 bash -c "[ \$(cat '$IT_TMP/acks.$b'.[0-9] 2>/dev/null | wc -l) -ge 10 ]"
  "$IT_ROOT/scripts/move-bucket" --dir "$CDIR" $flag "$b" "$from" "$to" > "$IT_TMP/move.$b" 2>&1
  MS_RC=$?
  sleep 0.5
  touch "$IT_TMP/acks.$b.stop"
  wait "${STORM_PIDS[@]}"
  MS_RESULT=$(lost_of "$IT_TMP/acks.$b" "${keys[@]}")
}
EF_TO=$(other EF)
move_storm EF "$(owner EF)" "$EF_TO"
read -r lost phantom acked <<<"$MS_RESULT"
echo "10: with the freeze: $acked acknowledged increments, $lost lost, $phantom phantom; $(grep -h 'paused' "$IT_TMP/move.EF")"
eq "10: the move succeeded" "$MS_RC" 0
ok "10: the storm really ran ($acked acknowledged)" test "$acked" -ge 10
eq "10: with the freeze, 0 lost updates" "$lost $phantom" "0 0"
ok "10: the table names the new owner" grep -q "^EF $EF_TO owned" "$TABLE"
ok "10: the old owner set its copy aside" bash -c "ls -d '$CDIR'/*/moved/EF.* >/dev/null"

# --- 16: the move above regenerated the router's configuration ---
# Before the settings were kept in run/router.settings, move-bucket rendered
# nginx's defaults: 2 workers, 1m, no access log, no CORS origin (the two
# cmp checks and the CORS header failed so).
ok "16: the started router had the settings" grep -q "worker_processes 3;" "$IT_TMP/router.conf.start"
ok "16: after a move, the router's configuration is the one it started with (workers, body size, access log)" \
  cmp -s "$RUN/router.conf" "$IT_TMP/router.conf.start"
ok "16: ... and its CORS map too" cmp -s "$RUN/sessiond-cors.conf" "$IT_TMP/cors.conf.start"
req GET /api/load -H "Origin: $APP" -A check-16-after-move
eq "16: after the move, the router's own 400 has CORS for the origin the cluster started with" \
  "$STATUS $(hdr Access-Control-Allow-Origin)" "400 $APP"
ok "16: ... and nginx still writes the access log" stack_wait 20 grep -q '"check-16-after-move"' "$RUN/access.log"
move_storm GH "$(owner GH)" "$(other GH)" --skip-freeze
read -r lost phantom acked <<<"$MS_RESULT"
echo "10: --skip-freeze: $acked acknowledged increments, $lost lost"
# The test shows the loss the freeze prevents: saves acknowledged by the
# old owner between the final copy and the switch are not on the new one.
ok "10: the same move with --skip-freeze loses acknowledged updates" test "$lost" -gt 0

# --- 12: the abort path ---
A=KLRT0001 AT=$(token KLRT0001) AO=$(owner KLRT0001)
gen=$(awk '$1 == "generation" { print $2 }' "$TABLE")
MOVE_BUCKET_FAIL_AT=final-copy "$IT_ROOT/scripts/move-bucket" --dir "$CDIR" KL "$AO" "$(other KL)" > "$IT_TMP/move.KL" 2>&1
eq "12: a failed final copy aborts the move (exit 1)" "$?" 1
eq "12: the table is unchanged" "$(owner KL) $(awk '$1 == "generation" { print $2 }' "$TABLE")" "$AO $gen"
eq "12: the old owner thawed" "$("$SESSIONCTL" --data-dir "$CDIR/$AO" bucket state KL)" "KL open"
req POST "/api/save?key=$A" "${CT[@]}" -H "Authorization: Bearer $AT" -d "{\"key\":\"$A\",\"data\":{\"n\":5}}"
eq "12: the old owner serves writes" "$STATUS" 200

# --- 12b: a new router map that nginx refuses aborts before the switch ---
# A node address that shard-map's syntax check lets through but nginx
# refuses (port 99999: "invalid port in upstream"), put in the table by
# hand as a typo would be; the move carries it into the new table. When
# move-bucket ran nginx -t only in the reload after writing the new table,
# this move exited 1 with the table already switched (ST on its new owner,
# generation up, the router never told) and ST still frozen on the old owner.
S=STRT0001 SO=$(owner STRT0001) STO=$(other STRT0001)
ST_T=$(token "$S")
cp "$TABLE" "$IT_TMP/table.good"
sed -i "s|^node $STO .*|node $STO 127.0.0.1:99999|" "$TABLE"
cp "$TABLE" "$IT_TMP/table.bad"
"$IT_ROOT/scripts/move-bucket" --dir "$CDIR" ST "$SO" "$STO" > "$IT_TMP/move.ST" 2>&1
eq "12b: a new router map nginx refuses aborts the move (exit 1)" "$?" 1
ok "12b: ... and says so" grep -q "router map does not check" "$IT_TMP/move.ST"
ok "12b: the table is unchanged, byte for byte" cmp -s "$TABLE" "$IT_TMP/table.bad"
ok "12b: no new table left beside it" test ! -e "$TABLE.new"
eq "12b: the old owner thawed" "$("$SESSIONCTL" --data-dir "$CDIR/$SO" bucket state ST)" "ST open"
cp "$IT_TMP/table.good" "$TABLE"
req POST "/api/save?key=$S" "${CT[@]}" -H "Authorization: Bearer $ST_T" -d "{\"key\":\"$S\",\"data\":{\"n\":5}}"
eq "12b: the old owner serves writes" "$STATUS" 200

# --- 11 and 15: one move; a delete before it, a token from before it ---
D=MNRT0002
put "$D"
DT=$(token "$D") T=MNRT0001 TT=$(token MNRT0001) TO_=$(other MNRT0001)
req POST "/api/delete?key=$D" "${CT[@]}" -H "Authorization: Bearer $DT" -d "{\"key\":\"$D\"}"
eq "11: deleted" "$STATUS" 200
"$IT_ROOT/scripts/move-bucket" --dir "$CDIR" MN "$(owner MN)" "$TO_" > "$IT_TMP/move.MN" 2>&1
eq "11/15: the move succeeded" "$? $(owner MN)" "0 $TO_"
req GET "/api/load?key=$D"
eq "11: after the move the deleted session is still gone" "$STATUS" 404
req POST "/api/save?key=$T" "${CT[@]}" -H "Authorization: Bearer $TT" -d "{\"key\":\"$T\",\"data\":{\"n\":7}}"
eq "15: a token from the old node verifies on the new one" "$STATUS" 200

# --- 14: a router reload during a storm ---
mapfile -t keys < <(storm_keys OP)
put "${keys[@]}"
for k in "${keys[@]}"; do TOK[$k]=$(token "$k"); done
storm "$IT_TMP/acks.OP" 30 "${keys[@]}"
for _ in 1 2 3; do sleep 0.8; CLUSTER_DIR=$CDIR cluster_reload || echo "reload failed"; done
sleep 0.5
touch "$IT_TMP/acks.OP.stop"
wait "${STORM_PIDS[@]}"
read -r lost phantom acked <<<"$(lost_of "$IT_TMP/acks.OP" "${keys[@]}")"
eq "14: 3 router reloads under a storm ($acked acknowledged): 0 lost" "$lost $phantom" "0 0"

# --- 13: a node down (last: it stops one) ---
N=QRRT0001 NO=$(owner QRRT0001)
kill -KILL "$(cluster_node_pid "$NO")"
sleep 0.2
req GET "/api/load?key=$N"
eq "13: a down node's keys: 503 busy with Retry-After" "$STATUS $(jq -r .error <<<"$BODY") $(hdr Retry-After)" "503 busy 1"
fails=0
for _ in $(seq 1 12); do req POST /api/instantiate "${CT[@]}" -d '{"data":{}}'; [ "$STATUS" = 201 ] || fails=$((fails + 1)); done
eq "13: instantiate keeps working on the others (12 of 12 201)" "$fails" 0

it_done
