#!/usr/bin/env bash
# The node's URL contract through the real nginx (issue 13):
# - single node: keys in the URL (load/save/delete ?key=, instantiate
#   ?from=), strict query strings (KEY=, Key=, duplicates, extras: 400
#   bad_key), URL and body key differing (400 bad_key, nothing written), a
#   body key still accepted and counted in sessiond_saves_without_url_key_total;
# - with --shard-table and --node-id: 421 misdirected for another node's
#   bucket with nothing read or written, a frozen bucket refusing writes
#   (503 busy, Retry-After: 1) and serving loads, new keys only in owned and
#   unfrozen buckets, X-Sessiond-Node on every answer, "node" in health,
#   SIGHUP reloading a new generation (and keeping the old table when the
#   new one is bad), a bad table at start exiting 2;
# - secret rotation: a token made under the previous secret verifies while
#   --previous-secret-file holds it, and no longer once that file is gone
#   and sessiond reloaded.
# The load generator's requests are checked to use the URL form too, and
# it is run through a table switch that sends its hot key elsewhere and
# back: it must retry the 421s, count them on its refused: line, and pass.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
post() { local p=$1 b=$2; shift 2; req POST "$p" -H 'Content-Type: application/json' -d "$b" "$@"; }
j() { printf '%s' "$BODY" | jq -r "$1"; }
file() { printf '%s/sessions/%s/%s.json' "$DATA" "${1:0:2}" "$1"; }
sum() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
metric() { req GET /api/metrics; printf '%s\n' "$BODY" | awk -v m="$1" '$1 == m {print $2}'; }
ALPHA=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789

# ---- single node ------------------------------------------------------------
it_setup --threads 4
post /api/instantiate '{"data":{"n":1}}'; K=$(j .key); T=$(j .token)
eq "instantiate: Location names the key in the URL" "$(hdr Location)" "/api/load?key=$K"
ok "no X-Sessiond-Node without a node id" [ -z "$(hdr X-Sessiond-Node)" ]
BEARER=(-H "Authorization: Bearer $T")
req GET "/api/load?key=$K"
eq "load ?key=" "$STATUS $(j .data.n)" "200 1"
req GET "/api/load?key=${K,,}"
eq "load ?key= in lower case" "$STATUS" 200
post "/api/save?key=$K" '{"data":{"n":2}}' "${BEARER[@]}"
eq "save ?key= without a body key" "$STATUS $(j .version)" "200 2"
eq "a URL-keyed save is not counted" "$(metric sessiond_saves_without_url_key_total)" 0
post "/api/save?key=$K" "{\"key\":\"${K,,}\",\"data\":{\"n\":3}}" "${BEARER[@]}"
eq "save with the same key in URL and body" "$STATUS $(j .version)" "200 3"
post /api/save "{\"key\":\"$K\",\"data\":{\"n\":4}}" "${BEARER[@]}"
eq "save with the key only in the body still works" "$STATUS $(j .version)" "200 4"
eq "... and is counted" "$(metric sessiond_saves_without_url_key_total)" 1
before=$(sum "$(file "$K")")
for q in "KEY=$K" "Key=$K" "key=$K&key=$K" "key=$K&KEY=ZZZZZZZZ" "KEY=ZZZZZZZZ&key=$K" "key=$K&x=1" \
         "x=1&key=$K" "key=$K&" "key=${K:0:7}"; do
  req GET "/api/load?$q"
  eq "load ?$q: 400 bad_key" "$STATUS $(j .error)" "400 bad_key"
  post "/api/save?$q" '{"data":{"n":9}}' "${BEARER[@]}"
  eq "save ?$q: 400 bad_key" "$STATUS $(j .error)" "400 bad_key"
  req POST "/api/delete?$q" "${BEARER[@]}"
  eq "delete ?$q: 400 bad_key" "$STATUS $(j .error)" "400 bad_key"
