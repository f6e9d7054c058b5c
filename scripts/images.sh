#!/usr/bin/env bash
# Builds our images with no image registry, from nothing but Debian's packages and our own
# binary: the base (scripts/base-image.sh, cached), the route service's runtime image
# (Dockerfiles/route-service.runtime.Dockerfile) and the stand-ins for the central side's other
# parts (Dockerfiles/registry.Dockerfile, Dockerfiles/postgres.Dockerfile, and nginx for the
# reverse proxy: Dockerfiles/proxy.Dockerfile).
#
#   scripts/images.sh [ROUTE_SERVICE_BINARY]     (default target/release/route-service)
#
# The binary is stripped of its debuginfo on the way in (the file under target/ keeps it, for
# crash reports). Prints one line per image on stdout: its name and size in MB.
set -euo pipefail
exec 3>&1 1>&2
cd "$(dirname "$0")/.."
bin="${1:-target/release/route-service}"
if [ ! -x "$bin" ]; then
  echo "images.sh: $bin is missing; build it first: cargo build --release -p route-service-cli"
  exit 1
fi
base="$(scripts/base-image.sh)"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
objcopy --strip-debug "$bin" "$ctx/route-service"
echo "images.sh: route service binary $(( $(stat -c %s "$bin") >> 20 )) MB, $(( $(stat -c %s "$ctx/route-service") >> 20 )) MB stripped"
# RUN steps fetch Debian's packages: the build containers use the host's network (the test
# engine has no bridge).
build() {
  docker build --network host -q --build-arg "BASE=$base" -f "$1" -t "$2" "$3" >/dev/null
  printf '%s %s\n' "$2" "$(( $(docker image inspect -f '{{.Size}}' "$2") / 1000000 ))" >&3
}
build Dockerfiles/route-service.runtime.Dockerfile pht-local/route-service:latest "$ctx"
build Dockerfiles/registry.Dockerfile pht-local/registry:2.8 Dockerfiles
build Dockerfiles/postgres.Dockerfile pht-local/postgres:15 Dockerfiles
build Dockerfiles/proxy.Dockerfile pht-local/nginx:bookworm Dockerfiles
