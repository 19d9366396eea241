# shellcheck shell=bash
# Start and stop nginx + sessiond on loopback. Sourced by scripts/run.sh, the
# integration tests and the benchmark, so all three run the same stack.
#
#   stack_start RUN_DIR PORT DATA_DIR [sessiond options...]
#   stack_stop
#   stack_foreground_trap NAME WHAT STOP...; stack_foreground
#       the foreground of `make run` and `make cluster` (see below)
# Tunables (environment): SESSIOND (binary), STACK_KEEP_CONN (on|off),
# STACK_MAX_BODY (nginx client_max_body_size, default 1m), STACK_STATIC_DIR
# (also serve that folder at /static/, for the benchmark's ceiling),
# STACK_NGINX_WORKERS (default auto), STACK_ACCESS_LOG (a file, in the
# "sessiond" format that never holds the query string; default off),
# STACK_LIMITS (on, the default: nginx's limit_req per address, and
# sessiond's miss limit; off: neither, for load tests from one address).
# The CORS origins nginx allows on its own errors are those of the
# --cors-origin option given to stack_start, else SESSIOND_CORS_ORIGIN:
# the same list sessiond uses.

STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SESSIOND=${SESSIOND:-$STACK_ROOT/cgi-bin/sessiond}
STACK_PIDS=()
# The servers run in sessions of their own (setsid), so a Ctrl-C or a signal
# to the caller's process group reaches only the caller, which stops them
# in order with SIGTERM (stack_stop).

# 0 when something answers a connect to 127.0.0.1:PORT.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free TCP port on 127.0.0.1 (nothing answers a connect to it).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 10000 + RANDOM % 22000 ))   # below the ephemeral range (32768+), so no client socket holds it
    if ! port_taken "$p"; then echo "$p"; return 0; fi
  done
  return 1
}

