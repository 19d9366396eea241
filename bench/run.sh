#!/usr/bin/env bash
# `make bench`: sessiond side by side with its ceilings, measured in the
# same run on the same machine, printed as one table.
#
# For each durability mode (full, then none) it starts its own nginx +
# sessiond on a free loopback port (scripts/stack.sh), pre-creates
# BENCH_SESSIONS sessions holding bench/session-data.json (~3 KB), and
# measures at BENCH_CONNECTIONS connections (default 100):
#   load        wrk GET /api/load (random pre-created key)
#               vs the FastCGI ceiling (below), and, as information, the
#               same wrk against nginx serving that very document (the
#               bytes a load returns) as a static file
#   save        wrk POST /api/save of the document (unconditional)
#               vs the PHP baseline's save (below), and, as information,
#               build/bench/rawfs --mode replace: the same atomic replace
#               (the spare written over, swapped in by RENAME_EXCHANGE; fsync
#               of file and folder for full)
#               with as many writer threads as connections
#   instantiate wrk POST /api/instantiate of the document
#               vs the PHP baseline's instantiate, and, as information,
#               build/bench/rawfs --mode create (O_TMPFILE, linkat)
#   load, save  again with fastcgi_keep_conn on (nginx upstream keepalive)
#   mixed       the load generator, 80/15/5 load/save/instantiate, per-endpoint p99
#   users, contention   the load generator with BENCH_BIG_USERS (1000) virtual
#               users; must end with 0 errors and 0 lost updates
# and sessiond's peak resident memory (VmHWM) after the 1000-user runs.
# Beside sessiond, behind the same nginx configuration, with the same wrk
# scripts, each measured right after the sessiond figure it is compared with:
#   FastCGI ceiling  build/bench/fcgi_ceiling (sessiond's thread model,
#               --threads BENCH_THREADS) answering every request with the
#               bytes a load returns; load is reported as a ratio of it
#   PHP baseline     bench/php/{instantiate,load,save}.php under PHP-FPM
#               (pm = static, BENCH_PHP_CHILDREN children, its own master
#               on a unix socket), BENCH_SESSIONS sessions of its own
#   architecture ceilings  build/bench/fcgi_ceiling in sessiond's thread
#               model doing per request the least file-system work each
#               endpoint's guarantees need, and nothing else (no JSON, no
#               canonical layout, no tokens), on a copy of sessiond's
#               pre-created sessions, one nginx each, per durability:
#                 --mode load-file  open KEY.json, F_OFD read lock, read,
#                                   send (load / it)
#                 --mode replace    read the body; flock KEY.json with the
#                                   inode check, read it; the spare written
#                                   over, [fdatasync], RENAME_EXCHANGE,
#                                   [folder fsync] (save / it)
#                 --mode create     read the body; O_TMPFILE, [fdatasync],
#                                   linkat, [folder fsync] (instantiate / it)
#               ([...]: with full only); measured third in each round of
#               the duel they belong to
# and the issue's targets as same-run ratios, each marked met or missed,
# each with two information rows from the architecture ceiling: sessiond
# / it (what is left to sessiond's own work) and it / the target's
# baseline (whether any implementation of this design could meet the
# target on this machine).
# Same tool on both sides of every ratio: wrk for HTTP, rawfs for files.
#
# Knobs (environment): BENCH_DURATION (5s per measurement), BENCH_CONNECTIONS
# (100), BENCH_WRK_THREADS (2), BENCH_SESSIONS (1000), BENCH_BIG_USERS (1000),
# BENCH_THREADS (sessiond --threads, default 32), BENCH_KEEPALIVE (nginx
# upstream keepalive per worker with keep-conn on, default 16),
# BENCH_KEEP_THREADS (sessiond --threads with keep-conn on, default 64),
# BENCH_CREATE_OPS (cap on raw creates per measurement, default 30000),
# BENCH_PHP_CHILDREN (8), BENCH_ROUNDS (3: sessiond and the baseline it is
# compared with are measured alternately that many times, and the median
# round of each is reported), BENCH_QUICK=1 (skip the load generator and
# keep-conn runs: only the wrk rows, the ceilings and the PHP baseline),
# BENCH_TMP (where data goes, default /tmp), BENCH_OUT (the table as
# Markdown, default build/bench/results.md).
# Everything listens on 127.0.0.1; every run is bounded by its duration and
# by timeout(1). Takes about twelve minutes (the architecture ceilings add
# about two). Other work on the machine
# (and the writeback of earlier runs) shows up in the numbers: run it on a
# quiet machine, and compare ratios rather than absolute rates.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/stack.sh
. "$root/scripts/stack.sh"

