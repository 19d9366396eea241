#!/usr/bin/env bash
# Run libFuzzer harnesses (built by make fuzz-build into build/fuzz/) for
# FUZZ_SECONDS each (default 60), one after the other. Each works on a copy
# of its committed corpus in build/fuzz/corpus/NAME (new inputs it finds
# land there, never in tests/fuzz/corpus); crashes go to
# build/fuzz/artifacts/NAME/. Prints one line per harness and exits non-zero
# when any harness crashed or did not run.
#   tests/fuzz/run.sh fuzz_body fuzz_etag ...   (default: every harness)
# FUZZ_MAX_LEN (default 16384) bounds an input; FUZZ_ARGS adds libFuzzer flags,
# e.g. FUZZ_ARGS='-fork=1 -ignore_crashes=1' keeps fuzzing past a crash and
# collects every crashing input.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
maxlen=${FUZZ_MAX_LEN:-16384}
case $secs in ''|*[!0-9]*) echo "run.sh: FUZZ_SECONDS must be a number of seconds" >&2; exit 2;; esac
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//'))
bad=()
for n in "${names[@]}"; do
  bin=build/fuzz/$n work=build/fuzz/corpus/$n art=build/fuzz/artifacts/$n log=build/fuzz/$n.log
  if [ ! -x "$bin" ]; then echo "FAIL $n: $bin is missing (make fuzz-build)"; bad+=("$n"); continue; fi
  rm -rf "$art" build/fuzz/tmp; mkdir -p "$work" "$art" build/fuzz/tmp
  export SD_FUZZ_TMP=$PWD/build/fuzz/tmp  # the store of the fuzz_app.h harnesses
  cp -p tests/fuzz/corpus/"$n"/* "$work"/ 2>/dev/null
  dict=()
  [ -f tests/fuzz/dict/"$n".dict ] && dict=(-dict=tests/fuzz/dict/"$n".dict)
  # libFuzzer stops itself after max_total_time; timeout is the backstop.
  timeout --kill-after=10 $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
    -max_len="$maxlen" -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" ${FUZZ_ARGS:-} \
    "$work" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  if [ -z "$runs" ]; then # -fork=N prints no final stats: its last "#RUNS: cov:" line
    runs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -n1)
    [ -n "$runs" ] && eps=$((runs / (secs > 0 ? secs : 1)))
  fi
  size=$(ls "$work" | wc -l)
  found=$(ls "$art" | wc -l) # -fork=N can end with 0 after saving crashes
  if [ $rc -eq 0 ] && [ "$found" -eq 0 ]; then
    printf 'PASS %-12s %4ss  %10s runs  %6s exec/s  corpus %s files\n' "$n" "$secs" "${runs:-?}" "${eps:-?}" "$size"
  else
    printf 'FAIL %-12s exit %s after %s runs, %s crashing inputs in %s; log %s\n' "$n" "$rc" "${runs:-?}" "$found" "$art" "$log"
    # Each crashing input once more, alone, for what broke; the distinct
    # failures with their counts (-fork=N -ignore_crashes=1 can save many).
    for a in "$art"/*; do
      [ -f "$a" ] || continue
      "$bin" "$a" 2>&1 | grep -m1 -E 'invariant broken|ERROR: (AddressSanitizer|LeakSanitizer)|runtime error|ERROR: libFuzzer' |
        sed -E 's/^==[0-9]+==//; s/(invariant broken: .{0,70}).*/\1/'
    done | sort | uniq -c | sort -rn | head -n 8 | sed 's/^/    | /'
    bad+=("$n")
  fi
  rm -rf build/fuzz/tmp  # stores a crashed or killed process left
done
[ ${#bad[@]} -eq 0 ] || { echo "crashed: ${bad[*]}"; exit 1; }
echo "fuzz: ${#names[@]} harnesses ran ${secs}s each without a crash"