# Render conf/nginx.conf.in into RUN_DIR. UPSTREAM...: one or more
# "unix:PATH" or "HOST:PORT" servers. Values are substituted by bash, not
# sed, so paths may hold any character but a double quote. The allowed
# CORS origins are STACK_CORS_ORIGIN's (sessiond's list syntax).
stack_render_nginx() {
  local run=$1 port=$2; shift 2
  local keep=${STACK_KEEP_CONN:-off} user_line="" ka="" static="" servers="" u t
  local limits="" log=off
  case ${STACK_LIMITS:-on} in
    on) limits="            limit_req zone=sd_all burst=100 nodelay;"$'\n'
        limits+="            limit_req zone=sd_new burst=20 nodelay;" ;;
    off) ;;
    *) echo "stack: LIMITS must be on or off, not '$STACK_LIMITS'" >&2; return 1 ;;
  esac
  [ -n "${STACK_ACCESS_LOG:-}" ] && [ "$STACK_ACCESS_LOG" != off ] && log="\"$STACK_ACCESS_LOG\" sessiond"
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  [ "$keep" = on ] && ka="        keepalive ${STACK_UPSTREAM_KEEPALIVE:-32};"
  for u in "$@"; do servers+="        server \"$u\";"$'\n'; done
  if [ -n "${STACK_STATIC_DIR:-}" ]; then
    static="        location /static/ { alias \"${STACK_STATIC_DIR}/\"; default_type application/json; add_header Cache-Control no-store; }"
  fi
  mkdir -p "$run"
  "$STACK_ROOT/scripts/nginx-cors-map" "${STACK_CORS_ORIGIN:-}" > "$run/sessiond-cors.conf" || return 1
  cp "$STACK_ROOT/conf/sessiond-edge-http.conf" "$STACK_ROOT/conf/sessiond-edge-errors.conf" "$run/"
  t=$(<"$STACK_ROOT/conf/nginx.conf.in")
  t=${t//@USER_LINE@/"$user_line"}
  t=${t//@RUN@/"$run"}
  t=${t//@CONF@/"$run"}
  t=${t//@PORT@/"$port"}
  t=${t//@UPSTREAM_SERVERS@/"${servers%$'\n'}"}
  t=${t//@UPSTREAM_KEEPALIVE@/"$ka"}
  t=${t//@MAX_BODY@/"${STACK_MAX_BODY:-1m}"}
  t=${t//@WORKERS@/"${STACK_NGINX_WORKERS:-auto}"}
  t=${t//@ACCESS_LOG@/"$log"}
  t=${t//@LIMITS@/"$limits"}
  t=${t//@STATIC_LOCATION@/"$static"}
  t=${t//@CLIENT_LOCATIONS@/"$(stack_client_locations)"}
  printf '%s\n' "$t" > "$run/nginx.conf"
  t=$(<"$STACK_ROOT/conf/fastcgi.conf")
  printf '%s\n' "${t//@KEEP_CONN@/"$keep"}" > "$run/fastcgi.conf"
}

# The browser client at /client/sessiond.js and its demo app at / (dev and
# test stack only; the production block, conf/nginx-sessiond.conf, has none).
stack_client_locations() {
  local c=$STACK_ROOT/client
  cat <<EOF
        location = /client/sessiond.js { alias "$c/sessiond.js"; types { } default_type text/javascript; add_header Cache-Control no-cache; }
        location = /client/sessiond.d.ts { alias "$c/sessiond.d.ts"; types { } default_type text/plain; add_header Cache-Control no-cache; }
        location = / { root "$c/demo"; try_files /index.html =404; types { } default_type text/html; add_header Cache-Control no-cache; }
        location ~ ^/demo/([a-z]+\\.(js|css|png))\$ { alias "$c/demo/\$1"; types { text/javascript js; text/css css; image/png png; } add_header Cache-Control no-cache; }
EOF
}

# Wait until cmd succeeds, at most $1 tenths of a second.
stack_wait() {
  local n=$1; shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# 0 while pid $1 runs (a zombie, exited but not yet reaped, does not count).
stack_alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# Run CMD... in a session of its own (setsid), output to LOG, and add its
# pid to STACK_PIDS. The pid is the one the program itself reports, so it is
# right whether or not setsid had to fork (it forks under job control).
stack_spawn() {
  local log=$1; shift
  local pidf
  pidf=$(mktemp /tmp/sessiond-stack-pid.XXXXXX)
  : > "$pidf"
  # shellcheck disable=SC2016 # $$ and $@ are the inner sh's
  setsid sh -c 'echo $$ > "$0"; exec "$@"' "$pidf" "$@" </dev/null >>"$log" 2>&1 &
  for _ in $(seq 1 100); do [ -s "$pidf" ] && break; sleep 0.02; done
  STACK_LAST_PID=$(cat "$pidf")
  rm -f "$pidf"
  [ -n "$STACK_LAST_PID" ] && STACK_PIDS+=("$STACK_LAST_PID")
}

# Start a sessiond on the data dir, listening on RUN_DIR/NAME.sock; sets
# STACK_SOCK to that path. Fails if this sessiond exits before it listens
# (a stale socket of ours is removed first, so an old server cannot answer
# in its place).
stack_add_sessiond() {
  local run=$1 data=$2 name=$3; shift 3
  mkdir -p "$run"
  STACK_SOCK="$run/$name.sock"
  rm -f "$STACK_SOCK"
  # LIMITS=off: no miss limit either (the command line can still set one).
  local env=(env)
  [ "${STACK_LIMITS:-on}" = off ] && env+=(SESSIOND_MISS_LIMIT=0)
  stack_spawn "$run/$name.log" "${env[@]}" "$SESSIOND" --listen "unix:$STACK_SOCK" --data-dir "$data" "$@"
  local pid=$STACK_LAST_PID
  for _ in $(seq 1 100); do
    [ -S "$STACK_SOCK" ] && return 0
    stack_alive "$pid" || break
    sleep 0.1
  done
  echo "stack: $name did not start" >&2; cat "$run/$name.log" >&2
  return 1
}

# The CORS origins sessiond takes from its options OPTS...: the last
# --cors-origin, which wins over the environment, else SESSIOND_CORS_ORIGIN.
stack_cors_origin() {
  local a prev="" cors=${SESSIOND_CORS_ORIGIN:-}
  for a in "$@"; do
    [ "$prev" = --cors-origin ] && cors=$a
    [[ $a == --cors-origin=* ]] && cors=${a#--cors-origin=}
    prev=$a
  done
  printf '%s' "$cors"
}

stack_start() {
  local run=$1 port=$2 data=$3; shift 3
  local cors
  cors=$(stack_cors_origin "$@")
  mkdir -p "$run" "$data"
  export STACK_RUN=$run STACK_PORT=$port STACK_DATA=$data
  stack_add_sessiond "$run" "$data" sessiond "$@" || { stack_stop; return 1; }
  local upstreams=("unix:$STACK_SOCK")
  # STACK_SECOND_SESSIOND=1: two processes on one data dir behind one nginx.
  if [ -n "${STACK_SECOND_SESSIOND:-}" ]; then
    stack_add_sessiond "$run" "$data" sessiond2 "$@" || { stack_stop; return 1; }
    upstreams+=("unix:$STACK_SOCK")
  fi
  STACK_CORS_ORIGIN=$cors stack_render_nginx "$run" "$port" "${upstreams[@]}" || { stack_stop; return 1; }
  stack_spawn "$run/nginx.out" nginx -p "$run" -c "$run/nginx.conf" -e "$run/nginx-error.log"
  if ! stack_wait 100 curl -sf "http://127.0.0.1:$port/api/health"; then
    echo "stack: nginx did not answer on 127.0.0.1:$port" >&2
    tail -n 20 "$run"/*.log >&2
    stack_stop
    return 1
  fi
}

# The foreground of `make run` and `make cluster`, in two halves.
# stack_foreground_trap NAME WHAT STOP...: from now on Ctrl-C or SIGTERM
# says "NAME: stopping WHAT", runs STOP... and exits 0. Set it before the
# servers start, so a signal while they start stops them too.
stack_foreground_trap() {
  STACK_FG_NAME=$1 STACK_FG_WHAT=$2
  shift 2
  STACK_FG_STOP=("$@")
  trap 'echo; echo "$STACK_FG_NAME: stopping $STACK_FG_WHAT"; "${STACK_FG_STOP[@]}"; exit 0' INT TERM
}
# stack_foreground: stay in the foreground until that signal; if a server
# started here exits first, run STOP... on the rest and return 1.
stack_foreground() {
  local p
  while :; do
    for p in "${STACK_PIDS[@]}"; do
      if ! stack_alive "$p"; then
        echo "$STACK_FG_NAME: a server exited; stopping" >&2
        "${STACK_FG_STOP[@]}"
        return 1
      fi
    done
    sleep 1 & wait $!
  done
}

# Stop every server started here, the last started first (nginx before the
# sessiond behind it, so requests in flight are not cut): SIGTERM, then up to
# 10 s for it to exit, then SIGKILL.
stack_stop() {
  local i p
  for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
    p=${STACK_PIDS[i]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 1 200); do stack_alive "$p" || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  STACK_PIDS=()
}