done
post "/api/instantiate?FROM=$K" ''
eq "instantiate ?FROM=: 400 bad_key" "$STATUS $(j .error)" "400 bad_key"
post "/api/save?key=$K" '{"key":"ZZZZZZZZ","data":{"n":9}}' "${BEARER[@]}"
eq "save: URL and body keys differ: 400 bad_key" "$STATUS $(j .error)" "400 bad_key"
post "/api/delete?key=$K" '{"key":"ZZZZZZZZ"}' "${BEARER[@]}"
eq "delete: URL and body keys differ: 400 bad_key" "$STATUS $(j .error)" "400 bad_key"
post "/api/instantiate?from=$K" '{"from":"ZZZZZZZZ"}'
eq "instantiate: URL and body from differ: 400 bad_key" "$STATUS $(j .error)" "400 bad_key"
eq "refused requests left the session as it was" "$(sum "$(file "$K")")" "$before"
req POST "/api/instantiate?from=$K"
eq "instantiate ?from= (no body) copies" "$STATUS" 201
C=$(j .key)
req GET "/api/load?key=$C"
eq "the copy holds the data" "$(j .data.n)" 4
req POST "/api/delete?key=$K" "${BEARER[@]}"
eq "delete ?key= with no body" "$STATUS $(j .deleted)" "200 true"
ok "the file is gone" [ ! -e "$(file "$K")" ]
req GET /api/health
eq "health without a node id has no node" "$(j '.node // "none"')" none
# The load generator speaks the URL form: its saves and deletes leave the counter alone.
timeout 60 "$LOADGEN" --url "$BASE" --quiet --json "$IT_TMP/lg.json" --scenario mixed --users 4 --duration 1s
eq "loadgen: saves and deletes made, all answered as expected" \
  "$(jq -r '[(.status.save["200"] > 0), (.unexpected_status + .http_5xx + .transport_errors)] | @tsv' "$IT_TMP/lg.json")" \
  "$(printf 'true\t0')"
eq "loadgen: no save without a URL key" "$(metric sessiond_saves_without_url_key_total)" 1
stack_stop

