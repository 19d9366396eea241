#!/usr/bin/env bash
# Every endpoint and every error of the HTTP API, through a real nginx in
# front of sessiond. Bad input must answer a JSON error and write nothing.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
STACK_MAX_BODY=64k
it_setup --threads 8 --cors-origin http://app.example --max-body 64k

json() { printf '%s' "$BODY" | jq -e "$1" >/dev/null 2>&1; }
# Bytes of every session file, to prove bad input changed nothing.
snapshot() { find "$DATA/sessions" -type f -printf '%P %s %T@\n' 2>/dev/null | sort | md5sum; }
is_error() { # STATUS CODE
  [ "$STATUS" = "$1" ] && json ".error == \"$2\" and (.message | type == \"string\" and length > 0)" &&
    [ "$(hdr Content-Type)" = application/json ] && [ "$(hdr Cache-Control)" = no-store ]
}
CT=(-H 'Content-Type: application/json')
# Each section makes its own session, so none depends on the ones before.
# fresh [BODY]: instantiate (with BODY as JSON); sets SK (key), SA (curl
# arguments carrying its write token).
fresh() {
  if [ $# -gt 0 ]; then req POST /api/instantiate "${CT[@]}" -d "$1"; else req POST /api/instantiate; fi
  [ "$STATUS" = 201 ] || { echo "FAIL fresh: instantiate answered $STATUS" >&2; return 1; }
  SK=$(printf '%s' "$BODY" | jq -r .key)
  SA=(-H "Authorization: Bearer $(printf '%s' "$BODY" | jq -r .token)")
}
ANN='{"data":{"n":1,"list":[1,2]},"meta":{"owner":"ann"}}'

# --- instantiate ---
req POST /api/instantiate
ok "instantiate with empty body: 201" [ "$STATUS" = 201 ]
ok "instantiate answers key, version 1, created, updated" json '(.key|test("^[A-Z0-9]{8}$")) and .version == 1 and (.created|type=="string") and .created == .updated'
K=$(printf '%s' "$BODY" | jq -r .key)
eq "Location header" "$(hdr Location)" "/api/load?key=$K"
eq "ETag header" "$(hdr ETag)" '"1"'
eq "Content-Type json" "$(hdr Content-Type)" application/json
eq "Cache-Control no-store" "$(hdr Cache-Control)" no-store
F=$DATA/sessions/${K:0:2}/$K.json
ok "file at sessions/XX/KEY.json" test -f "$F"
ok "file is the canonical document" canonical "$F" ".key == \"$K\" and .version == 1 and .meta == {} and .data == {}"

req POST /api/instantiate "${CT[@]}" -d '{}'
ok "instantiate {}: 201" [ "$STATUS" = 201 ]
req POST /api/instantiate "${CT[@]}" -d '{"data":{"n":1,"list":[1,2]},"meta":{"owner":"ann"}}'
K2=$(printf '%s' "$BODY" | jq -r .key)
req GET "/api/load?key=$K2"
ok "instantiate with data and meta stores both" json '.data == {"n":1,"list":[1,2]} and .meta == {"owner":"ann"} and .version == 1'
req POST /api/instantiate -H 'Content-Type: text/plain;charset=UTF-8' -d "{\"from\":\"${K2,,}\"}"
ok "instantiate from KEY (text/plain, lower-case key): 201" [ "$STATUS" = 201 ]
K3=$(printf '%s' "$BODY" | jq -r .key)
req GET "/api/load?key=$K3"
ok "copy has the source's data and meta, version 1" json '.data == {"n":1,"list":[1,2]} and .meta == {"owner":"ann"} and .version == 1'
ok "copy has its own key" [ "$K3" != "$K2" ]
before=$(snapshot)
req POST /api/instantiate "${CT[@]}" -d '{"from":"ZZZZZZZZ"}'
ok "instantiate from unknown key: 404 not_found" is_error 404 not_found
req POST /api/instantiate "${CT[@]}" -d '{"from":"../etc/x"}'
ok "instantiate from a bad key: 400 bad_key" is_error 400 bad_key
req POST /api/instantiate "${CT[@]}" -d '{"meta":[1]}'
ok "instantiate with non-object meta: 400 bad_request" is_error 400 bad_request
req POST /api/instantiate "${CT[@]}" -d '{"colour":"red"}'
ok "instantiate with an unknown field: 400 bad_request" is_error 400 bad_request
req POST /api/instantiate "${CT[@]}" -d '{"data":'
ok "instantiate with broken JSON: 400 bad_json" is_error 400 bad_json
eq "failed instantiates wrote nothing" "$(snapshot)" "$before"

# --- load ---
fresh "$ANN"; KL=$SK
req GET "/api/load?key=$KL"
ok "load: 200" [ "$STATUS" = 200 ]
eq "load ETag" "$(hdr ETag)" '"1"'
req GET "/api/load?key=${KL,,}"
ok "load accepts a lower-case key" [ "$STATUS" = 200 ]
req GET "/api/load?key=$KL" -H 'If-None-Match: "1"'
ok "If-None-Match matching: 304 with no body" answered_empty 304
req GET "/api/load?key=$KL" -H 'If-None-Match: "7", W/"1"'
ok "If-None-Match list with a weak match: 304" [ "$STATUS" = 304 ]
req GET "/api/load?key=$KL" -H 'If-None-Match: "2"'
ok "If-None-Match not matching: 200" [ "$STATUS" = 200 ]
req GET "/api/load?key=QQQQQQQQ"
ok "load unknown key: 404 not_found" is_error 404 not_found
for bad in "" "key=" "key=ABC" "key=ABCDEFGHI" "key=../../etc" "key=%2e%2e%2fABCD" "key=ABCD%00EF" "key=AB/CDEFG" "key=%C3%A9BCDEFG" "other=$KL"; do
  req GET "/api/load?$bad"
  ok "load ?$bad: 400 bad_key" is_error 400 bad_key
done
req HEAD "/api/load?key=$KL"
ok "HEAD load: 200" [ "$STATUS" = 200 ]

# --- save ---
fresh "$ANN"; KS=$SK AS=("${SA[@]}")
req POST /api/save "${AS[@]}" "${CT[@]}" -d "{\"key\":\"$KS\",\"version\":1,\"data\":{\"n\":2},\"meta\":{\"owner\":null,\"tags\":{\"a\":1}}}"
ok "conditional save: 200" [ "$STATUS" = 200 ]
ok "save answers key, version 2, updated" json ".key == \"$KS\" and .version == 2 and (.updated|type==\"string\")"
eq "save ETag" "$(hdr ETag)" '"2"'
req GET "/api/load?key=$KS"
ok "data replaced, meta merged (null deletes)" json '.data == {"n":2} and .meta == {"tags":{"a":1}} and .version == 2'
req POST /api/save "${AS[@]}" "${CT[@]}" -d "{\"key\":\"$KS\",\"meta\":{\"tags\":{\"b\":2}}}"
req GET "/api/load?key=$KS"
ok "save without data keeps data; meta merge is recursive" json '.data == {"n":2} and .meta == {"tags":{"a":1,"b":2}} and .version == 3'
ok "created is kept, updated moves" json '.created < .updated'
req POST /api/save "${AS[@]}" -H 'Content-Type: text/plain' -H 'If-Match: "3"' -d "{\"key\":\"$KS\",\"data\":[]}"
ok "If-Match matching (text/plain, as sendBeacon): 200" [ "$STATUS" = 200 ]
req POST /api/save "${AS[@]}" -H 'Content-Type: text/plain' -H 'If-Match: *' -d "{\"key\":\"$KS\",\"data\":[1]}"
ok "If-Match *: 200" [ "$STATUS" = 200 ]
before=$(snapshot)
req POST /api/save "${AS[@]}" "${CT[@]}" -d "{\"key\":\"$KS\",\"version\":1,\"data\":\"stale\"}"
ok "stale body version: 409 conflict" is_error 409 conflict
ok "409 carries version and the current document" json '.version == 5 and .current.version == 5 and .current.data == [1]'
req POST /api/save "${AS[@]}" "${CT[@]}" -H 'If-Match: "2"' -d "{\"key\":\"$KS\",\"data\":\"stale\"}"
ok "stale If-Match: 412 precondition_failed" is_error 412 precondition_failed
ok "412 carries version and the current document" json '.version == 5 and .current.key == "'"$KS"'"'
req POST /api/save "${AS[@]}" "${CT[@]}" -H 'If-Match: W/"5"' -d "{\"key\":\"$KS\",\"data\":\"weak\"}"
ok "weak If-Match never matches: 412" is_error 412 precondition_failed
req POST /api/save "${CT[@]}" -d '{"key":"NOSUCHKY","data":1}'
ok "save unknown key without a token: 401, as for a known key (no oracle)" is_error 401 unauthorized
req POST /api/save "${CT[@]}"
ok "empty save body: 400 bad_request" is_error 400 bad_request
req POST /api/save "${AS[@]}" "${CT[@]}" -d '{"key":"'"$KS"'", "data": [1,2'
ok "broken JSON: 400 bad_json" is_error 400 bad_json
ok "bad_json names line and column" json '.message | test("line 1, column [0-9]+")'
req POST /api/save "${AS[@]}" "${CT[@]}" -d $'{\n  "key": "'"$KS"$'",\n  "data": nope\n}'
ok "bad_json on line 3" json '.message | test("line 3")'
req POST /api/save "${CT[@]}" -d '[1,2]'
ok "body not an object: 400 bad_request" is_error 400 bad_request
req POST /api/save "${CT[@]}" -d '"text"'
ok "body a string: 400 bad_request" is_error 400 bad_request
req POST /api/save "${AS[@]}" "${CT[@]}" -d "{\"key\":\"$KS\",\"meta\":\"x\"}"
ok "non-object meta: 400 bad_request" is_error 400 bad_request
for v in '1.5' '"5"' 'true' '0' '-3' 'null'; do
  req POST /api/save "${AS[@]}" "${CT[@]}" -d "{\"key\":\"$KS\",\"version\":$v}"
  ok "version $v: 400 bad_request" is_error 400 bad_request
done
req POST /api/save "${AS[@]}" "${CT[@]}" -d "{\"key\":\"$KS\",\"dta\":1}"
ok "unknown field: 400 bad_request" is_error 400 bad_request
req POST /api/save "${CT[@]}" -d '{"data":1}'
ok "missing key: 400 bad_key" is_error 400 bad_key
for bad in '"../x/abcd"' '"ABC"' '"ABCDEFGHI"' '12345678' '"ABCD\u0000EF"' '"ÀBCDEFGH"'; do
  req POST /api/save "${CT[@]}" -d "{\"key\":$bad,\"data\":1}"
  ok "key $bad: 400 bad_key" is_error 400 bad_key
done
deep=$(printf '%.0s[' $(seq 1 200))
req POST /api/save "${AS[@]}" "${CT[@]}" -d "{\"key\":\"$KS\",\"data\":$deep}"
ok "absurd nesting (unterminated): 400" answered 400
deep2="$(printf '%.0s[' $(seq 1 100))1$(printf '%.0s]' $(seq 1 100))"
req POST /api/save "${AS[@]}" "${CT[@]}" -d "{\"key\":\"$KS\",\"data\":$deep2}"
ok "nesting deeper than the limit: 400 bad_request" is_error 400 bad_request
req POST /api/save "${AS[@]}" -H 'Content-Type: application/x-www-form-urlencoded' -d "key=$KS"
ok "form body: 415 unsupported_media_type" is_error 415 unsupported_media_type
req POST /api/save "${AS[@]}" -H 'Content-Type: text/html' -d "{\"key\":\"$KS\"}"
ok "text/html body: 415" is_error 415 unsupported_media_type
head -c 70000 /dev/zero | tr '\0' ' ' > "$IT_TMP/big"
req POST /api/save "${CT[@]}" --data-binary @"$IT_TMP/big"
ok "body over nginx's limit: 413 too_large as JSON" is_error 413 too_large
req POST /api/save "${CT[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$IT_TMP/big"
ok "chunked body over the limit: 413 too_large" is_error 413 too_large
eq "no bad input changed any file" "$(snapshot)" "$before"
ok "no temporary files left" no_temp_files
req POST /api/save "${AS[@]}" "${CT[@]}" -H 'Transfer-Encoding: chunked' -d "{\"key\":\"$KS\",\"data\":\"chunked\"}"
ok "chunked body within the limit: 200" [ "$STATUS" = 200 ]

# --- methods, paths, health, metrics ---
req GET /api/save
ok "GET /api/save: 405" is_error 405 method_not_allowed
eq "405 Allow header" "$(hdr Allow)" "POST, OPTIONS"
req POST /api/load
ok "POST /api/load: 405 with Allow" answered_header 405 Allow "GET, HEAD, OPTIONS"
req PUT /api/instantiate
ok "PUT /api/instantiate: 405" is_error 405 method_not_allowed
req GET /api/nothing
ok "unknown path under /api/: 404 not_found" is_error 404 not_found
req GET /elsewhere
ok "path outside /api/: 404 JSON" answered 404 '.error == "not_found"'
req GET /api/health
ok "health: 200 ok" answered 200 '.status == "ok"'
# This section's own conflicts, one 409 and two 412s, counted from before.
metric() { awk -v m="$1" '$1 == m {print $2}' "$IT_TMP/metrics"; }
scrape() { curl -s "$BASE/api/metrics" >"$IT_TMP/metrics"; }
S409='sessiond_requests_total{endpoint="save",status="409"}'
scrape
n409=$(metric "$S409") nconf=$(metric sessiond_save_conflicts_total)
fresh; req POST /api/save "${SA[@]}" "${CT[@]}" -d "{\"key\":\"$SK\",\"data\":1}"
req POST /api/save "${SA[@]}" "${CT[@]}" -d "{\"key\":\"$SK\",\"version\":1,\"data\":\"stale\"}"
req POST /api/save "${SA[@]}" "${CT[@]}" -H 'If-Match: "1"' -d "{\"key\":\"$SK\",\"data\":\"stale\"}"
req POST /api/save "${SA[@]}" "${CT[@]}" -H 'If-Match: W/"2"' -d "{\"key\":\"$SK\",\"data\":\"weak\"}"
req GET /api/metrics
cp "$IT_TMP/body" "$IT_TMP/metrics"
ok "metrics from loopback: 200 Prometheus text" [ "$STATUS" = 200 ]
eq "metrics count the save answered 409" "$(metric "$S409")" $((${n409:-0} + 1))
for m in sessiond_request_duration_seconds_bucket sessiond_key_collisions_total sessiond_save_conflicts_total sessiond_lock_wait_seconds_bucket sessiond_lock_timeouts_total sessiond_sessions_created_total sessiond_bytes_written_total sessiond_fsyncs_total process_open_fds process_resident_memory_bytes; do
  ok "metrics has $m" grep -q "^$m" "$IT_TMP/body"
done
eq "conflicts counted (409 and 412)" "$(metric sessiond_save_conflicts_total)" $((${nconf:-0} + 3))

# --- CORS ---
fresh; KO=$SK
req OPTIONS /api/save -H 'Origin: http://app.example' -H 'Access-Control-Request-Method: POST'
ok "preflight: 204" [ "$STATUS" = 204 ]
eq "preflight allow-origin" "$(hdr Access-Control-Allow-Origin)" http://app.example
eq "preflight methods" "$(hdr Access-Control-Allow-Methods)" "GET, POST"
eq "preflight headers" "$(hdr Access-Control-Allow-Headers)" "Authorization, Content-Type, If-Match, If-None-Match"
req GET "/api/load?key=$KO" -H 'Origin: http://app.example'
eq "allowed origin gets Allow-Origin" "$(hdr Access-Control-Allow-Origin)" http://app.example
eq "Vary: Origin" "$(hdr Vary)" Origin
eq "Expose-Headers" "$(hdr Access-Control-Expose-Headers)" "ETag, Location, Retry-After, X-Sessiond-Node"
eq "Allow-Credentials, with the origin echoed (never *)" "$(hdr Access-Control-Allow-Credentials)" true
req GET "/api/load?key=$KO" -H 'Origin: http://evil.example'
ok "other origin: no CORS headers" no_header Access-Control-
req OPTIONS /api/save -H 'Origin: http://evil.example'
ok "other origin preflight: no CORS headers" no_header Access-Control-

# --- 100 concurrent unconditional saves: version 101, a valid file ---
req POST /api/instantiate
KC=$(printf '%s' "$BODY" | jq -r .key)
TC=$(printf '%s' "$BODY" | jq -r .token)
seq 1 100 | xargs -P 100 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST "${CT[@]}" -H "Authorization: Bearer $TC" \
  -d "{\"key\":\"$KC\",\"data\":{\"writer\":{}}}" "$BASE/api/save" > "$IT_TMP/codes"
eq "100 concurrent unconditional saves all 200" "$(sort "$IT_TMP/codes" | uniq -c | tr -s ' ')" " 100 200"
req GET "/api/load?key=$KC"
ok "version is 101 after 100 saves" json '.version == 101'
FC=$DATA/sessions/${KC:0:2}/$KC.json
ok "the file parses and is the last save" file_json "$FC" '.version == 101 and (.data.writer|type=="number")'

# --- files not in canonical form: parsed in full; damaged: a JSON 500 ---
mkdir -p "$DATA/sessions/CM"
printf '{"data":[7],"meta":{},"updated":"2026-01-01T00:00:00Z","created":"2026-01-01T00:00:00Z","version":4,"key":"CMPACT00"}' > "$DATA/sessions/CM/CMPACT00.json"
req GET /api/load?key=CMPACT00
eq "a compact, reordered file still loads (full parse)" "$STATUS" 200
eq "its ETag comes from the parsed version" "$(hdr ETag)" '"4"'
ok "its document is served" json '.version == 4 and .data == [7]'
printf '{\n  "key": "CMPACT01",\n  "version": 2,\n  "created": "' > "$DATA/sessions/CM/CMPACT01.json"
req GET /api/load?key=CMPACT01
ok "a damaged file: 500 internal, as JSON" is_error 500 internal
auth CMPACT01   # a damaged session still has its token
req POST /api/save "${CT[@]}" "${AUTH[@]}" -d '{"key":"CMPACT01","data":1}'
ok "saving over a damaged file: 500 internal" answered 500
ok "saving over a damaged file: file untouched" [ "$(wc -c <"$DATA/sessions/CM/CMPACT01.json")" -lt 60 ]

# A canonical head and tail around a damaged middle (before: served as 200
# with an ETag, nothing logged), copied with "from" too; and a FIFO at a
# session path (before: the worker hung in open for ever).
printf '{\n  "key": "CMPACT02",\n  "version": 2,\n  "created": "2026-01-01T00:00:00.000Z",\n  "updated": "2026-01-01T00:00:00.000Z",\n  "meta": {},\n  "data": [[ 1,\n}\n' > "$DATA/sessions/CM/CMPACT02.json"
req GET /api/load?key=CMPACT02
ok "a damaged middle: 500 internal, no ETag" answered_header 500 ETag ""
ok "it is logged at error level with the key" log_has 'error sessiond: session CMPACT02 is damaged'
req POST /api/instantiate "${CT[@]}" -d '{"from":"CMPACT02"}'
ok "copying it: 500 internal" is_error 500 internal
mkfifo "$DATA/sessions/CM/CMFIFO00.json"
for _ in 1 2 3; do req GET /api/load?key=CMFIFO00 --max-time 10; done
ok "a FIFO at a session path: 500 at once" answered 500
ok "a FIFO at a session path: logged" log_has 'CMFIFO00.json is not a regular file'
rm -f "$DATA/sessions/CM/CMFIFO00.json"

# --- found in review: each was a 500 or worse before its fix ---
fresh
long=$(printf 'a%.0s' $(seq 1 62))
req POST /api/save "${SA[@]}" "${CT[@]}" --data-binary "{\"key\":\"$SK\",\"$long\u00e9\":1}"
ok "an unknown field name cut inside a UTF-8 character: 400 bad_request JSON" is_error 400 bad_request
req POST /api/instantiate "${CT[@]}" --data-binary "{\"${long}é\":1}"
ok "the same on instantiate" is_error 400 bad_request
mkdir -p "$DATA/sessions/MA"
printf '{\n  "key": "MAXVER00",\n  "version": 9007199254740991,\n  "created": "2026-01-01T00:00:00.000Z",\n  "updated": "2026-01-01T00:00:00.000Z",\n  "meta": {},\n  "data": {}\n}\n' > "$DATA/sessions/MA/MAXVER00.json"
cp "$DATA/sessions/MA/MAXVER00.json" "$IT_TMP/maxver"
auth MAXVER00
req POST /api/save "${CT[@]}" "${AUTH[@]}" -d '{"key":"MAXVER00","data":1}'
ok "a save past version 2^53-1: 400 bad_request, not an overflow" is_error 400 bad_request
ok "and the file is untouched" cmp -s "$DATA/sessions/MA/MAXVER00.json" "$IT_TMP/maxver"
req GET /api/load?key=CMPACT01
ok "a damaged file's details stay out of the answer" body_lacks line
ok "a damaged file's details stay in the log" log_has 'CMPACT01 is damaged'

# --- the server keeps serving after all of the above ---
fresh
req GET "/api/load?key=$SK"
ok "still serving" [ "$STATUS" = 200 ]
it_done
