#!/usr/bin/env bash
# The nginx edge (conf/sessiond-edge-*.conf), through a real nginx:
# - every error nginx itself makes (400, 405, 413, 414, 431, 501, 404, 429,
#   502) is {"error","message"} JSON with Cache-Control: no-store, and
#   carries CORS headers for an allowed Origin, none for a foreign one;
# - those bodies agree with sessiond's error table (src/core/err.c) and, where
#   both can answer the same thing, with sessiond's own bytes;
# - limit_req per address: creation and overall bursts answer 429
#   rate_limited with Retry-After, for that address only;
# - no key or token in the access log;
# - LIMITS=off really turns nginx's limits and sessiond's miss limit off;
# - the production block (conf/nginx-sessiond.conf) passes `nginx -t` and
#   serves: TLS with HSTS, port 80 only redirecting, the same JSON errors.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
unset SESSIOND_MISS_LIMIT SESSIOND_CORS_ORIGIN
APP=http://app.example
STACK_LIMITS=on STACK_MAX_BODY=64k IT_ACCESS_LOG=1
it_setup --threads 8 --max-body 32k --cors-origin "$APP"
ACCESS=$RUN/access.log

# sessiond's table: "STATUS CODE<TAB>MESSAGE" per entry of src/core/err.c.
ERRC=$(sed -n 's/^[[:space:]]*\[SD_[A-Z_]*\] = {\([0-9]*\), "\([a-z_]*\)", "\(.*\)"},$/\1 \2\t\3/p' "$IT_ROOT/src/core/err.c")
ok "src/core/err.c's table parsed" [ "$(grep -c . <<<"$ERRC")" -ge 10 ]
# nginx's table: "STATUS CODE<TAB>MESSAGE" per entry of $sd_error_body.
NGX=$(sed -n "s/^[[:space:]]*\([0-9][0-9]*\) '{\"error\":\"\([a-z_]*\)\",\"message\":\"\(.*\)\"}\\\\n';\$/\1 \2\t\3/p" \
  "$IT_ROOT/conf/sessiond-edge-http.conf")
ok "nginx's error table parsed" [ "$(grep -c . <<<"$NGX")" -ge 12 ]

# A code sessiond has keeps its status; its message too, except where the
# situation differs: not_found (compared with sessiond's bytes below) and
# rate_limited (sessiond's is for failed guesses, nginx's for request rate).
# A code only nginx has is in docs/api.md's error table with its status.
while IFS=$'\t' read -r sc msg; do
  st=${sc% *} code=${sc#* }
  if grep -q " $code"$'\t' <<<"$ERRC"; then
    eq "nginx $st $code: the status sessiond's table gives it" \
      "$(grep " $code"$'\t' <<<"$ERRC" | cut -d' ' -f1 | sort -u | tr '\n' ' ')" "$st "
    case $code in
      not_found|rate_limited) ;;
      *) ok "nginx $st $code: sessiond's message" grep -qxF "$st $code"$'\t'"$msg" <<<"$ERRC" ;;
    esac
  else
    ok "nginx-only $st $code: in docs/api.md's error table" grep -q "^| $st | \`$code\` |" "$IT_ROOT/docs/api.md"
  fi
done <<<"$NGX"

body_of() { grep "^$1 " <<<"$NGX" | head -n1; } # the table line for STATUS
# is_edge_error STATUS CODE: the last answer is that error, as nginx's table
# says, as JSON, not cached.
is_edge_error() {
  [ "$STATUS" = "$1" ] &&
    [ "$(jq -r '"\(.error)\t\(.message)"' "$IT_TMP/body" 2>/dev/null)" = "$(body_of "$1" | cut -d' ' -f2-)" ] &&
    [ "$(jq -r 'keys|join(",")' "$IT_TMP/body")" = error,message ] &&
    [ "$(hdr Content-Type)" = application/json ] && [ "$(hdr Cache-Control)" = no-store ]
}
cors_ok() { # the CORS headers for $APP
  [ "$(hdr Access-Control-Allow-Origin)" = "$APP" ] && [ "$(hdr Vary)" = Origin ] &&
    [ "$(hdr Access-Control-Allow-Credentials)" = true ] &&
    hdr Access-Control-Expose-Headers | grep -q 'Retry-After'
}
no_cors() { [ "$STATUS" = "$1" ] && ! grep -qi '^Access-Control-' "$HDRS" && ! grep -qi '^Vary:' "$HDRS"; }
# edge NAME STATUS CODE METHOD PATH [curl args...]: once from the allowed
# origin, once from a foreign one.
edge() {
  local name=$1 st=$2 code=$3 method=$4 path=$5; shift 5
  req "$method" "$path" -H "Origin: $APP" "$@"
  ok "$name: $st $code as JSON" is_edge_error "$st" "$code"
  ok "$name: CORS headers for the allowed origin" cors_ok
  req "$method" "$path" -H "Origin: http://evil.example" "$@"
  ok "$name: no CORS headers for a foreign origin" no_cors "$st"
}
CT=(-H 'Content-Type: application/json')
big() { head -c "$1" /dev/zero | tr '\0' a; }
big 1100000 > "$IT_TMP/1.1M"

