#!/usr/bin/env bash
# The benchmark's own parts, quickly (make bench itself is opt-in and long):
# its scripts parse, the PHP baseline's scripts parse, and the FastCGI
# ceiling, behind the real nginx, answers with exactly the bytes of its
# file and sessiond's headers; its architecture modes (load-file, replace,
# create) read and write the sessions of the data dir in sessiond's layout,
# and answer a bad request with a JSON 400 rather than crash.
. "$(dirname "$0")/lib.sh"
CEILING=${SD_BUILD:-$IT_ROOT/build}/bench/fcgi_ceiling

for f in "$IT_ROOT"/bench/*.sh; do
  ok "bash -n $(basename "$f")" bash -n "$f"
done
if command -v php >/dev/null; then
  for f in "$IT_ROOT"/bench/php/*.php; do
    ok "php -l $(basename "$f")" php -l "$f"
  done
fi

doc=$(mktemp /tmp/sessiond-it-doc.XXXXXX)
jq . "$IT_ROOT/bench/session-data.json" > "$doc"
SESSIOND=$CEILING it_setup --file "$doc" --threads 2
req GET "/api/load?key=ANYTHING0"
eq "ceiling status" "$STATUS" 200
ok "ceiling sends the file's bytes" cmp -s "$IT_TMP/body" "$doc"
eq "ceiling Cache-Control" "$(hdr Cache-Control)" no-store
req POST /api/save -H 'Content-Type: application/json' --data-binary "@$doc"
eq "ceiling answers a POST the same way" "$STATUS" 200

# ceiling MODE [options]: the ceiling in that mode on $DATA, in sessiond's place
ceiling() {
  stack_stop
  SESSIOND=$CEILING stack_start "$RUN-$1" "$PORT" "$DATA" --mode "$@" --threads 2 ||
    { echo "the ceiling (--mode $1) did not start" >&2; exit 1; }
}
fan=$DATA/sessions/AB
mkdir -p "$fan"
cp "$doc" "$fan/ABCDEFGH.json"
ceiling load-file
req GET "/api/load?key=ABCDEFGH"
eq "load-file status" "$STATUS" 200
ok "load-file sends the session file's bytes" cmp -s "$IT_TMP/body" "$fan/ABCDEFGH.json"
req GET "/api/load?key=abcdefgh"
eq "load-file takes a key as sessiond does (any case)" "$STATUS" 200
req GET "/api/load?key=ZZZZZZZZ"
ok "load-file: no such session, a JSON 404" answered 404 .error
req GET /api/load
ok "load-file: no key, a JSON 400" answered 400 .error
req GET "/api/load?key=AB/../x"
ok "load-file: a bad key, a JSON 400" answered 400 .error

ceiling replace --durability full
first='{"key":"ABCDEFGH","data":{"n":1}}' second='{"key":"ABCDEFGH","data":{"n":2}}'
req POST /api/save -H 'Content-Type: application/json' --data-binary "$first"
eq "replace status" "$STATUS" 200
eq "replace: the body is the session's content" "$(cat "$fan/ABCDEFGH.json")" "$first"
ok "replace: the old version is the spare" cmp -s "$fan/.ABCDEFGH.spare" "$doc"
req POST /api/save -H 'Content-Type: application/json' --data-binary "$second"
eq "replace again: the body is the content" "$(cat "$fan/ABCDEFGH.json")" "$second"
eq "replace again: the spare written over and cut" "$(cat "$fan/.ABCDEFGH.spare")" "$first"
req POST /api/save -H 'Content-Type: application/json'
ok "replace: no body, a JSON 400" answered 400 .error
req POST /api/save -H 'Content-Type: application/json' --data-binary '{"data":{}}'
ok "replace: no key in the body, a JSON 400" answered 400 .error
req POST /api/save -H 'Content-Type: application/json' --data-binary '{"key":"ZZZZZZZZ","data":{}}'
ok "replace: no such session, a JSON 404" answered 404 .error
eq "replace: a failed save leaves the session alone" "$(cat "$fan/ABCDEFGH.json")" "$second"

ceiling create --durability none
req POST /api/instantiate -H 'Content-Type: application/json' --data-binary "$first"
eq "create status" "$STATUS" 201
key=$(jq -r .key <<<"$BODY")
ok "create answers a fresh key" matches "$key" '^[A-Z0-9]{8}$'
eq "create: the body is the new session's content" "$(cat "$DATA/sessions/${key:0:2}/$key.json" 2>/dev/null)" "$first"
req POST /api/instantiate -H 'Content-Type: application/json'
ok "create: no body, a JSON 400" answered 400 .error
ok "create leaves no temporary file" no_temp_files
eq "the ceiling stayed up through every bad request" "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/health")" 200
rm -f "$doc"
it_done
