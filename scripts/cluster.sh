#!/usr/bin/env bash
# shellcheck shell=bash
# N sessiond nodes behind one routing nginx on 127.0.0.1 (docs/cluster.md).
# Run: `make cluster NODES=3 PORT=8080` (this script in the foreground;
# Ctrl-C stops everything). Sourced by tests/integration/cluster.sh and
# scripts/move-bucket for the functions below; it uses scripts/stack.sh's
# machinery (spawn, stop, wait) for every process.
#
#   cluster_start DIR PORT NODES [sessiond options...]
#       DIR/shard.table (written balanced by scripts/shard-new when missing),
#       DIR/secret (one secret for all nodes), DIR/nNAME/ each node's data,
#       DIR/run/ sockets, logs and the router's configuration. Nodes are
#       n1..nN, each on the unix socket DIR/run/nI.sock. The router's
#       settings (below) as it starts are kept in DIR/run/router.settings,
#       and every later render reads them from there.
#   cluster_check_router TABLE
#                        render the router's configuration for TABLE into a
#                        folder of its own and check it (nginx -t), leaving
#                        the running router's files alone
#   cluster_switch       regenerate the router's configuration from the
#                        table and reload nginx (SIGHUP), then SIGHUP every
#                        node so it reads the table again; unchecked: run
#                        cluster_check_router on the table first
#   cluster_reload       cluster_check_router on the table, then cluster_switch
#   cluster_node_pid N   the pid of node N (e.g. n2)
#   cluster_stop         stop the router, then the nodes
# Tunables: CLUSTER_CONNECT_TIMEOUT (router to node, default 1s), and
# stack.sh's SESSIOND, STACK_LIMITS, STACK_NGINX_WORKERS (default 2),
# STACK_MAX_BODY, STACK_ACCESS_LOG; the router's CORS origins are the
# nodes' (--cors-origin among the sessiond options, else
# SESSIOND_CORS_ORIGIN).

CLUSTER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/stack.sh
. "$CLUSTER_ROOT/scripts/stack.sh"
declare -A CLUSTER_PID=()

# The table's node names, in file order.
cluster_table_nodes() { awk '$1 == "node" { print $2 }' "$1"; }

# Write the router's settings as this cluster starts with them into
# DIR/run/router.settings and read them back: scripts/move-bucket, another
# process with another environment, renders the router from the same file
# (cluster_attach), so a move keeps them.
cluster_save_settings() {
  local f=$CLUSTER_RUN/router.settings cors
  cors=$(stack_cors_origin "${CLUSTER_OPTS[@]}")
  {
    echo "# The router's settings as scripts/cluster.sh started it; every render reads them."
    printf 'CLUSTER_PORT=%q\n' "$CLUSTER_PORT"
    printf 'STACK_CORS_ORIGIN=%q\n' "$cors"
    printf 'STACK_ACCESS_LOG=%q\n' "${STACK_ACCESS_LOG:-}"
    printf 'STACK_MAX_BODY=%q\n' "${STACK_MAX_BODY:-1m}"
    printf 'STACK_NGINX_WORKERS=%q\n' "${STACK_NGINX_WORKERS:-2}"
    printf 'CLUSTER_CONNECT_TIMEOUT=%q\n' "${CLUSTER_CONNECT_TIMEOUT:-1s}"
  } > "$f.new" && mv "$f.new" "$f" && . "$f"
}