# --- nginx's own errors ---
# A request line nginx cannot parse: no headers read yet, so no CORS.
raw=$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'GET / HTTP/1.1 extra words\r\n\r\n' >&3; cat <&3" | tr -d '\r')
ok "malformed request line: 400" grep -q '^HTTP/1.1 400 ' <<<"$raw"
eq "malformed request line: bad_request JSON" "$(sed '1,/^$/d' <<<"$raw")" \
  "$(printf '{"error":"bad_request","message":"%s"}' "$(body_of 400 | cut -f2)")"
ok "malformed request line: Content-Type" has_line "$raw" 'Content-Type: application/json'
ok "malformed request line: Cache-Control" has_line "$raw" 'Cache-Control: no-store'
# A 400 after the headers are read (Origin among them).
edge "invalid Content-Length" 400 bad_request GET /api/health -H 'Content-Length: x'
edge "TRACE" 405 method_not_allowed TRACE /api/health
edge "body over nginx's client_max_body_size" 413 too_large POST /api/save "${CT[@]}" --data-binary "$(big 100000)"
edge "unknown Transfer-Encoding" 501 not_implemented GET /api/health -H 'Transfer-Encoding: gzip'
edge "oversized header" 431 headers_too_large GET /api/health -H "X-Big: $(big 9000)"
edge "unknown path outside /api/" 404 not_found GET /index.html
# The request line itself too long: nginx answers before reading headers.
req GET "/api/load?key=$(big 10000)" -H "Origin: $APP"
ok "URI over nginx's buffers: 414 uri_too_long as JSON" is_edge_error 414 uri_too_long

# The same answer from nginx and from sessiond is the same bytes.
same() { # NAME: the two last bodies saved as $IT_TMP/ngx, $IT_TMP/body
  ok "$1: nginx's body is sessiond's, byte for byte" cmp -s "$IT_TMP/ngx" "$IT_TMP/body"
}
req GET /nope; cp "$IT_TMP/body" "$IT_TMP/ngx"
req GET /api/nope
ok "sessiond's own 404 for an unknown /api/ path" [ "$STATUS" = 404 ]
same "404 not_found"
req POST /api/save "${CT[@]}" --data-binary "$(big 100000)"; cp "$IT_TMP/body" "$IT_TMP/ngx"
req POST /api/save "${CT[@]}" --data-binary "$(big 40000)"
ok "sessiond's own 413 (over its --max-body, under nginx's)" [ "$STATUS" = 413 ]
same "413 too_large"
req TRACE /api/load; cp "$IT_TMP/body" "$IT_TMP/ngx"
req PUT /api/load
ok "sessiond's own 405" [ "$STATUS" = 405 ]
same "405 method_not_allowed"

# --- no key or token in the access log ---
keys=() secrets=()
for i in 1 2 3; do
  req POST /api/instantiate "${CT[@]}" -H "Origin: $APP" -d "{\"data\":{\"i\":$i}}"
  k=$(jq -r .key "$IT_TMP/body"); t=$(jq -r '.token // empty' "$IT_TMP/body")
  keys+=("$k"); secrets+=("$k")
  [ -n "$t" ] && secrets+=("$t")
  auth=(); [ -n "$t" ] && auth=(-H "Authorization: Bearer $t")
  req GET "/api/load?key=$k"
  req POST /api/save "${CT[@]}" "${auth[@]}" -d "{\"key\":\"$k\",\"data\":{\"i\":$((i + 10))}}"
  req GET "/api/load?key=$k"
