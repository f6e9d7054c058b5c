#!/usr/bin/env bash
# Creates (once) a virtualenv with the standard tools that judge the project's interfaces from
# outside: openapi-spec-validator (the route service's API document), schemathesis (a
# property-based API tester), openapi-python-client (a client generated from the document, used
# in a test) and kubernetes-validate (the station's Kubernetes objects against the upstream
# schemas, offline: they ship in the package), pinned; prints `export PHT_API_TOOLS=<its bin
# directory>` and `export PHT_KUBERNETES_VALIDATE=<its program>` for
# `eval "$(scripts/api-tools.sh)"`.
# Idempotent.
set -euo pipefail
# Standard output carries the export line and nothing else.
exec 3>&1 1>&2
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PHT_API_TOOLS_VENV:-$root/target/api-tools-venv}"
pins=(schemathesis==4.32.5 openapi-spec-validator==0.9.0 openapi-python-client==0.29.1 kubernetes-validate==1.37.0)
stamp="$venv/.pins"
if [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  echo "api-tools.sh: installing ${pins[*]} into $venv …"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
fi
echo "export PHT_API_TOOLS=$venv/bin" >&3
echo "export PHT_KUBERNETES_VALIDATE=$venv/bin/kubernetes-validate" >&3
