#!/usr/bin/env bash
# Run every test: the cmocka unit suites and the integration scripts (real
# nginx + sessiond), first against the normal build, then against the
# AddressSanitizer + UBSan build; then the unit suites under valgrind.
# Logs go to build/test-logs/. Ends with one line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
logs=$root/build/test-logs
rm -rf "$logs"; mkdir -p "$logs"
pass=0 fail=0 failed=()

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=exitcode=86

run() { # NAME LOG CMD...
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    pass=$((pass + 1)); printf 'PASS %-48s %4ss\n' "$name" $((SECONDS - t0))
  else
    fail=$((fail + 1)); failed+=("$name"); printf 'FAIL %-48s %4ss  (log: %s)\n' "$name" $((SECONDS - t0)) "$log"
    tail -n 25 "$log" | sed 's/^/    | /'
  fi
  grep -hE '^\[  (PASSED|FAILED)  \]' "$log" | sed 's/^/    /'
}

variant() { # LABEL BUILD_DIR SESSIOND
  local label=$1 dir=$2
  export SD_BUILD=$root/$dir SESSIOND=$root/$3 SESSIONCTL=$root/$dir/sessionctl LOADGEN=$root/$dir/loadgen
  mkdir -p "$logs/$label"
  echo "== $label: unit"
  for t in "$dir"/tests/test_*; do
    [ -x "$t" ] || continue
    run "$label/unit/$(basename "$t")" "$logs/$label/$(basename "$t").log" "$t"
  done
  echo "== $label: fuzz corpus replay (tests/fuzz/corpus)"
  for t in "$dir"/tests/replay_fuzz_*; do
    [ -x "$t" ] || continue
    local h=${t##*/replay_}
    run "$label/fuzz/$h" "$logs/$label/replay_$h.log" "$t" "tests/fuzz/corpus/$h"
  done
  echo "== $label: integration (nginx + sessiond)"
  for t in tests/integration/*.sh; do
    [ "$(basename "$t")" = lib.sh ] && continue   # the scripts' shared helpers
    run "$label/integration/$(basename "$t" .sh)" "$logs/$label/$(basename "$t" .sh).log" bash "$t"
  done
  # The JavaScript client (Node, then headless Chromium): once, on the normal build.
  if [ "$label" = normal ]; then
    echo "== $label: browser client (Node + Chromium)"
    run "$label/client" "$logs/$label/client.log" bash tests/client/run.sh
  fi
}

# ONLY=valgrind (make valgrind) runs just the valgrind pass.
if [ "${ONLY:-}" != valgrind ]; then
  # The docs: every relative link, anchor and repository path resolves.
  echo "== docs: links, anchors, paths"
  run "docs/links" "$logs/docs-links.log" python3 tests/docs_links.py
  variant normal build cgi-bin/sessiond
  # The power-loss checker, short form, normal build only (it builds its own
  # broken variants into build/crash/).
  echo "== normal: power-loss crash states"
  run "normal/power-loss/short" "$logs/normal/power-loss.log" env SESSIONCTL="$root/build/sessionctl" \
    CRASH_SESSIOND="$root/cgi-bin/sessiond" bash tests/crash/run.sh --short
  variant asan-ubsan build/san build/san/sessiond
fi

if [ "${SKIP_VALGRIND:-}" != 1 ] && command -v valgrind >/dev/null; then
  echo "== valgrind: unit"
  mkdir -p "$logs/valgrind"
  for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    run "valgrind/unit/$(basename "$t")" "$logs/valgrind/$(basename "$t").log" \
      env SD_UNDER_VALGRIND=1 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
      --error-exitcode=97 --trace-children=no "$t"
  done
  echo "== valgrind: sessiond through nginx"
  run "valgrind/integration/api" "$logs/valgrind/api.log" \
    env SESSIOND="$root/tests/valgrind-sessiond.sh" SESSIOND_REAL="$root/cgi-bin/sessiond" bash tests/integration/api.sh
fi

echo
[ $fail -eq 0 ] || printf 'failed: %s\n' "${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