done
ok "the run worked: loads see the saves" jq -e '.data.i == 13' "$IT_TMP/body"
# Seen failing: with the log format "$request" (nginx's usual), 3 keys leak.
leaks=0
for s in "${secrets[@]}"; do grep -qF "$s" "$ACCESS" && leaks=$((leaks + 1)); done
eq "no key or token in the access log" "$leaks" 0
ok "the access log has the loads, by path, with their status" grep -q '"GET /api/load HTTP/1.1" 200 ' "$ACCESS"
ok "errors logged with the request's own method and path" grep -q '"POST /api/save HTTP/1.1" 413 ' "$ACCESS"

# --- limit_req, per address ---
# burst N PATH [curl args]: N requests on one connection (a curl per
# request would be slow enough, on a busy machine, for the buckets to refill
# meanwhile). The last answer is kept as req keeps one; CODES counts the
# statuses: " COUNT STATUS;"...
burst() {
  local n=$1 path=$2 urls=() out; shift 2
  for _ in $(seq 2 "$n"); do urls+=(-o /dev/null "$BASE$path"); done
  out=$(timeout 60 curl -s -w '%{http_code}\n' "$@" "${urls[@]}" \
    --next -s -w '%{http_code}\n' "$@" -o "$IT_TMP/body" -D "$HDRS" "$BASE$path")
  STATUS=$(tail -n1 <<<"$out") BODY=$(cat "$IT_TMP/body")
  CODES=$(sort <<<"$out" | uniq -c | tr -s ' ' | tr '\n' ';')
}
# Creation: burst 20 at one every 2 s; this test has made 3 so far, so 40
# more at once end in 429s unless they took over 30 s.
burst 40 /api/instantiate -X POST -H "Origin: $APP"
ok "40 more creations at once: 201s, then 429s ($CODES)" contains_all "$CODES" ' 201;' ' 429;'
ok "creation over the rate: 429 rate_limited as JSON" is_edge_error 429 rate_limited
ok "creation over the rate: CORS headers for the allowed origin" cors_ok
eq "Retry-After for creation" "$(hdr Retry-After)" 2
# 25, more than the burst of 20: even if the bucket refilled meanwhile (a
# slow machine), the last of them is over the rate (3 were seen reaching
# sessiond, which answered 403 for the foreign origin).
burst 25 /api/instantiate -X POST -H "Origin: http://evil.example"
ok "creation over the rate: no CORS headers for a foreign origin" no_cors 429
req GET "/api/load?key=${keys[0]}"
eq "the same address still loads (other zone)" "$STATUS" 200
# Overall: burst 100 at 20 a second, from 127.0.0.2.
burst 300 /api/health --interface 127.0.0.2
ok "300 requests at once from 127.0.0.2: 200s, then 429s ($CODES)" contains_all "$CODES" ' 200;' ' 429;'
ok "127.0.0.2 limited: 429 rate_limited" is_edge_error 429 rate_limited
eq "Retry-After" "$(hdr Retry-After)" 1
req GET /api/health
eq "127.0.0.1 unaffected" "$STATUS" 200
ok "LIMITS=on: sessiond keeps its miss limit (no SESSIOND_MISS_LIMIT=0)" \
  not proc_env_has "${STACK_PIDS[0]}" SESSIOND_MISS_LIMIT=0

# --- sessiond down: 502 ---
kill -TERM "${STACK_PIDS[0]}"; wait "${STACK_PIDS[0]}" 2>/dev/null
edge "sessiond down" 502 unavailable GET "/api/load?key=${keys[0]}"
eq "Retry-After when down" "$(hdr Retry-After)" 1
stack_stop

# --- LIMITS=off --- (the same bursts that were limited above)
PORT=$(free_port) || { echo "no free port" >&2; exit 1; }
BASE=http://127.0.0.1:$PORT
STACK_LIMITS=off stack_start "$RUN" "$PORT" "$IT_TMP/data-off" --threads 8 ||
  { echo "LIMITS=off stack did not start" >&2; exit 1; }
