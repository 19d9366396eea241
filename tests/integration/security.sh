#!/usr/bin/env bash
# Issue 7, sessiond's side, through the real nginx: write tokens (missing,
# wrong, right; in the header and in the body), --access private and open,
# origin checks (403, nothing written), the miss limit per client address
# (127.0.0.1 limited while 127.0.0.2 is served), the disk watermark on a
# small tmpfs, the secret file's mode, and that no token or secret reaches
# a log.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup --threads 8 --cors-origin http://app.example --log-level debug
CT=(-H 'Content-Type: application/json')
TP=(-H 'Content-Type: text/plain;charset=UTF-8')
json() { printf '%s' "$BODY" | jq -e "$1" >/dev/null 2>&1; }
is_error() { [ "$STATUS" = "$1" ] && json ".error == \"$2\" and (.message|length > 0)"; }
files() { find "$DATA/sessions" -name '*.json' | wc -l; }
ALLTOKENS=()

# --- the secret file ---
eq "secret created at first start: DATA/secret, mode 0600, 32 bytes" \
  "$(stat -c '%a %s' "$DATA/secret")" "600 32"

# --- token mode (the default) ---
req POST /api/instantiate "${CT[@]}" -d '{"data":{"n":1}}'
K=$(jq -r .key <<<"$BODY"); T=$(jq -r .token <<<"$BODY"); ALLTOKENS+=("$T")
F=$DATA/sessions/${K:0:2}/$K.json
ok "instantiate answers a token: 43 characters of base64url" matches "$T" '^[A-Za-z0-9_-]{43}$'
ok "no read_token in token mode" json 'has("read_token") | not'
eq "sessionctl token KEY prints the same token" "$("$SESSIONCTL" --data-dir "$DATA" token --json "$K" | jq -r .token)" "$T"
req POST /api/instantiate "${CT[@]}" -d '{"data":{"other":1}}'
K2=$(jq -r .key <<<"$BODY"); T2=$(jq -r .token <<<"$BODY"); ALLTOKENS+=("$T2")
ok "another session, another token" [ "$T2" != "$T" ]
cp "$F" "$IT_TMP/before"

req POST /api/save "${CT[@]}" -d "{\"key\":\"$K\",\"data\":{\"n\":2}}"
ok "save without a token: 401 unauthorized" is_error 401 unauthorized
eq "WWW-Authenticate: Bearer" "$(hdr WWW-Authenticate)" Bearer
missing_body=$BODY
req POST /api/save "${CT[@]}" -H "Authorization: Bearer $T2" -d "{\"key\":\"$K\",\"data\":{\"n\":2}}"
ok "save with another session's token: 401" is_error 401 unauthorized
eq "wrong and missing get the same answer" "$BODY" "$missing_body"
req POST /api/save "${CT[@]}" -H "Authorization: Bearer ${T:0:42}X" -d "{\"key\":\"$K\",\"data\":{\"n\":2}}"
ok "save with a token one character off: 401" is_error 401 unauthorized
req POST /api/save "${CT[@]}" -H "Authorization: Basic $T" -d "{\"key\":\"$K\",\"data\":{\"n\":2}}"
ok "the token under another scheme: 401" is_error 401 unauthorized
req POST /api/save "${TP[@]}" -d "{\"key\":\"$K\",\"token\":\"$T2\",\"data\":{\"n\":2}}"
ok "a wrong token in the body: 401" is_error 401 unauthorized
req POST /api/save "${CT[@]}" -d "{\"key\":\"$K\",\"token\":7,\"data\":{\"n\":2}}"
ok "a token that is not a string: 400 bad_request" is_error 400 bad_request
ok "refused saves wrote nothing" cmp -s "$F" "$IT_TMP/before"

