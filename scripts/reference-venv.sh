#!/usr/bin/env bash
# Creates (once) a virtualenv with the Python reference, pht-train-container-library 2.0.5, used by
# the interop test and the benchmark, and prints `export PHT_REFERENCE_PYTHON=<its python>` for
# `eval "$(scripts/reference-venv.sh)"`. Idempotent.
set -euo pipefail
# Standard output carries the export line and nothing else: whatever venv and pip print goes to
# standard error.
exec 3>&1 1>&2
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PHT_REFERENCE_VENV:-$root/target/reference-venv}"
if ! "$venv/bin/python" -c 'import train_lib.security.protocol' >/dev/null 2>&1; then
  echo "reference-venv.sh: installing pht-train-container-library==2.0.5 into $venv …"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'pht-train-container-library==2.0.5'
fi
echo "export PHT_REFERENCE_PYTHON=$venv/bin/python" >&3
