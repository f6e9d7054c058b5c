#!/usr/bin/env bash
# Builds and pushes the production master images: build.sh REGISTRY [BASE_PREFIX]
#   REGISTRY      where to push, e.g. registry.example.org/pht-master
#   BASE_PREFIX   a mirror of Docker Hub's official images, e.g. mirror.example.org/library
#                 (default: Docker Hub itself)
# Each image is pushed as REGISTRY/<name>:latest; print their digests for station policies.
set -euo pipefail
reg="${1:?usage: build.sh REGISTRY [BASE_PREFIX]}"
prefix="${2:-}"
[ -n "$prefix" ] && prefix="$prefix/"
here="$(cd "$(dirname "$0")" && pwd)"
declare -A base=([python]="python:3.11-slim" [python-ml]="python:3.11-slim" [r]="r-base:4.4.1")
for name in python python-ml r; do
  docker build -t "$reg/$name:latest" --build-arg "BASE=$prefix${base[$name]}" "$here/$name"
  docker push "$reg/$name:latest" | tail -1
done