burst 40 /api/instantiate -X POST
eq "LIMITS=off: 40 creations at once, all 201" "$CODES" " 40 201;"
burst 300 /api/health
eq "LIMITS=off: 300 requests at once, all 200" "$CODES" " 300 200;"
ok "LIMITS=off: sessiond runs with SESSIOND_MISS_LIMIT=0" \
  proc_env_has "${STACK_PIDS[0]}" SESSIOND_MISS_LIMIT=0
ok "LIMITS=off: no limit_req in nginx's configuration" not grep -q limit_req "$RUN/nginx.conf"

# --- the production block, on loopback, in front of this sessiond ---
P=$IT_TMP/prod
mkdir -p "$P/snippets" "$P/ssl"
cp "$IT_ROOT/conf/sessiond-edge-http.conf" "$IT_ROOT/conf/sessiond-edge-errors.conf" "$P/snippets/"
"$IT_ROOT/scripts/nginx-cors-map" "$APP" > "$P/snippets/sessiond-cors.conf"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=sessions.example.com \
  -keyout "$P/ssl/privkey.pem" -out "$P/ssl/fullchain.pem" 2>/dev/null
HP=$(free_port) SP=$(free_port)
sed -e "s|listen 80;|listen 127.0.0.1:$HP;|; s|listen 443 ssl|listen 127.0.0.1:$SP ssl|; /listen \[::\]/d" \
  -e "s|/etc/ssl/sessiond/|$P/ssl/|; s|/var/log/nginx/|$P/|; s|unix:/run/sessiond/sessiond.sock|unix:$STACK_SOCK|" \
  "$IT_ROOT/conf/nginx-sessiond.conf" > "$P/site.conf"
{
  [ "$(id -u)" -eq 0 ] && echo "user root;"
  echo "pid $P/nginx.pid; error_log $P/error.log warn; daemon off; events { }"
  echo "http { client_body_temp_path $P/cb; fastcgi_temp_path $P/fc; proxy_temp_path $P/px;"
  echo "  uwsgi_temp_path $P/uw; scgi_temp_path $P/sc; include site.conf; }"
} > "$P/nginx.conf"
ok "production block: nginx -t" nginx -t -q -p "$P" -c "$P/nginx.conf" -e "$P/error.log"
stack_spawn "$P/nginx.out" nginx -p "$P" -c "$P/nginx.conf" -e "$P/error.log"
S=https://127.0.0.1:$SP
ok "production block serves TLS" stack_wait 100 curl -skf "$S/api/health"
BASE=$S
req POST /api/instantiate -k "${CT[@]}" -d '{"data":{"p":1}}'
eq "over TLS: instantiate 201" "$STATUS" 201
k=$(jq -r .key "$IT_TMP/body")
req GET "/api/load?key=$k" -k --tlsv1.2 --tls-max 1.2
eq "TLS 1.2: load 200" "$STATUS" 200
ok "HSTS on sessiond's answers" has_header 'Strict-Transport-Security: max-age=63072000'
ok "TLS 1.1 refused" not curl -sk --tlsv1.1 --tls-max 1.1 -o /dev/null "$S/api/health"
# Over HTTP/2 (curl negotiates it here) this 413 was nginx's HTML page until
# /_sd_error got client_max_body_size 0; seen failing without it.
edge "production: body too large" 413 too_large POST /api/save -k "${CT[@]}" --data-binary "@$IT_TMP/1.1M"
ok "HSTS on nginx's own errors" has_header 'Strict-Transport-Security: max-age=63072000'
edge "production: unknown path" 404 not_found GET /index.html -k
eq "no server version" "$(hdr Server)" nginx
BASE=http://127.0.0.1:$HP
req POST "/api/load?key=$k" -d x
eq "port 80: 308" "$STATUS" 308
eq "to https, same path and query" "$(hdr Location)" "https://sessions.example.com/api/load?key=$k"
ok "port 80: no HSTS over plain HTTP" no_header Strict-Transport-Security
ok "production access log written" grep -q '"GET /api/load HTTP/[0-9.]*" 200 ' "$P/sessiond.access.log"
ok "production access log without the key" file_lacks "$P/sessiond.access.log" "$k"

it_done