DUR=${BENCH_DURATION:-5s}
CONN=${BENCH_CONNECTIONS:-100}
WT=${BENCH_WRK_THREADS:-2}
NSESS=${BENCH_SESSIONS:-1000}
BIG=${BENCH_BIG_USERS:-1000}
THREADS=${BENCH_THREADS:-32}
KEEPALIVE=${BENCH_KEEPALIVE:-16}
KEEP_THREADS=${BENCH_KEEP_THREADS:-64}
CREATE_OPS=${BENCH_CREATE_OPS:-30000}
OUT=${BENCH_OUT:-$root/build/bench/results.md}
LOADGEN=${LOADGEN:-$root/build/loadgen}
RAWFS=${RAWFS:-$root/build/bench/rawfs}
CEILING=${CEILING:-$root/build/bench/fcgi_ceiling}
PHP_CHILDREN=${BENCH_PHP_CHILDREN:-8}
QUICK=${BENCH_QUICK:-}
ROUNDS=${BENCH_ROUNDS:-3}
PHP_FPM=$(command -v php-fpm8.2 || command -v php-fpm || ls /usr/sbin/php-fpm* 2>/dev/null | head -n1)
secs=${DUR%s}

for tool in wrk jq curl nginx; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (make deps)" >&2; exit 1; }
done
[ -n "$PHP_FPM" ] || { echo "bench: php-fpm is missing (make bench installs it)" >&2; exit 1; }
[ -x "$LOADGEN" ] && [ -x "$RAWFS" ] && [ -x "$CEILING" ] || { echo "bench: build first (make check)" >&2; exit 1; }

tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/sessiond-bench.XXXXXX")
BASE_PIDS=()   # the baselines' servers (start_baselines)
ARCH_PIDS=()   # the architecture ceilings' servers (start_arch)
cleanup() { stack_stop; STACK_PIDS=("${ARCH_PIDS[@]}" "${BASE_PIDS[@]}"); stack_stop; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
export BENCH_DIR=$root/bench BENCH_KEYS=$tmp/keys BENCH_DATA=$tmp/data.json
jq -c . bench/session-data.json > "$BENCH_DATA"
printf '{"data":%s}' "$(cat "$BENCH_DATA")" > "$tmp/inst.json"
mkdir -p "$tmp/static" "$(dirname "$OUT")"

problems=()
rows=()
row() { rows+=("$(printf '| %s | %s | %s | %s | %s | %s | %s |' "$@")"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# wrk_run LABEL SCRIPT URL: sets RPS P50 P99
wrk_run() {
  local label=$1 script=$2 url=$3 out line
  settle
  # one second of warm-up (connections, caches, thread pools), not measured
  timeout 60 wrk -t"$WT" -c"$CONN" -d1s --timeout 10s -s "$root/bench/$script" "$url" >/dev/null 2>&1
  out=$(timeout $((secs + 60)) wrk -t"$WT" -c"$CONN" -d"$DUR" --timeout 10s -s "$root/bench/$script" "$url" 2>&1)
  line=$(grep '^WRK ' <<<"$out")
  if [ -z "$line" ]; then
    echo "bench: wrk failed for $label:" >&2; echo "$out" >&2
    problems+=("$label: wrk failed"); RPS=0 P50=- P99=-; return
  fi
  RPS=$(field rps "$line"); P50=$(field p50_ms "$line"); P99=$(field p99_ms "$line")
  local errs non2xx
  errs=$(field errors "$line"); non2xx=$(field non2xx "$line")
  [ "$errs" = 0 ] && [ "$non2xx" = 0 ] || problems+=("$label: $errs socket errors, $non2xx non-2xx answers")
  printf '  %-34s %10s req/s  p50 %8s ms  p99 %8s ms\n' "$label" "$RPS" "$P50" "$P99" >&2
}

# Before each measurement: write back what the last one left dirty, so
# that one measurement's writeback does not land in the next one.
settle() { timeout 120 sync; }

# rawfs_run LABEL MODE DURABILITY [WRITERS]: sets RPS P50 P99. Creates are
# capped at BENCH_CREATE_OPS: without fsync they run at tens of thousands
# a second, and hundreds of thousands of files only slow what follows.
rawfs_run() {
  local label=$1 line cap=()
  [ "$2" = create ] && cap=(--ops "$CREATE_OPS")
  settle
  line=$(timeout $((secs + 120)) "$RAWFS" --dir "$tmp/rawfs-$2-$3-${4:-$CONN}" --mode "$2" --durability "$3" \
    --writers "${4:-$CONN}" --data "$tmp/stored.json" --duration "$DUR" "${cap[@]}")
  if [ -z "$line" ]; then problems+=("$label: rawfs failed"); RPS=0 P50=- P99=-; return; fi
  RPS=$(field ops_per_s "$line"); P50=$(field p50_ms "$line"); P99=$(field p99_ms "$line")
  [ "$(field errors "$line")" = 0 ] || problems+=("$label: rawfs errors")
  printf '  %-34s %10s ops/s  p50 %8s ms  p99 %8s ms\n' "$label" "$RPS" "$P50" "$P99" >&2
}

# lg_run LABEL ARGS...: the load generator; sets RPS P50 P99 and J (json)
lg_run() {
  local label=$1; shift
  J=$tmp/lg-$RANDOM.json
  settle
  timeout $((secs + 180)) "$LOADGEN" --url "$BASE" --quiet --json "$J" "$@" > "$tmp/lg.out" 2>&1
  local rc=$?
  if [ ! -s "$J" ]; then
    problems+=("$label: load generator failed (exit $rc)"); cat "$tmp/lg.out" >&2; RPS=0 P50=- P99=-; return
  fi
  RPS=$(jq -r '.achieved_rps | . * 10 | round / 10' "$J")
  P50=$(jq -r '.latency_all.p50_ms | . * 1000 | round / 1000' "$J")
  P99=$(jq -r '.latency_all.p99_ms | . * 1000 | round / 1000' "$J")
  local bad
  bad=$(jq '.lost_updates + .mismatches + .transport_errors + .http_5xx + .unexpected_status + .unverified' "$J")
  [ "$rc" = 0 ] && [ "$bad" = 0 ] || { problems+=("$label: exit $rc, $(jq -c '{lost_updates,mismatches,transport_errors,http_5xx,unexpected_status,samples}' "$J")"); }
  printf '  %-34s %10s req/s  p50 %8s ms  p99 %8s ms  lost %s mismatches %s errors %s\n' "$label" "$RPS" "$P50" "$P99" \
    "$(jq .lost_updates "$J")" "$(jq .mismatches "$J")" "$(jq '.transport_errors + .http_5xx + .unexpected_status' "$J")" >&2
}

# start DURABILITY KEEP THREADS: a stack on $tmp/data-DURABILITY
start() {
  local d=$1 keep=$2 threads=$3
  PORT=$(free_port) || { echo "bench: no free port" >&2; exit 1; }
  BASE=http://127.0.0.1:$PORT
  RUN=$tmp/run-$d-$keep
  DATA=$tmp/data-$d
  # Every request comes from 127.0.0.1: limits off (LIMITS=off), or nginx's
  # limit_req and sessiond's miss limit would answer most of them 429.
  STACK_LIMITS=off STACK_KEEP_CONN=$keep STACK_UPSTREAM_KEEPALIVE=$KEEPALIVE STACK_STATIC_DIR=$tmp/static \
    stack_start "$RUN" "$PORT" "$DATA" --durability "$d" --threads "$threads" --log-level warn ||
    { echo "bench: the stack did not start" >&2; exit 1; }
  SD_PID=${STACK_PIDS[0]}
}

# instantiate NSESS sessions on $BASE; their keys go to $BENCH_KEYS, one
# "KEY" a line, or "KEY TOKEN" when the answer carries a write token.
instantiate_all() {
  local urls=() i n
  for ((i = 0; i < NSESS; i++)); do urls+=("$BASE/api/instantiate"); done
  timeout 300 curl -s --max-time 30 --parallel --parallel-max 32 -H 'Content-Type: application/json' \
    --data-binary "@$tmp/inst.json" "${urls[@]}" 2>/dev/null |
    jq -r 'if .token then "\(.key) \(.token)" else .key end' > "$BENCH_KEYS"
  n=$(grep -c . "$BENCH_KEYS")
  [ "$n" = "$NSESS" ] || { echo "bench: pre-created $n of $NSESS sessions on $BASE" >&2; exit 1; }
}

precreate() {
  instantiate_all
  local k; k=$(head -n1 "$BENCH_KEYS" | cut -d' ' -f1)
  # the static ceiling serves exactly what a load of a session returns
  curl -sf --max-time 30 "$BASE/api/load?key=$k" > "$tmp/static/doc.json"
  # the raw ceiling writes exactly what sessiond stores for a session
  cp "$DATA/sessions/${k:0:2}/$k.json" "$tmp/stored.json"
}

# start_ceiling: nginx in front of build/bench/fcgi_ceiling, started by
# scripts/stack.sh in sessiond's place, answering with the load's bytes.
start_ceiling() {
  PORT=$(free_port) || { echo "bench: no free port" >&2; exit 1; }
  BASE=http://127.0.0.1:$PORT
  # limits off, as for sessiond: nginx's limit_req would answer most 429
  SESSIOND=$CEILING STACK_LIMITS=off STACK_KEEP_CONN=off stack_start "$tmp/run-ceiling" "$PORT" "$tmp/data-ceiling" \
    --file "$tmp/static/doc.json" --threads "$THREADS" ||
    { echo "bench: the FastCGI ceiling did not start" >&2; exit 1; }
}

# start_arch DURABILITY: the architecture ceilings, build/bench/fcgi_ceiling
# --mode load-file, replace and create (--durability DURABILITY), each
# behind an nginx of its own with sessiond's configuration, on one copy of
# the sessions sessiond was just given (the same keys, the same bytes);
# their bases in ARCH_LOAD, ARCH_SAVE, ARCH_INST. sessiond's stack stays
# STACK_PIDS; theirs go to ARCH_PIDS until stop_arch.
start_arch() {
  local d=$1 saved=("${STACK_PIDS[@]}") sd_base=$BASE sd_port=$PORT m var
  STACK_PIDS=()
  rm -rf "$tmp/arch-$d"; mkdir -p "$tmp/arch-$d"; cp -a "$DATA/sessions" "$tmp/arch-$d/"
  for m in load-file replace create; do
    PORT=$(free_port) || { echo "bench: no free port" >&2; STACK_PIDS+=("${saved[@]}"); exit 1; }
    SESSIOND=$CEILING STACK_LIMITS=off STACK_KEEP_CONN=off stack_start "$tmp/run-arch-$m-$d" "$PORT" "$tmp/arch-$d" \
      --mode "$m" --durability "$d" --threads "$THREADS" ||
      { echo "bench: the architecture ceiling ($m) did not start" >&2; STACK_PIDS+=("${saved[@]}"); exit 1; }
    case $m in load-file) var=ARCH_LOAD ;; replace) var=ARCH_SAVE ;; create) var=ARCH_INST ;; esac
    printf -v "$var" '%s' "http://127.0.0.1:$PORT"
  done
  ARCH_PIDS=("${STACK_PIDS[@]}"); STACK_PIDS=("${saved[@]}"); BASE=$sd_base PORT=$sd_port
}
stop_arch() {
  local saved=("${STACK_PIDS[@]}")
  STACK_PIDS=("${ARCH_PIDS[@]}"); stack_stop
  ARCH_PIDS=(); STACK_PIDS=("${saved[@]}")
}

