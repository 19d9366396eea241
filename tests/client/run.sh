#!/usr/bin/env bash
# The browser client's tests (client/test/*.test.js, Node's own test runner):
# unit tests in Node and end-to-end tests in headless Chromium, against a
# real nginx + sessiond on a free loopback port. The test pages are served
# from another loopback port (a different origin; sessiond allows it with
# --cors-origin), the demo from the stack's own origin.
# Arguments: test files to run (default: client/test/*.test.js).
# SESSIOND_SKIP_BROWSER=1 skips the Chromium tests (the Node ones still run).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/integration/lib.sh"

if [ ! -d "$root/client/node_modules/puppeteer-core" ] ||
   [ "$root/client/package-lock.json" -nt "$root/client/node_modules/.package-lock.json" ]; then
  (cd "$root/client" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) || {
    echo "FAIL: npm ci in client/ failed" >&2; exit 1; }
fi

PAGE_PORT=$(free_port) || { echo "no free port" >&2; exit 1; }
export SD_PAGE_ORIGIN=http://127.0.0.1:$PAGE_PORT
# The demo's own origin is allowed too (a same-origin POST carries Origin).
IT_PORT=$(free_port) || { echo "no free port" >&2; exit 1; }
while [ "$IT_PORT" = "$PAGE_PORT" ]; do IT_PORT=$(free_port); done
it_setup --cors-origin "$SD_PAGE_ORIGIN,http://127.0.0.1:$IT_PORT"
export SD_BASE=$BASE SD_DATA=$DATA SD_PAGE_PORT=$PAGE_PORT SD_BUILD_DIR=$root/build
export PUPPETEER_SKIP_DOWNLOAD=1
if [ "${SESSIOND_SKIP_BROWSER:-}" = 1 ]; then
  echo "SKIP: the Chromium end-to-end tests (SESSIOND_SKIP_BROWSER=1)"
fi
cd "$root/client"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/client.test.js test/browser.test.js)
# Bounded: each test file has its own timeouts; the whole run at most 420 s.
if timeout -k 5 420 node --test --test-reporter=spec "${files[@]}"; then
  IT_PASS=$((IT_PASS + 1))
else
  IT_FAIL=$((IT_FAIL + 1)); echo "FAIL: node --test"
fi
it_done
