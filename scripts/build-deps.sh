#!/usr/bin/env bash
# What the build needs beyond the Rust toolchain, from Debian's packages (installed if missing):
# OpenSSL's headers, for the SHA-512 that legacy trains are hashed with (docs/benchmarks.md).
set -euo pipefail
need=()
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "build-deps.sh: ${need[*]} missing; install them (apt-get install ${need[*]}) or run as root" >&2
  exit 1
fi
echo "build-deps.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
