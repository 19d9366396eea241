#!/usr/bin/env bash
# Install, with apt-get, whatever sessiond needs that this Debian machine
# lacks. Quiet and quick when everything is already there.
set -euo pipefail

pkgs=(gcc make pkg-config libc6-dev libfcgi-dev libjansson-dev libsodium-dev nginx
      libcmocka-dev libcurl4-openssl-dev curl jq wrk spawn-fcgi valgrind python3
      strace openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
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
