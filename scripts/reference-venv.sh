#!/usr/bin/env bash
# Creates (once) a virtualenv with the Python reference, pht-train-container-library 2.0.5, used by
# the interop test and the benchmark, and prints its python. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PHT_REFERENCE_VENV:-$root/target/reference-venv}"
if ! "$venv/bin/python" -c 'import train_lib.security.protocol' >/dev/null 2>&1; then
  echo "installing pht-train-container-library==2.0.5 into $venv …" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'pht-train-container-library==2.0.5' >&2
fi
echo "$venv/bin/python"
