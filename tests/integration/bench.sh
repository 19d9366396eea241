#!/usr/bin/env bash
# The benchmark's own parts, quickly (make bench itself is opt-in and long):
# its scripts parse, the PHP baseline's scripts parse, and the FastCGI
# ceiling, behind the real nginx, answers with exactly the bytes of its
# file and sessiond's headers.
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
rm -f "$doc"
it_done
