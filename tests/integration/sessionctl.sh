#!/usr/bin/env bash
# sessionctl against a store that a real nginx + sessiond is serving: every
# command on a fixture store made through the HTTP API; damaged fixtures
# (each command reports the damage and carries on, fsck finds it all and
# --repair quarantines without deleting); export then import into an empty
# store gives byte-identical files; import skip, --force and rejects with
# line numbers; and gc racing a storm of saves on the very sessions it
# expires: no acknowledged save is undone, nothing is left half-deleted.
# Checks are ok NAME PREDICATE, with lib.sh's predicates (rc_is: $RC).
# shellcheck disable=SC2016,SC2034,SC2054
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup --threads 8

CT=(-H 'Content-Type: application/json')
CTL_PREFIX=()
# ctl ARGS...: run sessionctl (stdin is the caller's); sets RC, OUT, ERR and
# the files $O and $E. Exit status above 2 or a sanitizer report is a crash.
O=$IT_TMP/ctl.out E=$IT_TMP/ctl.err
ctl() {
  "${CTL_PREFIX[@]}" "$SESSIONCTL" "$@" >"$O" 2>"$E"
  RC=$?
  OUT=$(cat "$O") ERR=$(cat "$E")
  STATUS="rc=$RC" BODY="stdout: ${OUT:0:400} stderr: ${ERR:0:400}"
  if [ "$RC" -gt 2 ] || grep -qE 'Sanitizer|runtime error' "$E"; then
    IT_FAIL=$((IT_FAIL + 1))
    echo "FAIL sessionctl $* crashed (rc=$RC):"; head -40 "$E"
  fi
}
C() { ctl --data-dir "$DATA" "$@"; }     # on the store sessiond serves
path() { echo "$1/sessions/${2:0:2}/$2.json"; }
js() { jq -e "$1" "$O" >/dev/null 2>&1; }  # a jq test on the last stdout
jqf() { jq -e "$1" "$2" >/dev/null 2>&1; }  # a jq test on a file
lines() { wc -l <"$O" | tr -d ' '; }
# Same session file names and byte-identical contents under two sessions
# folders (a saved session's spare, .KEY.spare, is not part of a backup).
tree_sessions() { (cd "$1/sessions" && find . -type f ! -name '.*' | sort); }
same_tree() {
  [ "$(tree_sessions "$1")" = "$(tree_sessions "$2")" ] || return 1
  local f
  while read -r f; do cmp -s "$1/sessions/$f" "$2/sessions/$f" || return 1; done < <(tree_sessions "$1")
}
# JSON Lines of N sessions KEY = PREFIX + number, updated at time T.
gen() { # PREFIX N T
  local i
  for i in $(seq 1 "$2"); do
    printf '{"key":"%s%05d","version":1,"created":"%s","updated":"%s","meta":{"gen":true},"data":{"i":%d}}\n' \
      "$1" "$i" "$3" "$3" "$i"
  done
}
OLD=$(date -u -d '2 days ago' +%Y-%m-%dT%H:%M:%S.000Z)

# --- a fixture store, made through the HTTP API ---
keys=()
for i in 1 2 3 4 5; do
  pad=$(printf "%$((i * 40))s" '' | tr ' ' x)
  req POST /api/instantiate "${CT[@]}" -d "{\"data\":{\"n\":$i,\"pad\":\"$pad\"},\"meta\":{\"owner\":\"u$i\"}}"
  [ "$STATUS" = 201 ] || echo "fixture: instantiate answered $STATUS $BODY"
  keys+=("$(jq -r .key <<<"$BODY")")
done
K1=${keys[0]} K2=${keys[1]} K3=${keys[2]} K4=${keys[3]} K5=${keys[4]}
sleep 0.05
T_MID=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.05
auth "$K1"
req POST /api/save "${CT[@]}" "${AUTH[@]}" -d "{\"key\":\"$K1\",\"data\":{\"n\":10}}"
req POST /api/save "${CT[@]}" "${AUTH[@]}" -d "{\"key\":\"$K1\",\"meta\":{\"tag\":\"x\"}}"
eq "fixture: 5 sessions, K1 saved twice" "$STATUS $(jq -r .version <<<"$BODY")" "200 3"

