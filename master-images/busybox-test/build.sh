#!/usr/bin/env bash
# Builds the offline test master image and pushes it: build.sh REGISTRY/REPO:TAG
# Needs Debian's busybox-static (/bin/busybox) and a running Docker engine; pulls nothing.
set -euo pipefail
tag="${1:?usage: build.sh REGISTRY/REPO:TAG}"
here="$(cd "$(dirname "$0")" && pwd)"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$here/Dockerfile" "$ctx/"
cp /bin/busybox "$ctx/busybox"
DOCKER_BUILDKIT=0 docker build --quiet --force-rm --network none -t "$tag" "$ctx" >/dev/null
docker push --quiet "$tag" >/dev/null
echo "$tag"
