#!/usr/bin/env bash
# What the build needs beyond the Rust toolchain, from Debian's packages (installed if missing):
# OpenSSL's headers, for the SHA-512 that legacy trains are hashed with (docs/benchmarks.md).
set -euo pipefail
exec "$(dirname "$0")/apt-install.sh" libssl-dev pkg-config