req POST /api/save "${CT[@]}" -H "Authorization: Bearer $T" -d "{\"key\":\"$K\",\"data\":{\"n\":2}}"
ok "save with the token in Authorization: Bearer: 200" answered 200 '.version == 2'
req POST /api/save "${TP[@]}" -d "{\"key\":\"$K\",\"token\":\"$T\",\"data\":{\"n\":3}}"
ok "save with the token in a text/plain body (sendBeacon): 200" answered 200 '.version == 3'
ok "the token is not stored in the document" file_lacks "$F" "$T"
ok "the document has no token field" file_json "$F" 'has("token") | not'
req GET "/api/load?key=$K"
ok "load needs only the key (a read-only link): 200" answered 200 '.data.n == 3 and (has("token") | not)'
req POST /api/instantiate "${CT[@]}" -d "{\"from\":\"$K\"}"
KC=$(jq -r .key <<<"$BODY"); TC=$(jq -r .token <<<"$BODY"); ALLTOKENS+=("$TC")
ok "copy (from) with the key alone: 201 with a token of its own" test "$STATUS" = 201 -a "$TC" != "$T" -a ${#TC} = 43
req POST /api/save "${CT[@]}" -H "Authorization: Bearer $T" -d "{\"key\":\"$KC\",\"data\":1}"
ok "the source's token does not edit the copy" is_error 401 unauthorized
req POST /api/save "${CT[@]}" -H "Authorization: Bearer $TC" -d "{\"key\":\"$KC\",\"data\":1}"
eq "the copy's token does" "$STATUS" 200
req POST /api/instantiate "${CT[@]}" -d '{"token":"x"}'
ok "a token without from on instantiate: 400" is_error 400 bad_request

# --- origin checks (CSRF) ---
cp "$F" "$IT_TMP/before"
n0=$(files)
req POST /api/save "${TP[@]}" -H 'Origin: http://evil.example' -d "{\"key\":\"$K\",\"token\":\"$T\",\"data\":\"evil\"}"
ok "text/plain save from a foreign Origin (with the right token): 403 forbidden" is_error 403 forbidden
ok "no CORS headers for the foreign origin" no_header Access-Control-
req POST /api/instantiate -H 'Origin: http://evil.example'
ok "body-less instantiate from a foreign Origin: 403" is_error 403 forbidden
req POST /api/instantiate -H 'Origin: null'
ok "Origin: null (sandboxed page): 403" is_error 403 forbidden
req POST /api/save "${TP[@]}" -H "Origin: https://127.0.0.1:$PORT" -d "{\"key\":\"$K\",\"token\":\"$T\",\"data\":\"evil\"}"
ok "same host, other scheme (https): 403" is_error 403 forbidden
req POST /api/save "${TP[@]}" -H "Origin: http://127.0.0.1:$((PORT + 1))" -d "{\"key\":\"$K\",\"token\":\"$T\",\"data\":\"evil\"}"
ok "same host, other port: 403" is_error 403 forbidden
ok "refused cross-origin requests wrote nothing" wrote_nothing "$F" "$IT_TMP/before" "$n0"
req GET "/api/load?key=$K" -H 'Origin: http://evil.example'
eq "a GET from a foreign Origin is not refused (no CORS headers: the browser hides it)" "$STATUS" 200
req POST /api/save "${TP[@]}" -H "Origin: http://127.0.0.1:$PORT" -d "{\"key\":\"$K\",\"token\":\"$T\",\"data\":\"same\"}"
eq "same origin (scheme and Host): 200" "$STATUS" 200
req POST /api/save "${TP[@]}" -H 'Origin: http://app.example' -d "{\"key\":\"$K\",\"token\":\"$T\",\"data\":\"app\"}"
eq "an allowed origin (--cors-origin): 200" "$STATUS" 200
eq "its origin is echoed" "$(hdr Access-Control-Allow-Origin)" http://app.example
eq "with Access-Control-Allow-Credentials: true" "$(hdr Access-Control-Allow-Credentials)" true
ok "Retry-After is exposed" header_has Access-Control-Expose-Headers Retry-After
req OPTIONS /api/save -H 'Origin: http://app.example' -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization'
ok "preflight allows Authorization" header_has Access-Control-Allow-Headers Authorization
req POST /api/instantiate -H 'Origin: http://app.example'
eq "body-less instantiate from the allowed origin: 201" "$STATUS" 201
ALLTOKENS+=("$(jq -r .token <<<"$BODY")")

# --- no token or secret in any log (debug level, nginx's too) ---
secret_hex=$(od -An -tx1 "$DATA/secret" | tr -d ' \n')
secret_b64=$(base64 -w0 "$DATA/secret")
leaked=0
for t in "${ALLTOKENS[@]}" "$secret_hex" "$secret_b64" "${secret_b64%%=*}"; do
  grep -rqF -- "$t" "$RUN"/*.log && leaked=$((leaked + 1))
done
eq "no token and no secret in sessiond's or nginx's logs" "$leaked" 0
ok "sessiond logged at debug level (the check above read something)" grep -q 'POST /api/save -> 401' "$RUN/sessiond.log"

# --- the miss limit: --miss-limit 6 is 6 a minute per address, burst 6 (a
# fresh table). A slow rate, so that no miss refills while the test runs
# (one per 10 s), whatever the machine's load.
stack_stop
stack_start "$RUN" "$PORT" "$DATA" --threads 8 --miss-limit 6 || exit 1
for i in $(seq 1 6); do
  req GET "/api/load?key=$(printf 'NOSUCH%02d' "$i")"
  [ "$STATUS" = 404 ] || break
done
eq "6 loads of unknown keys from 127.0.0.1: 404 each" "$i $STATUS" "6 404"
req GET "/api/load?key=NOSUCH99"
ok "the 7th: 429 rate_limited" is_error 429 rate_limited
wait_s=$(hdr Retry-After)
ok "with Retry-After: 1 to 10 seconds (one miss refills in 10 s)" test "$wait_s" -ge 1 -a "$wait_s" -le 10
req GET "/api/load?key=$K"
ok "then every request from that address, even a good load: 429" is_error 429 rate_limited
cp "$F" "$IT_TMP/before"
req POST /api/save "${CT[@]}" -H "Authorization: Bearer $T" -d "{\"key\":\"$K\",\"data\":1}"
unchanged() { is_error 429 rate_limited && cmp -s "$F" "$IT_TMP/before"; }
ok "and a save with the right token: 429, nothing written" unchanged
req GET "/api/load?key=$K" --interface 127.0.0.2
eq "127.0.0.2 still loads: 200" "$STATUS" 200
req GET "/api/load?key=NOSUCH98" --interface 127.0.0.2
eq "and still gets 404 for an unknown key" "$STATUS" 404
req POST /api/save "${CT[@]}" -H "Authorization: Bearer $T" -d "{\"key\":\"$K\",\"data\":\"from2\"}" --interface 127.0.0.2
eq "and saves: 200" "$STATUS" 200
for i in $(seq 1 10); do
  req POST /api/save "${CT[@]}" -H "Authorization: Bearer $T2" -d "{\"key\":\"$K\",\"data\":1}" --interface 127.0.0.2
  [ "$STATUS" = 401 ] || break
done
eq "wrong tokens count as misses too: 127.0.0.2 limited after 5 more" "$i $STATUS" "6 429"
sleep "$wait_s"
req GET "/api/load?key=$K"
eq "127.0.0.1 after Retry-After: served again" "$STATUS" 200
req GET /api/metrics
ok "metrics count the misses (6 + 1 + 5)" grep -q '^sessiond_misses_total 12$' "$IT_TMP/body"
ok "metrics count the 429s (3 + 1)" grep -q '^sessiond_rate_limited_total 4$' "$IT_TMP/body"
req GET "/api/load?key=NOSUCH97"
eq "one miss has refilled" "$STATUS" 404
req GET "/api/load?key=NOSUCH96"
eq "not a full bucket: limited again after that one" "$STATUS" 429

# --- --access private: loads and copies need a token; read_token ---
stack_stop
stack_start "$RUN" "$PORT" "$DATA" --threads 4 --access private || exit 1
req POST /api/instantiate "${CT[@]}" -d '{"data":{"p":1}}'
KP=$(jq -r .key <<<"$BODY"); TP_W=$(jq -r .token <<<"$BODY"); TP_R=$(jq -r .read_token <<<"$BODY")
ok "private: instantiate answers token and read_token" test ${#TP_W} = 43 -a ${#TP_R} = 43 -a "$TP_W" != "$TP_R"
ok "private: tokens as before (same secret)" [ "$(jq -r .token <<<"$("$SESSIONCTL" --data-dir "$DATA" token --json "$K")")" = "$T" ]
req GET "/api/load?key=$KP"
ok "private: load without a token: 401" is_error 401 unauthorized
req GET "/api/load?key=NOSUCH95"
ok "private: an unknown key without a token: the same 401 (no oracle)" is_error 401 unauthorized
req GET "/api/load?key=$KP" -H "Authorization: Bearer $TP_R"
eq "private: load with the read token: 200" "$STATUS" 200
req GET "/api/load?key=$KP" -H "Authorization: Bearer $TP_W"
eq "private: load with the write token: 200" "$STATUS" 200
req POST /api/save "${CT[@]}" -H "Authorization: Bearer $TP_R" -d "{\"key\":\"$KP\",\"data\":2}"
ok "private: the read token never saves: 401" is_error 401 unauthorized
req POST /api/save "${CT[@]}" -H "Authorization: Bearer $TP_W" -d "{\"key\":\"$KP\",\"data\":2}"
eq "private: the write token saves" "$STATUS" 200
req POST /api/instantiate "${CT[@]}" -d "{\"from\":\"$KP\"}"
ok "private: copy without a token: 401" is_error 401 unauthorized
req POST /api/instantiate "${CT[@]}" -d "{\"from\":\"$KP\",\"token\":\"$TP_R\"}"
ok "private: copy with the read token in the body: 201, with its own tokens" \
  answered 201 '(.token|length) == 43 and (.read_token|length) == 43'
req POST /api/instantiate "${CT[@]}" -H "Authorization: Bearer $TP_R" -d "{\"from\":\"$KP\"}"
eq "private: copy with the read token in the header: 201" "$STATUS" 201

# --- --access open: the key alone reads and writes ---
stack_stop
stack_start "$RUN" "$PORT" "$DATA" --threads 4 --access open || exit 1
req POST /api/save "${CT[@]}" -d "{\"key\":\"$K\",\"data\":\"open\"}"
eq "open: save without a token: 200" "$STATUS" 200
req POST /api/save "${CT[@]}" -H "Authorization: Bearer $T2" -d "{\"key\":\"$K\",\"data\":\"open2\"}"
eq "open: even a wrong token is ignored: 200" "$STATUS" 200
stack_stop

# --- a secret file that others can read, or of the wrong size: exit 2 ---
chmod 644 "$DATA/secret"
out=$("$SESSIOND" --listen "unix:$IT_TMP/x.sock" --data-dir "$DATA" 2>&1); rc=$?
ok "secret readable by others: exit 2 with one clear line" one_line_exit 2 "$rc" "$out" 'chmod 600'
chmod 600 "$DATA/secret"
head -c 16 /dev/urandom > "$IT_TMP/short"; chmod 600 "$IT_TMP/short"
out=$(SESSIOND_SECRET_FILE=$IT_TMP/short "$SESSIOND" --listen "unix:$IT_TMP/x.sock" --data-dir "$DATA" 2>&1); rc=$?
ok "secret of 16 bytes (SESSIOND_SECRET_FILE): exit 2 naming the size" exited 2 "$rc" "$out" '16 bytes'

# --- the disk watermark, on a small tmpfs ---
MNT=$(mktemp -d /tmp/sessiond-tmpfs.XXXXXX)
if mount -t tmpfs -o size=1m tmpfs "$MNT" 2>/dev/null; then
  DATA_SAVED=$DATA DATA=$MNT/data
  stack_start "$RUN" "$PORT" "$DATA" --threads 4 --min-free 50% || { umount "$MNT"; exit 1; }
  req POST /api/instantiate "${CT[@]}" -d '{"data":"small"}'
  KW=$(jq -r .key <<<"$BODY"); AW=(-H "Authorization: Bearer $(jq -r .token <<<"$BODY")")
  FW=$DATA/sessions/${KW:0:2}/$KW.json
  eq "watermark: with space, instantiate 201" "$STATUS" 201
  req GET /api/health
  ok "health reports the storage state and figures" json '.status == "ok" and .storage.state == "ok" and .storage.min_free_bytes > 0'
  head -c 600k /dev/zero > "$MNT/filler"   # leaves about 40% free: below 50%
  cp "$FW" "$IT_TMP/wbefore"; n0=$(find "$DATA/sessions" -name '*.json' | wc -l)
  req POST /api/instantiate "${CT[@]}" -d '{"data":"more"}'
  ok "below --min-free: instantiate 507 storage_full" is_error 507 storage_full
  req POST /api/save "${CT[@]}" "${AW[@]}" -d "{\"key\":\"$KW\",\"data\":\"a longer document than before\"}"
  ok "below --min-free: a save that grows the file: 507" is_error 507 storage_full
  ok "nothing written below the watermark" wrote_nothing "$FW" "$IT_TMP/wbefore" "$n0"
  ok "no temporary file below the watermark" no_temp_files "$DATA"
  req POST /api/save "${CT[@]}" "${AW[@]}" -d "{\"key\":\"$KW\",\"data\":\"s\"}"
  eq "below --min-free: a save that shrinks it still works" "$STATUS" 200
  # its first save: a spare would be a second copy; a temporary file is not
  ok "below --min-free: the first save made no spare" [ ! -e "$DATA/sessions/${KW:0:2}/.$KW.spare" ]
  req GET "/api/load?key=$KW"
  eq "below --min-free: loads work" "$STATUS" 200
  req GET /api/health
  ok "health: 503 storage_full, state below_min_free" \
    answered 503 '.error == "storage_full" and .storage.state == "below_min_free"'
  eq "health below --min-free: Retry-After (every 503 has one)" "$(hdr Retry-After)" 1
  rm -f "$MNT/filler"
  req POST /api/instantiate "${CT[@]}" -d '{"data":"more"}'
  eq "space back: instantiate 201 again" "$STATUS" 201
  stack_stop
  DATA=$DATA_SAVED
  umount "$MNT"
else
  echo "SKIP watermark: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
fi
rmdir "$MNT"
it_done