# --- usage ---
ctl --help
eq "--help: exit 0" "$RC" 0
ok "--help: every command listed" file_matches_all "$O" '^  list ' '^  show ' '^  stats ' '^  fsck ' '^  gc ' \
  '^  export ' '^  import '
for c in list show stats fsck gc export import; do
  ctl "$c" --help
  ok "$c --help: exit 0, usage on stdout" rc_is 0 matches "$OUT" "^Usage: sessionctl.* $c"
done
ctl help gc
ok "help gc: the gc usage" rc_is 0 contains "$OUT" --older-than
ctl; eq "no command: exit 2" "$RC" 2
ctl frobnicate; eq "unknown command: exit 2" "$RC" 2
ctl --bogus list; eq "unknown global option: exit 2" "$RC" 2
C list --sort colour; eq "list --sort colour: exit 2" "$RC" 2
C list --limit 0; eq "list --limit 0: exit 2" "$RC" 2
C list --updated-before yesterday; eq "list --updated-before yesterday: exit 2" "$RC" 2
C list extra; eq "list with a stray argument: exit 2" "$RC" 2
C gc; eq "gc without --older-than: exit 2" "$RC" 2
C gc --older-than soon; eq "gc --older-than soon: exit 2" "$RC" 2
# A bare number, or under a minute, is refused unless --force (before: "30"
# meant 30 seconds and "0" deleted every session).
for d in 30 0 1440; do
  C gc --older-than "$d"
  ok "gc --older-than $d (no unit): exit 2, says why" rc_is 2 grep -q "with a unit" "$E"
done
C gc --older-than 59s
ok "gc --older-than 59s: exit 2, names --force" rc_is 2 grep -q -- --force "$E"
C gc --older-than 0s --dry-run --force --json
ok "gc --older-than 0s --force: accepted" rc_is 0

C show; eq "show without a key: exit 2" "$RC" 2
C show 'ab/cdefg'; eq "show with a malformed key: exit 2" "$RC" 2
C show "$K1" --raw --json; eq "show --raw --json: exit 2" "$RC" 2
ctl --data-dir "$IT_TMP/nowhere" list
ok "list on a missing store: exit 1, says so" rc_is 1 contains "$ERR" "no session store"
ok "list on a missing store: creates nothing" not test -e "$IT_TMP/nowhere"
SESSIOND_DATA_DIR=$DATA ctl stats --json
ok "SESSIOND_DATA_DIR selects the store" js '.sessions == 5'

# --- list ---
C list
eq "list: exit 0" "$RC" 0
eq "list: a header and 5 rows" "$(lines)" 6
ok "list: columns key, version, size, created, updated, expires" grep -qE '^KEY +VERSION +SIZE +CREATED +UPDATED +EXPIRES$' "$O"
ok "list: sorted by key" sorted_by_first_field "$O"
eq "list: K1's version" "$(awk -v k="$K1" '$1 == k {print $2}' "$O")" 3
eq "list: K1's size is its file's" "$(awk -v k="$K1" '$1 == k {print $3}' "$O")" "$(stat -c %s "$(path "$DATA" "$K1")")"
eq "list: K1's updated is the document's" "$(awk -v k="$K1" '$1 == k {print $5}' "$O")" "$(jq -r .updated "$(path "$DATA" "$K1")")"
C list --json
ok "list --json: 5 objects with key, version, size, created, updated" js 'length == 5 and all(.[]; (.key|test("^[A-Z0-9]{8}$")) and .version >= 1 and .size > 0 and (.created|type=="string") and (.updated|type=="string"))'
ok "list --json: created and updated as in the documents" js "(.[] | select(.key == \"$K2\")) as \$r | \$r.created == \"$(jq -r .created "$(path "$DATA" "$K2")")\" and \$r.updated == \"$(jq -r .updated "$(path "$DATA" "$K2")")\""
C list --sort size --limit 1 --json
ok "list --sort size --limit 1: the largest (K5)" js "length == 1 and .[0].key == \"$K5\""
C list --sort size --reverse --limit 1 --json
ok "list --sort size --reverse: the smallest (K1)" js "length == 1 and .[0].key == \"$K1\""
C list --sort updated --json
ok "list --sort updated: oldest first, K1 (just saved) last" js "([.[].updated] == ([.[].updated] | sort)) and .[-1].key == \"$K1\""
C list --updated-after "$T_MID" --json
ok "list --updated-after T: only K1" js "[.[].key] == [\"$K1\"]"
C list --updated-before "$T_MID" --json
ok "list --updated-before T: the other four" js "length == 4 and all(.[]; .key != \"$K1\")"
C list --updated-after 1h --json
ok "list --updated-after 1h (a duration): all 5" js 'length == 5'
C list --updated-before 1h --json
ok "list --updated-before 1h: none" js 'length == 0'
C list --updated-after "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
eq "list --updated-after the future: only the header" "$(lines)" 1

