#!/usr/bin/env bash
# A full disk and a read-only disk, for real: the data dir is a small tmpfs.
# A save that does not fit answers 507 storage_full and the old document
# stays whole; health answers 503 while nothing can be written; when space
# returns, saves work again. Needs mount(8) (root); skipped, saying so, where
# the sandbox forbids it.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
MNT=$(mktemp -d /tmp/sessiond-tmpfs.XXXXXX)
if ! mount -t tmpfs -o size=512k tmpfs "$MNT" 2>/dev/null; then
  echo "SKIP: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
  rmdir "$MNT"; echo "0 passed, 0 failed"; exit 0
fi
cleanup_mnt() { umount "$MNT" 2>/dev/null; rmdir "$MNT" 2>/dev/null; }
IT_TMP=$(mktemp -d /tmp/sessiond-it.XXXXXX)
RUN=$IT_TMP/run DATA=$MNT/data HDRS=$IT_TMP/headers
PORT=$(free_port); BASE=http://127.0.0.1:$PORT
trap 'stack_stop; cleanup_mnt; rm -rf "$IT_TMP"' EXIT
# --min-free 0: this test is about ENOSPC itself, below any watermark
# (security.sh tests the watermark).
stack_start "$RUN" "$PORT" "$DATA" --threads 4 --max-body 1M --min-free 0 || exit 1
CT=(-H 'Content-Type: application/json')

req POST /api/instantiate "${CT[@]}" -d '{"data":{"keep":"me"}}'
K=$(printf '%s' "$BODY" | jq -r .key)
AUTH=(-H "Authorization: Bearer $(printf '%s' "$BODY" | jq -r .token)")
F=$DATA/sessions/${K:0:2}/$K.json
cp "$F" "$IT_TMP/before.json"
dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null   # fill to ENOSPC
ok "the tmpfs is full" cannot_write "$MNT/probe"
rm -f "$MNT/probe"
big=$(head -c 200000 /dev/zero | tr '\0' 'x')
printf '{"key":"%s","data":"%s"}' "$K" "$big" > "$IT_TMP/body.json"
req POST /api/save "${CT[@]}" "${AUTH[@]}" --data-binary @"$IT_TMP/body.json"
eq "save on a full disk: 507" "$STATUS" 507
ok "error code storage_full" body_json '.error == "storage_full"'
ok "old document unchanged, byte for byte" cmp -s "$F" "$IT_TMP/before.json"
ok "no temporary file left behind" no_temp_files "$DATA"
req POST /api/instantiate
ok "instantiate on a full disk: 507 or 503, nothing half-made" status_in 507 503
ok "no temporary file after instantiate" no_temp_files "$DATA"
req GET /api/health
eq "health on a full disk: 503" "$STATUS" 503
# every 503 says when to come back (before: busy and frozen only; this failed)
eq "health on a full disk: Retry-After" "$(hdr Retry-After)" 1
req GET "/api/load?key=$K"
ok "loads still work on a full disk" answered 200 '.data.keep == "me" and .version == 1'

rm -f "$MNT/filler"
req POST /api/save "${CT[@]}" "${AUTH[@]}" --data-binary @"$IT_TMP/body.json"
eq "space back: the same save works" "$STATUS" 200
req GET /api/health
eq "space back: health 200" "$STATUS" 200

if mount -o remount,ro "$MNT" 2>/dev/null; then
  req GET /api/health
  eq "read-only data dir: health 503" "$STATUS" 503
  req POST /api/save "${CT[@]}" "${AUTH[@]}" -d "{\"key\":\"$K\",\"data\":1}"
  ok "read-only data dir: save refused" [ "$STATUS" -ge 500 ]
  ok "read-only data dir: with a JSON error" body_json .error
  req GET "/api/load?key=$K"
  ok "read-only data dir: the last acknowledged save loads" jq -e '.version == 2' "$IT_TMP/body"
  mount -o remount,rw "$MNT"
fi
stack_stop
if grep -qE 'Sanitizer|runtime error' "$RUN"/*.log 2>/dev/null; then IT_FAIL=$((IT_FAIL + 1)); echo "FAIL sanitizer report"; fi
echo "$IT_PASS passed, $IT_FAIL failed"
[ "$IT_FAIL" -eq 0 ]
