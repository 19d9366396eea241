#!/usr/bin/env bash
# Run sessiond under valgrind (memcheck): the integration scripts use this as
# $SESSIOND in the valgrind pass; any report lands in the server's log, where
# tests/integration/lib.sh looks for it.
root=$(cd "$(dirname "$0")/.." && pwd)
exec valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=97 \
  "${SESSIOND_REAL:-$root/cgi-bin/sessiond}" "$@"