# start_php: a PHP-FPM master of our own (never the system service) with
# one static pool on a unix socket, and the same nginx configuration in
# front of it; /api/NAME runs bench/php/NAME.php.
start_php() {
  PORT=$(free_port) || { echo "bench: no free port" >&2; exit 1; }
  BASE=http://127.0.0.1:$PORT
  local run=$tmp/run-php as_root=()
  mkdir -p "$run" "$tmp/php-data" "$tmp/php-root"
  ln -sfn "$root/bench/php" "$tmp/php-root/api"
  {
    echo "[global]"
    echo "pid = $run/php-fpm.pid"
    echo "error_log = $run/php-fpm.log"
    echo "daemonize = no"
    echo "[bench]"
    if [ "$(id -u)" -eq 0 ]; then echo "user = root"; as_root=(-R); fi
    echo "listen = $run/php.sock"
    echo "listen.mode = 0600"
    echo "listen.backlog = 1024"
    echo "pm = static"
    echo "pm.max_children = $PHP_CHILDREN"
    echo "clear_env = yes"
    echo "env[SESSIONS_DIR] = $tmp/php-data"
  } > "$run/php-fpm.conf"
  stack_spawn "$run/php-fpm.out" "$PHP_FPM" -F "${as_root[@]}" -y "$run/php-fpm.conf"
  stack_wait 100 test -S "$run/php.sock" || { echo "bench: php-fpm did not start" >&2; cat "$run"/php-fpm.* >&2; exit 1; }
  STACK_LIMITS=off STACK_KEEP_CONN=off stack_render_nginx "$run" "$PORT" "unix:$run/php.sock"
  echo "fastcgi_param SCRIPT_FILENAME \"$tmp/php-root\$document_uri.php\";" >> "$run/fastcgi.conf"
  stack_spawn "$run/nginx.out" nginx -p "$run" -c "$run/nginx.conf" -e "$run/nginx-error.log"
  stack_wait 100 sh -c "curl -s -o /dev/null -w '%{http_code}' '$BASE/api/load?key=NOSUCH00' | grep -qx 404" ||
    { echo "bench: the PHP baseline did not answer on $BASE" >&2; tail -n 20 "$run"/*.log >&2; exit 1; }
}

p99s() { jq -r '.latency | to_entries | map("\(.key) \(.value.p99_ms * 1000 | round / 1000)") | join(", ")' "$1"; }
hwm() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SD_PID/status"; }

echo "bench: $CONN connections, $DUR per measurement, $NSESS pre-created sessions" >&2
notes=()
# The FastCGI ceiling and the PHP baseline run beside sessiond's stacks
# for the whole run (idle, they cost nothing), and each is measured right
# after the sessiond measurement it is compared with, so that other work on
# the machine weighs on both sides of a ratio alike.
start_baselines() {
  local saved=("${STACK_PIDS[@]}") sd_base=$BASE sd_port=$PORT
  STACK_PIDS=()
  echo "== FastCGI ceiling: build/bench/fcgi_ceiling --threads $THREADS; PHP baseline: bench/php under PHP-FPM," \
    "pm = static, $PHP_CHILDREN children; both behind the same nginx configuration" >&2
  start_ceiling; CEIL_BASE=$BASE
  start_php; PHP_BASE=$BASE
  BENCH_KEYS=$tmp/php-keys instantiate_all
  BASE_PIDS=("${STACK_PIDS[@]}"); STACK_PIDS=("${saved[@]}"); BASE=$sd_base PORT=$sd_port
}
# duel LABEL SCRIPT URL BLABEL BSCRIPT BURL [BKEYS [CLABEL CURL]]: sessiond
# and the baseline it is compared with, measured alternately ROUNDS times
# (the baseline with BENCH_KEYS=BKEYS when given and not empty), and, with
# CLABEL, the architecture ceiling at CURL third in each round (sessiond's
# script and keys). Sets A, B and X to the round with the median rate of
# each: (req/s p50 p99). Alternating spreads other work on the machine
# over every side of the ratios.
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( (ROUNDS + 1) / 2 ))p"; }
duel() {
  local i ar=() br=() cr=()
  for ((i = 0; i < ROUNDS; i++)); do
    wrk_run "$1" "$2" "$3"; ar+=("$RPS $P50 $P99")
    BENCH_KEYS=${7:-$BENCH_KEYS} wrk_run "$4" "$5" "$6"; br+=("$RPS $P50 $P99")
    if [ -n "${8:-}" ]; then wrk_run "$8" "$2" "$9"; cr+=("$RPS $P50 $P99"); fi
  done
  read -ra A <<<"$(median "${ar[@]}")"
  read -ra B <<<"$(median "${br[@]}")"
  X=(); [ ${#cr[@]} -eq 0 ] || read -ra X <<<"$(median "${cr[@]}")"
}

for d in full none; do
  echo "== durability $d, fastcgi_keep_conn off, sessiond --threads $THREADS" >&2
  start "$d" off "$THREADS"
  precreate
  [ ${#BASE_PIDS[@]} -gt 0 ] || start_baselines
  start_arch "$d"
  echo "  document: $(wc -c < "$tmp/static/doc.json") bytes as a load returns it, $(wc -c < "$tmp/stored.json") bytes as stored" >&2
  wrk_run "nginx static ($d)" wrk-static.lua "$BASE/static/doc.json"; S=("$RPS" "$P50" "$P99")
  duel "load ($d)" wrk-load.lua "$BASE/api/load" "FastCGI ceiling ($d)" wrk-load.lua "$CEIL_BASE/api/load" "" \
    "FastCGI + file read ($d)" "$ARCH_LOAD/api/load"
  AL=("${X[@]}"); eval "ALOAD_$d=\${X[0]}"
  L=("${A[@]}") C=("${B[@]}"); eval "LOAD_$d=\${A[0]} CEIL_$d=\${B[0]}"
  BENCH_KEYS=$tmp/php-keys wrk_run "PHP load ($d)" wrk-load.lua "$PHP_BASE/api/load"; PL=("$RPS" "$P50" "$P99")
  row "load, durability $d" "$CONN" "${L[@]}" "${C[0]} (FastCGI ceiling)" "$(ratio "${L[0]}" "${C[0]}")"
  duel "save ($d)" wrk-save.lua "$BASE/api/save" "PHP save ($d)" wrk-save.lua "$PHP_BASE/api/save" "$tmp/php-keys" \
    "FastCGI + replace ($d)" "$ARCH_SAVE/api/save"
  V=("${A[@]}") PS=("${B[@]}") AS=("${X[@]}"); eval "SAVE_$d=\${A[0]} PHPSAVE_$d=\${B[0]} ASAVE_$d=\${X[0]}"
  row "save, durability $d" "$CONN" "${V[@]}" "${PS[0]} (PHP save)" "$(ratio "${V[0]}" "${PS[0]}")"
  rawfs_run "rawfs replace ($d)" replace "$d"; R_REPL=("$RPS" "$P50" "$P99")
  rawfs_run "rawfs replace, $THREADS writers ($d)" replace "$d" "$THREADS"; R_REPL_T=("$RPS" "$P50" "$P99")
  duel "instantiate ($d)" wrk-instantiate.lua "$BASE/api/instantiate" "PHP instantiate ($d)" wrk-instantiate.lua \
    "$PHP_BASE/api/instantiate" "" "FastCGI + create ($d)" "$ARCH_INST/api/instantiate"
  I=("${A[@]}") PI=("${B[@]}") AI=("${X[@]}"); eval "INST_$d=\${A[0]} PHPINST_$d=\${B[0]} AINST_$d=\${X[0]}"
  row "instantiate, durability $d" "$CONN" "${I[@]}" "${PI[0]} (PHP instantiate)" "$(ratio "${I[0]}" "${PI[0]}")"
  rawfs_run "rawfs create ($d)" create "$d"; R_CREATE=("$RPS" "$P50" "$P99")
  row "ceiling: FastCGI responder sending the load's bytes (load / it)" "$CONN" "${C[@]}" "-" "$(ratio "${L[0]}" "${C[0]}")"
  row "ceiling: nginx static (load / it)" "$CONN" "${S[@]}" "-" "$(ratio "${L[0]}" "${S[0]}")"
  row "PHP baseline: load (sessiond load / it)" "$CONN" "${PL[@]}" "-" "$(ratio "${L[0]}" "${PL[0]}")"
  row "PHP baseline: save, no fsync (sessiond save / it)" "$CONN" "${PS[@]}" "-" "$(ratio "${V[0]}" "${PS[0]}")"
  row "PHP baseline: instantiate, no fsync (sessiond instantiate / it)" "$CONN" "${PI[@]}" "-" "$(ratio "${I[0]}" "${PI[0]}")"
  row "ceiling: raw replace ($d) (save / it)" "$CONN writers" "${R_REPL[@]}" "-" "$(ratio "${V[0]}" "${R_REPL[0]}")"
  row "(raw replace, as many writers as sessiond threads)" "$THREADS writers" "${R_REPL_T[@]}" "-" "-"
  row "ceiling: raw create ($d) (instantiate / it)" "$CONN writers" "${R_CREATE[@]}" "-" "$(ratio "${I[0]}" "${R_CREATE[0]}")"
  row "ceiling: FastCGI + file read (load / it)" "$CONN" "${AL[@]}" "-" "$(ratio "${L[0]}" "${AL[0]}")"
  if [ "$d" = full ]; then what="durable replace"; else what="replace, no fsync"; fi
  row "ceiling: FastCGI + $what (save / it)" "$CONN" "${AS[@]}" "-" "$(ratio "${V[0]}" "${AS[0]}")"
  row "ceiling: FastCGI + create ($d) (instantiate / it)" "$CONN" "${AI[@]}" "-" "$(ratio "${I[0]}" "${AI[0]}")"
  stop_arch
  if [ -n "$QUICK" ]; then stack_stop; continue; fi
  lg_run "mixed 80/15/5 ($d)" --scenario mixed --users "$CONN" --duration "$DUR"
  row "mixed 80/15/5 (loadgen), durability $d" "$CONN" "$RPS" "$P50" "$P99" "-" "-"
  notes+=("mixed closed loop ($CONN users, as fast as answers come), durability $d, p99 by endpoint (ms): $(p99s "$J")")
  # the same mix in open loop at half the closed-loop rate: latency at a
  # load the server can sustain, measured from each intended send time
  rate=$(awk -v r="$RPS" 'BEGIN { printf "%d", r / 2 }')
  lg_run "mixed open loop at $rate/s ($d)" --scenario mixed --users "$CONN" --duration "$DUR" --rate "$rate"
  row "mixed 80/15/5 (loadgen), open loop at $rate req/s, durability $d" "$CONN" "$RPS" "$P50" "$P99" "-" "-"
  eval "OPEN_$d=\$J"
  notes+=("mixed open loop at $rate req/s, durability $d, p99 by endpoint (ms): $(p99s "$J")")
  lg_run "users x$BIG ($d)" --scenario users --users "$BIG" --duration "$DUR"
  row "users (loadgen), durability $d" "$BIG" "$RPS" "$P50" "$P99" "-" "lost $(jq .lost_updates "$J"), errors $(jq '.transport_errors + .http_5xx + .unexpected_status' "$J")"
  lg_run "contention x$BIG, 10 keys ($d)" --scenario contention --users "$BIG" --keys 10 --duration "$DUR" --backoff 1s
  row "contention 10 keys (loadgen), durability $d" "$BIG" "$RPS" "$P50" "$P99" "-" "lost $(jq .lost_updates "$J"), errors $(jq '.transport_errors + .http_5xx + .unexpected_status' "$J"), $(jq .acknowledged "$J") increments"
  notes+=("sessiond peak resident memory (VmHWM) after the $BIG-user runs, durability $d: $(hwm) MiB")
  echo "  sessiond VmHWM $(hwm) MiB" >&2
  eval "HWM_$d=\$(hwm)"
  stack_stop

  echo "== durability $d, fastcgi_keep_conn on (keepalive $KEEPALIVE per nginx worker), sessiond --threads $KEEP_THREADS" >&2
  start "$d" on "$KEEP_THREADS"
  wrk_run "load keep-conn ($d)" wrk-load.lua "$BASE/api/load"
  row "load, keep-conn on, durability $d" "$CONN" "$RPS" "$P50" "$P99" "${C[0]} (FastCGI ceiling)" "$(ratio "$RPS" "${C[0]}")"
  wrk_run "save keep-conn ($d)" wrk-save.lua "$BASE/api/save"
  row "save, keep-conn on, durability $d" "$CONN" "$RPS" "$P50" "$P99" "${PS[0]} (PHP save)" "$(ratio "$RPS" "${PS[0]}")"
  stack_stop
done

# target DESCRIPTION MEASURED 1|0|-: one row of the targets table (met, missed, information)
targets=()
target() {
  local v=information
  [ "$3" = 1 ] && v=met; [ "$3" = 0 ] && v=missed
  targets+=("$(printf '| %s | %s | %s |' "$1" "$2" "$v")")
}
# at_least NAME A B MIN: the ratio A/B against MIN
at_least() {
  local r; r=$(ratio "$2" "$3")
  target "$1 >= ${4}x" "$r ($2 / $3)" "$(awk -v r="$r" -v m="$4" 'BEGIN { print (r != "-" && r + 0 >= m) ? 1 : 0 }')"
}
# gap WHAT SD ARCH ANAME BASE BNAME MIN: under the target SD / BASE >= MIN,
# two information rows that split its gap: SD / ARCH, what is left to
# sessiond's own work (JSON, canonical layout, tokens, locks) against the
# architecture ceiling ANAME (the FastCGI hop and the file-system work the
# guarantees demand, nothing else); and ARCH / BASE against MIN, whether
# any implementation of this design could meet the target on this machine.
gap() {
  local r
  target "$1 / $4: what is left to sessiond" "$(ratio "$2" "$3") ($2 / $3)" -
  r=$(ratio "$3" "$5")
  target "$4 / $6: could the design meet ${7}x?" \
    "$r ($3 / $5): $(awk -v r="$r" -v m="$7" 'BEGIN { print (r != "-" && r + 0 >= m) ? "yes" : "no" }')" -
}
at_least "load (full) / FastCGI ceiling" "$LOAD_full" "$CEIL_full" 0.95
gap "load (full)" "$LOAD_full" "$ALOAD_full" "FastCGI + file read" "$CEIL_full" "FastCGI ceiling" 0.95
at_least "load (none) / FastCGI ceiling" "$LOAD_none" "$CEIL_none" 0.95
gap "load (none)" "$LOAD_none" "$ALOAD_none" "FastCGI + file read" "$CEIL_none" "FastCGI ceiling" 0.95
at_least "save (full) / PHP save" "$SAVE_full" "$PHPSAVE_full" 1.0
gap "save (full)" "$SAVE_full" "$ASAVE_full" "FastCGI + durable replace" "$PHPSAVE_full" "PHP save" 1.0
at_least "save (none) / PHP save" "$SAVE_none" "$PHPSAVE_none" 1.5
gap "save (none)" "$SAVE_none" "$ASAVE_none" "FastCGI + replace, no fsync" "$PHPSAVE_none" "PHP save" 1.5
at_least "instantiate (full) / PHP instantiate" "$INST_full" "$PHPINST_full" 1.0
gap "instantiate (full)" "$INST_full" "$AINST_full" "FastCGI + create (full)" "$PHPINST_full" "PHP instantiate" 1.0
if [ -z "$QUICK" ]; then
  worst=$(jq '[.latency[].p99_ms] | max | . * 1000 | round / 1000' "$OPEN_full")
  target "p99 of every endpoint <= 10 ms, open loop at half capacity (full)" "$(p99s "$OPEN_full")" \
    "$(awk -v w="$worst" 'BEGIN { print (w <= 10) ? 1 : 0 }')"
  target "peak resident memory <= 32 MiB after the 1000-user runs" "full $HWM_full MiB, none $HWM_none MiB" \
    "$(awk -v a="$HWM_full" -v b="$HWM_none" 'BEGIN { print (a <= 32 && b <= 32) ? 1 : 0 }')"
fi

{
  echo "| scenario | connections | req/s | p50 ms | p99 ms | ceiling req/s | ratio |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  for n in "${notes[@]}"; do echo "- $n"; done
  echo
  echo "| target (ratios in this run) | measured | |"
  echo "|---|---|---|"
  printf '%s\n' "${targets[@]}"
  echo
  echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM," \
    "Debian $(cat /etc/debian_version 2>/dev/null), Linux $(uname -r), $(df -T "$tmp" | awk 'NR == 2 {print $2}') on $(df "$tmp" | awk 'NR == 2 {print $1}');" \
    "$(nginx -v 2>&1 | sed 's/.*: //'), wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'); $(date -u +%Y-%m-%d)."
  echo "Load generator, wrk, nginx and sessiond share the machine's cores."
} > "$OUT"
echo
cat "$OUT"
echo "(also in $OUT)"
if [ ${#problems[@]} -gt 0 ]; then
  echo
  echo "bench: problems during the run:"
  printf '  %s\n' "${problems[@]}"
  exit 1
fi
