#!/usr/bin/env bash
# Install, with apt-get, whatever sessiond needs that this Debian machine
# lacks (with --bench, also what `make bench` needs). Quiet and quick when
# everything is already there.
set -euo pipefail

pkgs=(gcc make pkg-config libc6-dev libfcgi-dev libjansson-dev libsodium-dev nginx
      libcmocka-dev libcurl4-openssl-dev curl jq wrk spawn-fcgi valgrind python3
      strace openssl nodejs chromium)
# `make bench` (scripts/deps.sh --bench) also needs the PHP baseline's
# PHP-FPM, and perf for profiling sessiond.
[ "${1:-}" = --bench ] && pkgs+=(php8.2-fpm linux-perf)
# `make fuzz` (scripts/deps.sh --fuzz) needs clang with its libFuzzer runtime.
[ "${1:-}" = --fuzz ] && pkgs+=(clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm (for the browser client's tests) comes with nodejs from some sources,
# as Debian's own package npm otherwise.
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged nginx on port 80; sessiond runs its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  $sudo systemctl disable --now nginx >/dev/null 2>&1 || true
fi
