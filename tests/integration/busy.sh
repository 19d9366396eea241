#!/usr/bin/env bash
# Lock timeouts and an absent backend, through nginx. Another process (here
# flock(1), as a second sessiond or sessionctl would) holds a session's lock
# past --lock-timeout: the save answers 503 busy with Retry-After, writes
# nothing, is counted in the metrics and logged with the key; loads are not
# blocked by the lock. Then with sessiond gone, nginx answers 502
# unavailable as JSON (conf/sessiond-edge-errors.conf).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup --threads 4 --lock-timeout 300ms
CT=(-H 'Content-Type: application/json')
req POST /api/instantiate "${CT[@]}" -d '{"data":{"n":1}}'
K=$(printf '%s' "$BODY" | jq -r .key)
AUTH=(-H "Authorization: Bearer $(printf '%s' "$BODY" | jq -r .token)")
F=$DATA/sessions/${K:0:2}/$K.json
cp "$F" "$IT_TMP/before.json"

flock -x "$F" sleep 3 &
holder=$!
sleep 0.3
req POST /api/save "${CT[@]}" "${AUTH[@]}" -d "{\"key\":\"$K\",\"data\":{\"n\":2}}"
eq "save while another process holds the lock: 503" "$STATUS" 503
ok "error busy, as JSON" jq -e '.error == "busy"' "$IT_TMP/body"
eq "Retry-After header" "$(hdr Retry-After)" 1
ok "nothing written" cmp -s "$F" "$IT_TMP/before.json"
req GET "/api/load?key=$K"
ok "loads take no lock: 200 while it is held" [ "$STATUS" = 200 ]
wait "$holder"
req POST /api/save "${CT[@]}" "${AUTH[@]}" -d "{\"key\":\"$K\",\"data\":{\"n\":2}}"
eq "once released, the save goes through" "$STATUS" 200
req GET /api/metrics
ok "lock timeout counted" grep -q '^sessiond_lock_timeouts_total 1$' "$IT_TMP/body"
ok "lock wait observed in the histogram" grep -q '^sessiond_lock_wait_seconds_count{} [1-9]' "$IT_TMP/body"
ok "lock timeout logged at warn with the key" grep -q "warn sessiond: lock timeout on session $K" "$RUN/sessiond.log"

kill -TERM "${STACK_PIDS[0]}"; wait "${STACK_PIDS[0]}" 2>/dev/null
req GET "/api/load?key=$K"
eq "sessiond down: nginx answers 502" "$STATUS" 502
ok "as JSON unavailable" file_json "$IT_TMP/body" '.error == "unavailable"'
ok "with Retry-After" has_header 'Retry-After: 1'
it_done
