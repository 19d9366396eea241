#!/usr/bin/env bash
# Run libFuzzer harnesses (built by make fuzz-build into build/fuzz/) for
# FUZZ_SECONDS each (default 60), one after the other. Each works on a copy
# of its committed corpus in build/fuzz/corpus/NAME (new inputs it finds
# land there, never in tests/fuzz/corpus); crashes go to
# build/fuzz/artifacts/NAME/. Prints one line per harness and exits non-zero
# when any harness crashed or did not run.
#   tests/fuzz/run.sh fuzz_body fuzz_etag ...   (default: every harness)
# FUZZ_MAX_LEN (default 16384) bounds an input; FUZZ_ARGS adds libFuzzer flags.
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
  mkdir -p "$work" "$art"
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
  size=$(ls "$work" | wc -l)
  if [ $rc -eq 0 ]; then
    printf 'PASS %-12s %4ss  %10s runs  %6s exec/s  corpus %s files\n' "$n" "$secs" "${runs:-?}" "${eps:-?}" "$size"
  else
    printf 'FAIL %-12s exit %s after %s runs; log %s; artifacts in %s\n' "$n" "$rc" "${runs:-?}" "$log" "$art"
    grep -m3 -E 'invariant broken|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error' "$log" | sed 's/^/    | /'
    bad+=("$n")
  fi
done
[ ${#bad[@]} -eq 0 ] || { echo "crashed: ${bad[*]}"; exit 1; }
echo "fuzz: ${#names[@]} harnesses ran ${secs}s each without a crash"
