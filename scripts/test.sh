#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test (unit, known-answer vectors,
# tamper table, properties, CLI scenarios, interop with the Python reference, and end to end
# against a real Docker engine and two real registries).
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh clone's build and test run leaves 3.6 GB under target/ (docs/benchmarks.md, "Build
# size"); a CI run once died of "No space left on device" half-way through the build.
free_kib="$(df -Pk . | awk 'NR == 2 {print $4}')"
if [ "$free_kib" -lt $((5 * 1024 * 1024)) ]; then
  echo "test.sh: warning: $((free_kib / 1024)) MiB free here; a fresh build and test run needs about 4 GiB under target/. Free space first (e.g. 'cargo clean' in other clones) or the build may fail with 'No space left on device'." >&2
fi
scripts/build-deps.sh
[ -n "${PHT_REFERENCE_PYTHON:-}" ] || eval "$(scripts/reference-venv.sh)"
# The standard tools that judge the route service's API (openapi-spec-validator, schemathesis,
# openapi-python-client) and the station's Kubernetes objects (kubernetes-validate), pinned, in
# a virtualenv of their own.
eval "$(scripts/api-tools.sh)"
# The Docker engine and the two registries the end-to-end tests use (installed if missing).
eval "$(scripts/services.sh)"
# PostgreSQL for the route service's tests (a throwaway cluster on 127.0.0.1:5433; each test
# makes its own database there).
eval "$(scripts/postgres.sh)"
# Debian's Chromium and ChromeDriver for the dashboard's browser journeys.
eval "$(scripts/browser.sh)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The end-to-end tests run the `train` and `station` binaries; `cargo test` alone builds only
# test harnesses of binaries, not the binaries themselves.
cargo build --workspace --bins
cargo test --workspace --all-targets
# The station binary with the Kubernetes engine (the cargo feature `kubernetes`; the default
# build has none of it): it builds and lints, and every object `station k8s manifests` prints
# passes kubernetes-validate --strict against Kubernetes 1.33's schemas. CI reaches no real API
# server: the engine's own tests run against a mocked one (station/k8s/tests/).
# `--workspace --all-targets` with the feature named resolves every other crate's features as
# `cargo test` just did, so only the station binary compiles again (`-p station-cli` alone, or
# `--bins`, resolved features anew and compiled kube and its dependencies a second time).
cargo clippy --workspace --all-targets --features station-cli/kubernetes --quiet -- -D warnings
cargo build --workspace --all-targets --features station-cli/kubernetes
manifests="$(mktemp)"
target/debug/station k8s manifests --namespace pht-ci \
  | python3 -c 'import json, sys; print("\n---\n".join(json.dumps(i) for i in json.load(sys.stdin)["items"]))' \
  > "$manifests"
"$PHT_KUBERNETES_VALIDATE" --strict -k 1.33.0 "$manifests"
rm -f "$manifests"
# Fuzzing, bounded: every target of train-lib/fuzz for 20 s (about 4 min with the build of
# the instrumented targets, 7 min on a fresh clone).
scripts/fuzz.sh