# Render the router's configuration into RUN (default $CLUSTER_RUN), the
# map from TABLE (default the cluster's shard.table).
cluster_render_router() {
  local table=${1:-$CLUSTER_DIR/shard.table} run=${2:-$CLUSTER_RUN} user_line="" log=off t
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  [ -n "${STACK_ACCESS_LOG:-}" ] && log="\"$STACK_ACCESS_LOG\" sessiond"
  "$CLUSTER_ROOT/scripts/shard-map" "$table" > "$run/shard-map.conf.new" || return 1
  mv "$run/shard-map.conf.new" "$run/shard-map.conf"
  "$CLUSTER_ROOT/scripts/nginx-cors-map" "${STACK_CORS_ORIGIN:-}" > "$run/sessiond-cors.conf" || return 1
  cp "$CLUSTER_ROOT/conf/sessiond-edge-http.conf" "$CLUSTER_ROOT/conf/sessiond-edge-errors.conf" "$run/"
  # The FastCGI parameters of the single-node stack, without its fastcgi_pass.
  t=$(grep -v '^fastcgi_pass ' "$CLUSTER_ROOT/conf/fastcgi.conf")
  printf '%s\n' "${t//@KEEP_CONN@/off}" > "$run/fastcgi-params.conf"
  t=$(<"$CLUSTER_ROOT/conf/nginx-router.conf.in")
  t=${t//@USER_LINE@/"$user_line"}
  t=${t//@RUN@/"$run"}
  t=${t//@PORT@/"$CLUSTER_PORT"}
  t=${t//@MAX_BODY@/"${STACK_MAX_BODY:-1m}"}
  t=${t//@WORKERS@/"${STACK_NGINX_WORKERS:-2}"}
  t=${t//@ACCESS_LOG@/"$log"}
  t=${t//@CONNECT_TIMEOUT@/"${CLUSTER_CONNECT_TIMEOUT:-1s}"}
  printf '%s\n' "$t" > "$run/router.conf"
}

cluster_start() {
  CLUSTER_DIR=$1 CLUSTER_PORT=$2
  local nodes=$3; shift 3
  CLUSTER_OPTS=("$@")
  CLUSTER_RUN=$CLUSTER_DIR/run
  mkdir -p "$CLUSTER_RUN" || return 1
  CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd) CLUSTER_RUN=$CLUSTER_DIR/run
  local table=$CLUSTER_DIR/shard.table i spec=()
  for ((i = 1; i <= nodes; i++)); do spec+=("n$i=unix:$CLUSTER_RUN/n$i.sock"); done
  if [ ! -f "$table" ]; then
    "$CLUSTER_ROOT/scripts/shard-new" "${spec[@]}" > "$table.new" && mv "$table.new" "$table" || return 1
  fi
  local want have
  want=$(printf 'n%s\n' $(seq 1 "$nodes")) have=$(cluster_table_nodes "$table")
  if [ "$want" != "$have" ]; then
    echo "cluster: $table declares nodes $(echo $have) but NODES=$nodes; remove $CLUSTER_DIR to start afresh" >&2
    return 1
  fi
  CLUSTER_NODES=($have)
  local n shard=()
  if "$SESSIOND" --help 2>&1 | grep -q -- --shard-table; then
    shard=(--shard-table "$table")
  else
    echo "cluster: warning: $SESSIOND has no --shard-table: the nodes do not know the table" >&2
  fi
  for n in "${CLUSTER_NODES[@]}"; do
    mkdir -p "$CLUSTER_DIR/$n"
    stack_add_sessiond "$CLUSTER_RUN" "$CLUSTER_DIR/$n" "$n" "${shard[@]}" ${shard:+--node-id "$n"} \
      --secret-file "$CLUSTER_DIR/secret" "${CLUSTER_OPTS[@]}" || { cluster_stop; return 1; }
    CLUSTER_PID[$n]=$STACK_LAST_PID
    echo "$STACK_LAST_PID" > "$CLUSTER_RUN/$n.pid"
  done
  cluster_save_settings && cluster_render_router || { cluster_stop; return 1; }
  stack_spawn "$CLUSTER_RUN/router.out" nginx -p "$CLUSTER_RUN" -c "$CLUSTER_RUN/router.conf" -e "$CLUSTER_RUN/nginx-error.log"
  CLUSTER_ROUTER_PID=$STACK_LAST_PID
  if ! stack_wait 100 curl -sf "http://127.0.0.1:$CLUSTER_PORT/api/health"; then
    echo "cluster: the router did not answer on 127.0.0.1:$CLUSTER_PORT" >&2
    tail -n 20 "$CLUSTER_RUN"/*.log >&2
    cluster_stop
    return 1
  fi
}

cluster_node_pid() { echo "${CLUSTER_PID[$1]}"; }

# These work from another process too (scripts/move-bucket): they need
# only CLUSTER_DIR, and find the port, the router's settings and the pids
# in DIR/run/.
cluster_attach() {
  CLUSTER_RUN=$CLUSTER_DIR/run
  if [ -f "$CLUSTER_RUN/router.settings" ]; then
    . "$CLUSTER_RUN/router.settings"
  else # a router started before the settings were kept: its port at least
    [ -n "${CLUSTER_PORT:-}" ] || CLUSTER_PORT=$(sed -n 's/^ *listen 127.0.0.1:\([0-9]*\).*/\1/p' "$CLUSTER_RUN/router.conf")
  fi
}

cluster_check_router() {
  local table=$1 dir rc
  cluster_attach
  dir=$(mktemp -d "$CLUSTER_RUN/check.XXXXXX") || return 1
  cluster_render_router "$table" "$dir" &&
    nginx -t -q -p "$dir" -c "$dir/router.conf" -e "$dir/nginx-error.log"
  rc=$?
  rm -rf "$dir"
  return "$rc"
}

cluster_reload() {
  cluster_check_router "$CLUSTER_DIR/shard.table" && cluster_switch
}

cluster_switch() {
  cluster_attach
  cluster_render_router || return 1
  kill -HUP "$(cat "$CLUSTER_RUN/nginx.pid")" || return 1
  # Nodes read the table again on SIGHUP; a sessiond without --shard-table
  # would take SIGHUP's default action and exit.
  "$SESSIOND" --help 2>&1 | grep -q -- --shard-table || return 0
  local n p
  for n in $(cluster_table_nodes "$CLUSTER_DIR/shard.table"); do
    p=$(cat "$CLUSTER_RUN/$n.pid" 2>/dev/null) || continue
    stack_alive "$p" && kill -HUP "$p"
  done
  return 0
}

cluster_stop() { stack_stop; CLUSTER_PID=(); rm -f "$CLUSTER_RUN"/n*.pid; }

# Executed (not sourced): `make cluster`, in the foreground.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  port=8080 nodes=3 dir="$(pwd)/var/cluster" limits=on opts=()
  while [ $# -gt 0 ]; do
    case $1 in
      --port) port=$2; shift 2 ;;
      --cors-origin) [ -n "$2" ] && opts=(--cors-origin "$2"); shift 2 ;;
      --nodes) nodes=$2; shift 2 ;;
      --dir) dir=$2; shift 2 ;;
      --limits) limits=$2; shift 2 ;;
      *) echo "cluster: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [[ $nodes =~ ^[1-9][0-9]?$ ]] || { echo "cluster: NODES must be 1 to 99" >&2; exit 2; }
  if port_taken "$port"; then
    echo "cluster: something already listens on 127.0.0.1:$port (make cluster PORT=...)" >&2
    exit 1
  fi
  stack_foreground_trap cluster "the router and the nodes" cluster_stop
  STACK_LIMITS=$limits STACK_ACCESS_LOG="$dir/run/access.log" cluster_start "$dir" "$port" "$nodes" "${opts[@]}" || exit 1
  cat <<MSG
Router on http://127.0.0.1:$port, $nodes nodes (${CLUSTER_NODES[*]}); shard table $CLUSTER_DIR/shard.table,
data in $CLUSTER_DIR/<node>/, logs in $CLUSTER_RUN. Limits: $limits; CORS origins: ${STACK_CORS_ORIGIN:-none}.
Try:
  curl -s -X POST http://127.0.0.1:$port/api/instantiate -H 'Content-Type: application/json' -d '{"data":{"hello":"world"}}'
  curl -s 'http://127.0.0.1:$port/api/load?key=KEY'
Move a bucket (docs/cluster.md): scripts/move-bucket --dir $CLUSTER_DIR XY n1 n2
Press Ctrl-C to stop.
MSG
  stack_foreground || exit 1
fi