# ---- a node in a shard table ------------------------------------------------
# n1 owns the buckets of even index (AA, AC, ...), n2 the odd ones; AC is
# frozen.
table() { # GENERATION FROZEN-BUCKET [SWAPPED-BUCKET] > file (SWAPPED: to the other node)
  awk -v g="$1" -v fz="$2" -v sw="${3:-none}" -v a="$ALPHA" 'BEGIN {
    printf "generation %s\nnode n1 127.0.0.1:9001\nnode n2 unix:/run/n2.sock\n", g
    for (i = 0; i < 1296; i++) {
      b = substr(a, int(i / 36) + 1, 1) substr(a, i % 36 + 1, 1)
      printf "%s n%d %s\n", b, b == sw ? 2 - i % 2 : i % 2 + 1, b == fz ? "frozen" : "owned"
    } }'
}
TDIR=$(mktemp -d /tmp/sessiond-urlkey.XXXXXX)
TABLE=$TDIR/shard.table PREV=$TDIR/secret.previous
table 1 AC > "$TABLE"
it_setup --threads 4 --shard-table "$TABLE" --node-id n1 --previous-secret-file "$PREV"
SD_PID=${STACK_PIDS[0]}
req GET /api/health
eq "health names the node and the table generation" "$(j '"\(.node) \(.shard_table.generation) \(.shard_table.buckets_owned) \(.shard_table.buckets_frozen)"')" "n1 1 648 1"
eq "X-Sessiond-Node on health" "$(hdr X-Sessiond-Node)" n1
home=0
for _ in $(seq 1 20); do
  post /api/instantiate '{"data":{"n":1}}'
  k=$(j .key) c0=${ALPHA%%"${k:0:1}"*} c1=${ALPHA%%"${k:1:1}"*} b=$((${#c0} * 36 + ${#c1}))
  [ "$STATUS" = 201 ] && [ $((b % 2)) = 0 ] && [ "${k:0:2}" != AC ] && home=$((home + 1))
done
eq "20 new keys, all in buckets n1 owns and that are not frozen" "$home" 20
K=$k T=$(j .token)
# Sessions sitting in other buckets, as left behind by a move: one in n2's
# AB, one in n1's frozen AC (copies of K's file with the key changed).
for x in AB123456 AC123456; do
  mkdir -p "$DATA/sessions/${x:0:2}"
  jq --indent 2 --arg k "$x" '.key = $k' "$(file "$K")" > "$(file "$x")"
done
auth AB123456; AB_AUTH=("${AUTH[@]}")
before=$(sum "$(file AB123456)")
req GET /api/load?key=AB123456
eq "load of n2's bucket: 421 misdirected, though the file is here" "$STATUS $(j .error)" "421 misdirected"
eq "the 421 names the node" "$(hdr X-Sessiond-Node)" n1
req GET /api/load?key=ab999999
eq "load of n2's bucket in lower case: 421" "$STATUS" 421
post /api/save?key=AB123456 '{"data":{"n":9}}' "${AB_AUTH[@]}"
eq "save of n2's bucket: 421" "$STATUS $(j .error)" "421 misdirected"
post /api/save?key=AB999999 '{"data":{"n":9}}' "${AB_AUTH[@]}"
eq "save of a new key in n2's bucket: 421" "$STATUS" 421
req POST /api/delete?key=AB123456 "${AB_AUTH[@]}"
eq "delete of n2's bucket: 421" "$STATUS" 421
req POST /api/instantiate?from=AB123456
eq "copy from n2's bucket: 421" "$STATUS" 421
eq "nothing written in n2's bucket" "$(sum "$(file AB123456)") $(ls "$DATA/sessions/AB" | wc -l)" "$before 1"
eq "misdirected counted" "$(metric sessiond_misdirected_total)" 6
eq "the miss limit's counter did not move" "$(metric sessiond_misses_total)" 0
auth AC123456
before=$(sum "$(file AC123456)")
post /api/save?key=AC123456 '{"data":{"n":9}}' "${AUTH[@]}"
eq "save in frozen AC: 503 busy" "$STATUS $(j .error)" "503 busy"
eq "... with Retry-After: 1" "$(hdr Retry-After)" 1
ok "... saying it is frozen" grep -q frozen <<<"$(j .message)"
req POST /api/delete?key=AC123456 "${AUTH[@]}"
eq "delete in frozen AC: 503 busy" "$STATUS $(j .error)" "503 busy"
eq "nothing written in AC" "$(sum "$(file AC123456)")" "$before"
req GET /api/load?key=AC123456
eq "load in frozen AC: 200" "$STATUS" 200
req POST /api/instantiate?from=AC123456
eq "copy from frozen AC (a read): 201" "$STATUS" 201
ok "... not into AC" [ "$(j .key | cut -c1-2)" != AC ]
eq "frozen rejections counted" "$(metric sessiond_frozen_rejections_total)" 2
eq "generation gauge" "$(metric sessiond_shard_table_generation)" 1

# SIGHUP: generation 2 thaws AC; a bad table afterwards is refused and kept out.
table 2 none > "$TABLE.new" && mv "$TABLE.new" "$TABLE"
kill -HUP "$SD_PID"
stack_wait 50 sh -c "curl -s $BASE/api/health | jq -e '.shard_table.generation == 2'"
req GET /api/health
eq "SIGHUP: the new generation is in use" "$(j .shard_table.generation) $(j .shard_table.buckets_frozen)" "2 0"
post /api/save?key=AC123456 '{"data":{"n":9}}' "${AUTH[@]}"
eq "thawed AC takes the save" "$STATUS" 200
printf 'generation 3\nnode n1 h:1\nAA n1 owned\n' > "$TABLE"
kill -HUP "$SD_PID"
stack_wait 50 grep -q "reload failed" "$RUN/sessiond.log"
ok "a bad table on SIGHUP is logged" grep -q "bucket AB is not listed" "$RUN/sessiond.log"
req GET /api/health
eq "... and the old table stays" "$STATUS $(j .shard_table.generation)" "200 2"

# Rotation: the secret in use becomes the previous one, a new one current.
req GET /api/health; OLD_ID=$(j .key_id)
mv "$DATA/secret" "$PREV"
(umask 077; head -c 32 /dev/urandom > "$DATA/secret")
table 4 none > "$TABLE"
kill -HUP "$SD_PID"
stack_wait 50 sh -c "curl -s $BASE/api/health | jq -e '.previous_key_id != null'"
req GET /api/health
eq "health shows the previous key id" "$(j .previous_key_id)" "$OLD_ID"
ok "... and a new current one" [ "$(j .key_id)" != "$OLD_ID" ]
ok "the secret itself is in neither health nor metrics" bash -c \
  "! { curl -s $BASE/api/health; curl -s $BASE/api/metrics; } | grep -qi \"\$(xxd -p -c 64 '$DATA/secret')\""
post "/api/save?key=$K" '{"data":{"n":5}}' -H "Authorization: Bearer $T"
eq "a token made under the previous secret still verifies" "$STATUS" 200
post /api/instantiate '{}'; N=$(j .key); NT=$(j .token)
auth "$N"
eq "new tokens come from the current secret" "${AUTH[1]}" "Authorization: Bearer $NT"
rm "$PREV"
kill -HUP "$SD_PID"
stack_wait 50 sh -c "curl -s $BASE/api/health | jq -e '.previous_key_id == null'"
post "/api/save?key=$K" '{"data":{"n":6}}' -H "Authorization: Bearer $T"
eq "after the window closes the old token is refused" "$STATUS $(j .error)" "401 unauthorized"
auth "$K"
post "/api/save?key=$K" '{"data":{"n":6}}' "${AUTH[@]}"
eq "the current secret's token works" "$STATUS" 200

# ---- the load generator through a table switch: 421, then served again ----
# A client behind a router still on the old map during a move reaches a
# node that no longer owns the key's bucket and gets 421 misdirected. Here
# the node itself is switched: 4 users increment one hot key (in a bucket
# n1 owns) for 8 s; once its session is on disk, generation 5 gives its
# bucket to n2 (SIGHUP), and 1.5 s later generation 6 gives it back. Every
# request to that key in between is a 421 that changed nothing: loadgen
# must retry it (20 ms later), count it on its `refused:` line, and end
# PASS with every acknowledged increment stored. Seen failing with the
# retry taken out (refused_retry in src/loadgen/scenario.c returning 0):
# the run stopped after 0.4 s on --max-errors, exit status 1, "result:
# FAIL", 1003 answers 421 counted as other unexpected status, the hot key
# left unverified, no "refused:" line (5 checks failed).
mis0=$(metric sessiond_misdirected_total)
hot_run switch
table 5 none "${HOT:0:2}" > "$TABLE.new" && mv "$TABLE.new" "$TABLE"
kill -HUP "$SD_PID"
stack_wait 50 sh -c "curl -s $BASE/api/health | jq -e '.shard_table.generation == 5'"
req GET "/api/load?key=$HOT"
eq "switch: generation 5 sends the hot key elsewhere" "$STATUS $(j .error)" "421 misdirected"
sleep 1.5
table 6 none > "$TABLE.new" && mv "$TABLE.new" "$TABLE"
kill -HUP "$SD_PID"
stack_wait 50 sh -c "curl -s $BASE/api/health | jq -e '.shard_table.generation == 6'"
wait "$HOT_PID"; lg_rc=$?
cat "$IT_TMP/switch.out"
lg() { jq -r "$1" "$IT_TMP/switch.json" 2>/dev/null; }
eq "switch: loadgen exit status 0, PASS" "$lg_rc $(grep '^result:' "$IT_TMP/switch.out")" "0 result: PASS"
eq "switch: nothing lost, wrong or failed" \
  "$(lg '[.lost_updates, .mismatches, .transport_errors, .http_5xx, .unexpected_status, .unverified, .verify_errors] | add')" 0
busy=$(lg .busy)
ok "switch: 421s were retried" [ "${busy:-0}" -gt 0 ]
ok "switch: the refused: line gives the same count" grep -q "^refused: $busy answers 503 busy or 421" "$IT_TMP/switch.out"
# all of them fell in the run phase, so loadgen saw each 421 the node gave
# it (the one more is this script's own load above)
eq "switch: sessiond's 421s are loadgen's refused plus this script's one" \
  "$(( $(metric sessiond_misdirected_total) - mis0 ))" "$((busy + 1))"
req GET "/api/load?key=$HOT"
eq "switch: the hot key's counter is its acknowledged increments" \
  "$STATUS $(j .data.counter)" "200 $(lg '.counters[0].acknowledged')"
ok "switch: increments acknowledged around the switch" [ "$(lg .acknowledged)" -gt 0 ]
stack_stop

# ---- refusals at start: exit 2 --------------------------------------------
start_rc() { "$SESSIOND" --listen "unix:$TDIR/x.sock" --data-dir "$TDIR/d" "$@" >"$TDIR/out" 2>&1; echo $?; }
printf 'generation 1\nnode n1 h:1\nAA n1 owned\n' > "$TDIR/bad.table"
eq "a table missing buckets: exit 2" "$(start_rc --shard-table "$TDIR/bad.table" --node-id n1)" 2
ok "... naming the first missing bucket" grep -q "bucket AB is not listed" "$TDIR/out"
eq "a node the table does not declare: exit 2" "$(start_rc --shard-table "$TABLE" --node-id n3)" 2
eq "no such table file: exit 2" "$(start_rc --shard-table "$TDIR/none" --node-id n1)" 2
eq "--shard-table without --node-id: exit 2" "$(start_rc --shard-table "$TABLE")" 2
rm -rf "$TDIR"
it_done
