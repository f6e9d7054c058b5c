#!/usr/bin/env bash
# Creates (once) a virtualenv with the standard tools that judge the route service's API from
# outside: openapi-spec-validator (the document), schemathesis (a property-based API tester) and
# openapi-python-client (a client generated from the document, used in a test),
# pinned; prints `export PHT_API_TOOLS=<its bin directory>` for `eval "$(scripts/api-tools.sh)"`.
# Idempotent.
set -euo pipefail
# Standard output carries the export line and nothing else.
exec 3>&1 1>&2
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PHT_API_TOOLS_VENV:-$root/target/api-tools-venv}"
pins=(schemathesis==4.32.5 openapi-spec-validator==0.9.0 openapi-python-client==0.29.1)
stamp="$venv/.pins"
if [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  echo "api-tools.sh: installing ${pins[*]} into $venv …"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
fi
echo "export PHT_API_TOOLS=$venv/bin" >&3
