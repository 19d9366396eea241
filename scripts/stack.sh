# shellcheck shell=bash
# Start and stop nginx + sessiond on loopback. Sourced by scripts/run.sh, the
# integration tests and the benchmark, so all three run the same stack.
#
#   stack_start RUN_DIR PORT DATA_DIR [sessiond options...]
#   stack_stop
# Tunables (environment): SESSIOND (binary), STACK_KEEP_CONN (on|off),
# STACK_MAX_BODY (nginx client_max_body_size, default 1m), STACK_STATIC_DIR
# (also serve that folder at /static/, for the benchmark's ceiling),
# STACK_NGINX_WORKERS (default auto).

STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SESSIOND=${SESSIOND:-$STACK_ROOT/cgi-bin/sessiond}
STACK_PIDS=()
# The servers run in sessions of their own (setsid), so a Ctrl-C or a signal
# to the caller's process group reaches only the caller, which stops them
# in order with SIGTERM (stack_stop).

# A free TCP port on 127.0.0.1 (nothing answers a connect to it).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 10000 + RANDOM % 22000 ))   # below the ephemeral range (32768+), so no client socket holds it
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# Render conf/nginx.conf.in into RUN_DIR.
stack_render_nginx() {
  local run=$1 port=$2 upstream=$3
  local keep=${STACK_KEEP_CONN:-off} user_line="" ka="" static=""
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  [ "$keep" = on ] && ka="        keepalive ${STACK_UPSTREAM_KEEPALIVE:-32};"
  if [ -n "${STACK_STATIC_DIR:-}" ]; then
    static="        location /static/ { alias ${STACK_STATIC_DIR}/; default_type application/json; add_header Cache-Control no-store; }"
  fi
  mkdir -p "$run"
  sed -e "s|@USER_LINE@|$user_line|" -e "s|@RUN@|$run|g" -e "s|@PORT@|$port|" \
      -e "s|@UPSTREAM@|$upstream|" -e "s|@UPSTREAM_KEEPALIVE@|$ka|" \
      -e "s|@MAX_BODY@|${STACK_MAX_BODY:-1m}|g" -e "s|@CONF@|$run|" \
      -e "s|@WORKERS@|${STACK_NGINX_WORKERS:-auto}|" \
      -e "s|@ACCESS_LOG@|${STACK_ACCESS_LOG:-off}|" \
      -e "s|@STATIC_LOCATION@|$static|" \
      "$STACK_ROOT/conf/nginx.conf.in" > "$run/nginx.conf"
  sed -e "s|@KEEP_CONN@|$keep|" "$STACK_ROOT/conf/fastcgi.conf" > "$run/fastcgi.conf"
}

# Wait until cmd succeeds, at most $1 tenths of a second.
stack_wait() {
  local n=$1; shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# Start a sessiond on the data dir, listening on RUN_DIR/NAME.sock; sets
# STACK_SOCK to that path.
stack_add_sessiond() {
  local run=$1 data=$2 name=$3; shift 3
  STACK_SOCK="$run/$name.sock"
  setsid "$SESSIOND" --listen "unix:$STACK_SOCK" --data-dir "$data" "$@" </dev/null >>"$run/$name.log" 2>&1 &
  STACK_PIDS+=($!)
  stack_wait 100 test -S "$STACK_SOCK" || { echo "stack: $name did not start" >&2; cat "$run/$name.log" >&2; return 1; }
}

stack_start() {
  local run=$1 port=$2 data=$3; shift 3
  mkdir -p "$run" "$data"
  STACK_RUN=$run STACK_PORT=$port STACK_DATA=$data
  stack_add_sessiond "$run" "$data" sessiond "$@" || return 1
  local upstream="unix:$STACK_SOCK"
  # STACK_SECOND_SESSIOND=1: two processes on one data dir behind one nginx.
  if [ -n "${STACK_SECOND_SESSIOND:-}" ]; then
    stack_add_sessiond "$run" "$data" sessiond2 "$@" || return 1
    upstream="$upstream;\n        server unix:$STACK_SOCK"
  fi
  stack_render_nginx "$run" "$port" "$upstream"
  sed -i 's/\\n/\n/g' "$run/nginx.conf"
  setsid nginx -p "$run" -c "$run/nginx.conf" -e "$run/nginx-error.log" </dev/null >>"$run/nginx.out" 2>&1 &
  STACK_PIDS+=($!)
  if ! stack_wait 100 curl -sf "http://127.0.0.1:$port/api/health"; then
    echo "stack: nginx did not answer on 127.0.0.1:$port" >&2
    tail -n 20 "$run"/*.log >&2
    stack_stop
    return 1
  fi
}

stack_stop() {
  local p
  for p in "${STACK_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${STACK_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  STACK_PIDS=()
}
