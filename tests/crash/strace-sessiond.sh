#!/usr/bin/env bash
# Run sessiond under strace for the power-loss checker: record.sh passes this
# as $SESSIOND to scripts/stack.sh. Every call that touches files or folders
# is written to $SD_CRASH_TRACE with wall-clock start times (-ttt), durations
# (-T) and every written byte in hex (-xx, -s 1 MiB). strace does not pass a
# SIGTERM on to the program it runs, so this script does, letting stack_stop
# end sessiond the usual way. SD_CRASH_PRELOAD, when set, is preloaded into
# sessiond only (a broken variant made without a switch in src/, see run.sh).
calls=open,openat,creat,write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync
calls+=,sync_file_range,syncfs,sync,rename,renameat,renameat2,link,linkat,unlink
calls+=,unlinkat,mkdir,mkdirat,rmdir,close,close_range,dup,dup2,dup3,fcntl,ftruncate
calls+=,truncate,symlink,symlinkat,fallocate
preload=()
[ -n "${SD_CRASH_PRELOAD:-}" ] && preload=(-E "LD_PRELOAD=$SD_CRASH_PRELOAD")
strace -f -qq --seccomp-bpf -ttt -T -xx -s 1048576 -e signal=none -e trace="$calls" "${preload[@]}" \
  -o "${SD_CRASH_TRACE:?}" "${SESSIOND_REAL:?}" "$@" &
tracer=$!
forward() {
  local child
  for child in $(pgrep -P "$tracer"); do kill -TERM "$child" 2>/dev/null; done
}
trap forward TERM INT
wait "$tracer"
wait "$tracer"