# --- show ---
C show "$K1"
ok "show: exit 0, the document pretty-printed (as stored)" rc_is 0 cmp -s "$O" "$(path "$DATA" "$K1")"
C show "${K1,,}"
ok "show with a lower-case key" rc_is 0 cmp -s "$O" "$(path "$DATA" "$K1")"
C show "$K2" --raw
ok "show --raw: the file's bytes" rc_is 0 cmp -s "$O" "$(path "$DATA" "$K2")"
C show --json "$K1"
ok "show --json: the document" \
  rc_is 0 js ".key == \"$K1\" and .version == 3 and .data == {\"n\":10} and .meta == {\"owner\":\"u1\",\"tag\":\"x\"}"
eq "show --json: one line" "$(lines)" 1
C show ZZZZZZZ9
ok "show of a missing key: exit 1, no session" rc_is 1 contains "$ERR" "no session ZZZZZZZ9"
ok "show of a missing key: nothing on stdout" test -z "$OUT"

# --- stats ---
# The saves above left spares (.KEY.spare), as much disk again as their
# sessions: stats counts them apart and in the total. Before it did, the
# total was the session files' alone and .spares was missing (null): the
# first check failed so.
total=$(cat "$DATA"/sessions/*/*.json | wc -c)
nspares=$(find "$DATA/sessions" -name '.*.spare' -type f | wc -l)
spare_total=$(find "$DATA/sessions" -name '.*.spare' -type f -print0 | xargs -0 cat | wc -c)
C stats --json
ok "stats --json: the spares (count, bytes) and a total that includes them" \
  js ".spares == $nspares and .spares > 0 and .spare_size == $spare_total and .spare_size > 0 and .session_size == $total and .total_size == $((total + spare_total))"
ok "stats --json: count, largest, ages, temp files" js ".sessions == 5 and .largest.key == \"$K5\" and .largest.size == $(stat -c %s "$(path "$DATA" "$K5")") and .updated.under_1h == 5 and .updated.\"1h_to_1d\" == 0 and .updated.over_30d == 0 and .temp_files == 0 and .damaged == 0 and .stray == 0"
C stats
ok "stats table" rc_is 0 file_matches_all "$O" '^sessions +5$' "^spares +$nspares$" "^session bytes .*[(]$total bytes[)]$" \
  "^spare bytes .*[(]$spare_total bytes[)]$" "^total size .*[(]$((total + spare_total)) bytes[)]$" "^largest +$K5, " \
  '^updated under 1h +5$' '^temporary files +0$'

# --- fsck on a clean store ---
C fsck
ok "fsck on a clean store: exit 0, clean" rc_is 0 contains "$OUT" "The store is clean."
C fsck --json
ok "fsck --json: clean, 5 valid" js '.clean == true and .sessions == 5 and .valid == 5 and .findings == []'

# --- export, then import into an empty store ---
C export
ok "export: exit 0, 5 lines" rc_is 0 test "$(lines)" = 5
ok "export: one compact document per line" jsonl_compact "$O"
ok "export: every key" jsonl_keys_are "$O" "${keys[@]}"
cp "$O" "$IT_TMP/backup.jsonl"
C export --updated-after "$T_MID"
ok "export --updated-after T: only K1" rc_is 0 test "$(jq -r .key "$O")" = "$K1"
NEW=$IT_TMP/restored
ctl --data-dir "$NEW" import <"$IT_TMP/backup.jsonl"
ok "import into an empty store: exit 0, imported 5" rc_is 0 matches "$OUT" '^imported 5, skipped 0.*rejected 0'
ok "export then import gives byte-identical files" same_tree "$DATA" "$NEW"
ctl --data-dir "$NEW" import --json <"$IT_TMP/backup.jsonl"
ok "import again: all 5 skipped, exit 0" rc_is 0 js '.imported == 0 and .skipped == 5 and .rejected == 0'
jq -c "if .key == \"$K2\" then .version = 7 | .data = {\"restored\":true} else . end" "$IT_TMP/backup.jsonl" >"$IT_TMP/changed.jsonl"
ctl --data-dir "$NEW" import <"$IT_TMP/changed.jsonl"
ok "import without --force keeps the existing file" rc_is 0 cmp -s "$(path "$NEW" "$K2")" "$(path "$DATA" "$K2")"
ctl --data-dir "$NEW" import --force --json <"$IT_TMP/changed.jsonl"
ok "import --force overwrites: imported 5" rc_is 0 js '.imported == 5 and .skipped == 0'
ok "import --force keeps the line's version and timestamps" jqf ".version == 7 and .data == {\"restored\":true} and .updated == \"$(jq -r .updated "$(path "$DATA" "$K2")")\"" "$(path "$NEW" "$K2")"
NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
good() { printf '{"key":"%s","version":2,"created":"%s","updated":"%s","meta":{},"data":null}' "$1" "$NOW" "$NOW"; }
{
  good IMPORT01; echo                                             # 1 ok
  echo 'this is not json'                                         # 2 reject
  echo                                                            # 3 blank: ignored
  good importlc | sed 's/importlc/abcdefgh/'; echo                # 4 reject: non-canonical key
  good TYPES001 | sed 's/"version":2/"version":"2"/'; echo        # 5 reject: wrong type
  good NODATA01 | sed 's/,"data":null//'; echo                    # 6 reject: no data
  good IMPORT02; echo                                             # 7 ok
  echo '[1,2,3]'                                                  # 8 reject: not an object
  good EXTRA001 | sed 's/}$/,"colour":"red"}/'; echo              # 9 reject: unknown field
  good IMPORT01; echo                                             # 10 skipped: already there
} >"$IT_TMP/mixed.jsonl"
ctl --data-dir "$NEW" import <"$IT_TMP/mixed.jsonl"
ok "import with rejects: exit 1, counts and line numbers" \
  rc_is 1 test "$OUT" = "imported 2, skipped 1 (already in the store; --force overwrites), rejected 6 (lines 2, 4, 5, 6, 8, 9)"
ok "import: each reject explained on stderr" file_matches_all "$E" \
  '^sessionctl import: line 2: ' '^sessionctl import: line 4: ' '^sessionctl import: line 5: ' \
  '^sessionctl import: line 6: ' '^sessionctl import: line 8: ' '^sessionctl import: line 9: '
ok "import: the good lines were written" test -f "$(path "$NEW" IMPORT01)" -a -f "$(path "$NEW" IMPORT02)" -a ! -e "$(path "$NEW" TYPES001)"
rm -f "$(path "$NEW" IMPORT01)" "$(path "$NEW" IMPORT02)"
ctl --data-dir "$NEW" import --json <"$IT_TMP/mixed.jsonl"
ok "import --json: rejects with line numbers" \
  rc_is 1 js '.imported == 2 and .skipped == 1 and .rejected == 6 and ([.rejects[].line] == [2,4,5,6,8,9]) and all(.rejects[]; (.reason|length) > 0)'

# --- a damaged store: every command reports and carries on ---
BAD=$IT_TMP/bad
ctl --data-dir "$BAD" import <"$IT_TMP/backup.jsonl"
B=$BAD/sessions
mkdir -p "$B/TR" "$B/WK" "$B/NJ" "$B/TY" "$B/EM" "$B/DI"
head -c 60 "$(path "$DATA" "$K1")" >"$B/TR/TRUNC001.json"                       # truncated
cp "$(path "$DATA" "$K2")" "$B/WK/WKEY0001.json"                                 # wrong key inside
echo 'not json at all' >"$B/NJ/NJSON001.json"                                    # not JSON
jq '.version = "2" | .meta = []' "$(path "$DATA" "$K3")" | sed "s/$K3/TYPES001/" >"$B/TY/TYPES001.json" # wrong types
: >"$B/EM/EMPTY001.json"                                                          # empty
mkdir "$B/DI/DIRSESS1.json"                                                       # a folder where a file belongs
echo 'notes' >"$B/TR/README"                                                      # stray file
echo 'notes' >"$B/notes.txt"                                                      # stray at the top
fan=ZZ; [ "${K4:0:2}" = ZZ ] && fan=YY
mkdir -p "$B/$fan"; cp "$(path "$DATA" "$K4")" "$B/$fan/$K4.json"               # wrong fan-out folder
echo '{"key":' >"$B/TR/.TRUNC001.AbCdEf.tmp"; touch -d '2 minutes ago' "$B/TR/.TRUNC001.AbCdEf.tmp" # crash leftover
echo '{"key":' >"$B/TR/.TRUNC001.GhIjKl.tmp"                                      # a write in progress
damaged=(TR/TRUNC001.json WK/WKEY0001.json NJ/NJSON001.json TY/TYPES001.json EM/EMPTY001.json)
stray=(DI/DIRSESS1.json TR/README notes.txt "$fan/$K4.json")
cp -a "$B" "$IT_TMP/bad-orig"
mentions_all() { local p; for p in "${damaged[@]}" "${stray[@]}"; do grep -qF "sessions/$p: " "$E" || return 1; done; }

ctl --data-dir "$BAD" list
ok "damaged: list exits 1 and still lists the 5 good sessions" rc_is 1 test "$(lines)" = 6
ok "damaged: list names every damaged and stray entry on stderr" mentions_all
ctl --data-dir "$BAD" stats --json
ok "damaged: stats exits 1 and counts" rc_is 1 js '.sessions == 5 and .damaged == 5 and .stray == 4 and .temp_files == 2'
ok "damaged: stats names every damaged and stray entry" mentions_all
ctl --data-dir "$BAD" export
ok "damaged: export exits 1, exports the 5 good ones" rc_is 1 test "$(lines)" = 5
ok "damaged: export names every damaged and stray path" mentions_all
ctl --data-dir "$BAD" gc --older-than 1h
ok "damaged: gc exits 1, deletes nothing fresh" rc_is 1 test "$(find "$B" -name '*.json' -type f | wc -l)" = 11
ok "damaged: gc names every damaged and stray path" mentions_all
ctl --data-dir "$BAD" show TRUNC001
ok "damaged: show reports it, exit 1" rc_is 1 contains "$ERR" "TRUNC001: damaged: not valid JSON"
ctl --data-dir "$BAD" show TRUNC001 --raw
ok "damaged: show --raw prints the bytes anyway, exit 1" rc_is 1 cmp -s "$O" "$B/TR/TRUNC001.json"
ctl --data-dir "$BAD" show DIRSESS1
ok "damaged: show of a folder reports it, exit 1" rc_is 1 contains "$ERR" "cannot read"
ctl --data-dir "$BAD" fsck
ok "fsck: exit 1, NOT clean" rc_is 1 contains "$OUT" "The store is NOT clean"
ctl --data-dir "$BAD" fsck --json
ok "fsck --json: 10 problems, 5 valid, not clean" js '.clean == false and .problems == 10 and .valid == 5 and .sessions == 10'
for p in "${damaged[@]}"; do
  ok "fsck finds damaged $p" js "any(.findings[]; .kind == \"damaged\" and .problem and (.path|endswith(\"sessions/$p\")))"
done
for p in "${stray[@]}"; do
  ok "fsck finds stray $p" js "any(.findings[]; .kind == \"stray\" and .problem and (.path|endswith(\"sessions/$p\")))"
done
ok "fsck: wrong key, wrong types, truncated, fan-out explained" js '(.findings | map(.detail) | join("|")) as $d | ($d|test("not the file.s key")) and ($d|test("version")) and ($d|test("not valid JSON")) and ($d|test("wrong fan-out folder")) and ($d|test("folder where a session file belongs"))'
ok "fsck lists the crash leftover as a problem" js 'any(.findings[]; .kind == "temp" and .problem and (.path|endswith("AbCdEf.tmp")))'
ok "fsck lists the write in progress, not as a problem" js 'any(.findings[]; .kind == "writing" and (.problem|not) and (.path|endswith("GhIjKl.tmp")))'
ctl --data-dir "$BAD" fsck --repair --json
ok "fsck --repair: exit 1 (it found problems), all 10 repaired" rc_is 1 js '.problems == 10 and .repaired == 10'
Q=$BAD/quarantine
ok "fsck --repair: damaged and stray entries moved to quarantine/, bytes intact" \
  in_quarantine "$Q" "$IT_TMP/bad-orig" "${damaged[@]}" "${stray[@]}"
ok "fsck --repair: nothing left where it was" none_exist "$B" "${damaged[@]}" "${stray[@]}"
ok "fsck --repair: old temporary file removed" not test -e "$B/TR/.TRUNC001.AbCdEf.tmp"
ok "fsck --repair: the young temporary file kept" test -e "$B/TR/.TRUNC001.GhIjKl.tmp"
ok "fsck --repair: the 5 good sessions untouched" same_sessions "$BAD" "$DATA" "${keys[@]}"
touch "$B/TR/.TRUNC001.GhIjKl.tmp"
ctl --data-dir "$BAD" fsck
ok "fsck after --repair: exit 0, clean" rc_is 0 contains "$OUT" "The store is clean."
ctl --data-dir "$BAD" fsck --repair
ok "fsck --repair on a clean store: exit 0" [ "$RC" = 0 ]
echo 'garbage' >"$B/TR/TRUNC001.json"
good TRUNC001 >"$IT_TMP/one.jsonl"; echo >>"$IT_TMP/one.jsonl"
ctl --data-dir "$BAD" import --force <"$IT_TMP/one.jsonl"
ok "import --force replaces a damaged file" rc_is 0 jqf '.key == "TRUNC001"' "$B/TR/TRUNC001.json"

# --- damaged sessions that have a spare: one --repair leaves a clean store ---
# Four keys in one folder, so that the scan meets some spares before their
# session and some after it. Before the spare moved with its session, the
# first run left each spare behind (or reported it as a stray) and the
# second fsck found 4 strays: "a second fsck finds nothing" failed so.
SP=$IT_TMP/spares
spk=(SPARE001 SPARE002 SPARE003 SPARE004)
for k in "${spk[@]}"; do good "$k"; echo; done >"$IT_TMP/spares.jsonl"
ctl --data-dir "$SP" import <"$IT_TMP/spares.jsonl"
ctl --data-dir "$SP" import --force <"$IT_TMP/spares.jsonl"  # a save each: the first version becomes the spare
ok "spares: each save left its spare" test "$(find "$SP/sessions/SP" -name '.SPARE00?.spare' | wc -l)" = 4
for k in "${spk[@]}"; do echo garbage >"$(path "$SP" "$k")"; done
ctl --data-dir "$SP" fsck --repair --json
ok "spares: fsck --repair finds the 4 damaged sessions and repairs them" \
  rc_is 1 js '.problems == 4 and .repaired == 4 and all(.findings[]; .kind == "damaged")'
ok "spares: each session and its spare are in quarantine/" \
  test "$(cd "$SP/quarantine" && ls -A | sort | tr '\n' ' ')" = \
  "SP_.SPARE001.spare SP_.SPARE002.spare SP_.SPARE003.spare SP_.SPARE004.spare SP_SPARE001.json SP_SPARE002.json SP_SPARE003.json SP_SPARE004.json "
ok "spares: the quarantined spare is the first version" jqf '.key == "SPARE001"' "$SP/quarantine/SP_.SPARE001.spare"
ok "spares: nothing left in the folder" test -z "$(ls -A "$SP/sessions/SP")"
ctl --data-dir "$SP" fsck --json
ok "spares: a second fsck finds nothing" rc_is 0 js '.problems == 0 and .clean and (.findings | length) == 0'

# --- unreadable entries (root reads everything: drop the capabilities) ---
UNR=$IT_TMP/unreadable
ctl --data-dir "$UNR" import <"$IT_TMP/backup.jsonl"
chmod 000 "$(path "$UNR" "$K1")"
NOCAP=(setpriv --bounding-set=-dac_override,-dac_read_search)
if command -v setpriv >/dev/null && "${NOCAP[@]}" true 2>/dev/null &&
   ! "${NOCAP[@]}" cat "$(path "$UNR" "$K1")" >/dev/null 2>&1; then
  CTL_PREFIX=("${NOCAP[@]}")
  ctl --data-dir "$UNR" list
  ok "unreadable file: list exits 1, lists the other 4" rc_is 1 test "$(lines)" = 5
  ok "unreadable file: list says why" contains "$ERR" "$K1.json: cannot read: Permission denied"
  ctl --data-dir "$UNR" export
  ok "unreadable file: export exits 1, exports the other 4" rc_is 1 test "$(lines)" = 4
  ctl --data-dir "$UNR" fsck --repair --json
  ok "unreadable file: fsck reports it" \
    rc_is 1 js "any(.findings[]; .kind == \"unreadable\" and (.path|endswith(\"$K1.json\")))"
  ok "unreadable file: fsck leaves it in place" test -e "$(path "$UNR" "$K1")"
  chmod 644 "$(path "$UNR" "$K1")"
  other=$K2; [ "${K2:0:2}" = "${K1:0:2}" ] && other=$K3
  chmod 000 "$UNR/sessions/${other:0:2}"
  ctl --data-dir "$UNR" fsck --json
  ok "unreadable folder: fsck reports it" \
    rc_is 1 js "any(.findings[]; .kind == \"unreadable\" and (.path|endswith(\"/${other:0:2}\")))"
  ctl --data-dir "$UNR" stats --json
  ok "unreadable folder: stats carries on with the rest" rc_is 1 js '.sessions >= 3 and .stray == 1'
  chmod 755 "$UNR/sessions/${other:0:2}"
  CTL_PREFIX=()
else
  echo "skip unreadable-file checks: cannot drop root's read override here (no setpriv)"
fi

# --- gc on the served store ---
gen OGC 3 "$OLD" >"$IT_TMP/old.jsonl"
C import <"$IT_TMP/old.jsonl"
eq "gc fixture: 3 old sessions imported next to the 5 fresh" "$RC $OUT" "0 imported 3, skipped 0 (already in the store; --force overwrites), rejected 0"
C list --updated-before 1d --json
ok "list --updated-before 1d: the 3 old ones" js '[.[].key] == ["OGC00001","OGC00002","OGC00003"]'
C stats --json
ok "stats: the 3 old ones are in '1d to 7d'" js '.sessions == 8 and .updated."1d_to_7d" == 3 and .updated.under_1h == 5'
C gc --older-than 1h --dry-run --json
ok "gc --dry-run: would delete the 3" rc_is 0 js '.would_delete == 3 and .deleted == 0 and .dry_run == true'
ok "gc --dry-run: deletes nothing" test -e "$(path "$DATA" OGC00001)"
C gc --older-than 1h
ok "gc: exit 0, 3 deleted" rc_is 0 test "$(grep -c ' deleted$' "$O")" = 3
ok "gc: says what it deleted" contains "$OUT" "deleted 3 sessions not updated since"
ok "gc: the old files are gone" not test -e "$(path "$DATA" OGC00001)"
eq "gc: the fresh ones stay" "$(session_files)" 5
req GET "/api/load?key=OGC00002"
eq "gc: sessiond no longer finds a deleted session" "$STATUS" 404
C gc --older-than 1h --json
ok "gc again: nothing to do" rc_is 0 js '.deleted == 0 and .sessions == []'

# --- gc racing a storm of saves on the sessions it expires ---
N=120
gen RCE "$N" "$OLD" >"$IT_TMP/race.jsonl"
C import <"$IT_TMP/race.jsonl"
eq "race fixture: $N old sessions" "$RC" 0
declare -A token   # imported sessions keep their tokens: they derive from the key
for i in $(seq 1 "$N"); do
  k=$(printf 'RCE%05d' "$i")
  token[$k]=$("$SESSIONCTL" --data-dir "$DATA" token --json "$k" | jq -r .token)
done
storm() { # WORKER: at most 150 saves on random RCE keys, within the deadline
  local w=$1 n=0 k r code v
  while [ "$n" -lt 150 ] && [ "$SECONDS" -lt "$deadline" ]; do
    k=$(printf 'RCE%05d' $((RANDOM % N + 1)))
    r=$(curl -s --max-time 10 -w '\n%{http_code}' -X POST "${CT[@]}" -H "Authorization: Bearer ${token[$k]}" \
      -d "{\"key\":\"$k\",\"data\":{\"w\":$w,\"n\":$n}}" "$BASE/api/save")
    code=${r##*$'\n'} v=0
    [[ $r =~ \"version\":([0-9]+) ]] && v=${BASH_REMATCH[1]}
    echo "$k $code $v" >>"$IT_TMP/storm.$w"
    n=$((n + 1))
  done
}
deadline=$((SECONDS + 60))
pids=()
for w in 1 2 3 4; do : >"$IT_TMP/storm.$w"; storm "$w" & pids+=($!); done
# Let the storm get going (some sessions saved, most not yet), then expire
# with two gc processes at once, racing the saves and each other.
for _ in $(seq 1 100); do [ "$(cat "$IT_TMP"/storm.* | wc -l)" -ge 20 ] && break; sleep 0.1; done
"$SESSIONCTL" --data-dir "$DATA" gc --older-than 1h --json >"$IT_TMP/gc1.json" 2>"$IT_TMP/gc1.err" & g1=$!
"$SESSIONCTL" --data-dir "$DATA" gc --older-than 1h --json >"$IT_TMP/gc2.json" 2>"$IT_TMP/gc2.err" & g2=$!
wait "$g1"; rc1=$?
wait "$g2"; rc2=$?
wait "${pids[@]}"
eq "race: both gc runs exit 0" "$rc1 $rc2" "0 0"
ok "race: no sanitizer report" not grep -qE 'Sanitizer|runtime error' "$IT_TMP"/gc?.err
cat "$IT_TMP"/storm.* >"$IT_TMP/storm.all"
acked=$(awk '$2 == 200' "$IT_TMP/storm.all" | wc -l)
gone=$(awk '$2 == 404' "$IT_TMP/storm.all" | wc -l)
deleted=$(( $(jq .deleted "$IT_TMP/gc1.json") + $(jq .deleted "$IT_TMP/gc2.json") ))
kept=$(( $(jq .kept_updated "$IT_TMP/gc1.json") + $(jq .kept_updated "$IT_TMP/gc2.json") ))
echo "race: $(wc -l <"$IT_TMP/storm.all") saves ($acked acknowledged, $gone answered 404); gc deleted $deleted, kept $kept saved under its nose"
ok "race: the storm and gc really overlapped (saves acknowledged, sessions deleted, saves refused)" \
  test "$acked" -gt 0 -a "$deleted" -gt 0 -a "$gone" -gt 0
eq "race: every save answered 200 or 404" "$(awk '$2 != 200 && $2 != 404' "$IT_TMP/storm.all" | wc -l)" 0
# The highest acknowledged version of each key must still be there.
undone=0
while read -r k v; do
  f=$(path "$DATA" "$k")
  if [ ! -f "$f" ] || [ "$(jq .version "$f")" -lt "$v" ]; then undone=$((undone + 1)); echo "  undone: $k acked v$v"; fi
done < <(awk '$2 == 200 { if ($3 > m[$1]) m[$1] = $3 } END { for (k in m) print k, m[k] }' "$IT_TMP/storm.all")
eq "race: no acknowledged save was undone" "$undone" 0
# A key that answered 404 had been deleted; nothing brings it back.
back=0
while read -r k; do [ -e "$(path "$DATA" "$k")" ] && back=$((back + 1)); done < <(awk '$2 == 404 {print $1}' "$IT_TMP/storm.all" | sort -u)
eq "race: every session a save found missing is gone" "$back" 0
left=$(find "$DATA/sessions" -name 'RCE*.json' | wc -l)
eq "race: every session is either whole or gone (survivors + deleted = $N)" "$((left + deleted))" "$N"
C list --updated-before 1h --json
ok "race: no old session survived gc" js 'length == 0'
ok "race: every survivor was saved after gc's cut (version >= 2)" versions_at_least "$DATA" 'RCE*.json' 2
eq "race: no temporary file left behind" "$(find "$DATA/sessions" -name '.*.tmp' | wc -l)" 0
C fsck --json
ok "race: fsck finds the store clean" rc_is 0 js ".clean == true and .valid == $((left + 5))"

it_done
