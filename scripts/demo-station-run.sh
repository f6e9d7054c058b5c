#!/usr/bin/env bash
# The protocol without the route service (the README's demo is scripts/demo.sh): start a Docker engine and two registries (installed from
# Debian's packages if missing), build the offline master image, then for each format create a
# train, build its image, send it along a three-station route with `station run` (the second
# station pushes across to the other registry), and print the results the creator decrypts
# from the final image.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/build-deps.sh
eval "$(scripts/services.sh)"
# The same build as scripts/demo.sh and the test command's first (Cargo.toml's dev profile).
cargo build --workspace --bins --quiet
train="$root/target/debug/train"
station="$root/target/debug/station"
work="$root/.demo-station-run"
rm -rf "$work" && mkdir -p "$work/keys" "$work/algo"
cd "$work"

master="$PHT_REGISTRY_A/master/busybox:1"
echo "=== master image $master (offline: FROM scratch + Debian's busybox-static) ==="
"$root/master-images/busybox-test/build.sh" "$master"

for who in creator builder hospital-a hospital-b hospital-c; do
  "$train" keygen "$who" --out-dir keys --bits 2048 >/dev/null
done
# The algorithm: counts the rows of the station's data and appends a line to the shared results.
cat > algo/count.sh <<'ALGO'
#!/bin/sh
set -e
rows=$(cat /opt/train_data/*/rows.csv | wc -l)
echo "$STATION_ID,$rows" >> /opt/pht_results/counts.csv
ALGO
for s in hospital-a hospital-b hospital-c; do
  mkdir -p "data-$s" && seq 1 $((RANDOM % 50 + 10)) > "data-$s/rows.csv"
  # Each station's policy names the master it accepts (legacy trains sign none, so a station
  # runs them only on a master it names) and keeps its own audit log.
  cat > "$s.toml" <<TOML
[station]
id = "$s"
key = "keys/$s.key.pem"

[policy]
allowed_masters = ["${master%:*}"]

[audit]
log = "audit-$s.jsonl"
TOML
done

run=$(date +%s)
for format in native legacy; do
  echo "=== $format train ==="
  builder=()
  [ "$format" = legacy ] && builder=(--builder-key keys/builder.key.pem)
  "$train" create --format "$format" --files algo --entrypoint count.sh \
    --creator-id creator --creator-key keys/creator.key.pem "${builder[@]}" \
    --station hospital-a=keys/hospital-a.pub.pem --station hospital-b=keys/hospital-b.pub.pem \
    --station hospital-c=keys/hospital-c.pub.pem --out "train-$format"
  repo="demo/$format-$run"
  "$train" image build "train-$format" --master "$master" --entrypoint count.sh \
    --creator-key keys/creator.key.pem --tag "$PHT_REGISTRY_A/$repo:hospital-a"
  "$station" run "$PHT_REGISTRY_A/$repo:hospital-a" --config hospital-a.toml --data data-hospital-a
  # hospital-b sends the train on to the other registry.
  "$station" run "$PHT_REGISTRY_A/$repo:hospital-b" --config hospital-b.toml --data data-hospital-b \
    --push "$PHT_REGISTRY_B/$repo:hospital-c"
  "$station" run "$PHT_REGISTRY_B/$repo:hospital-c" --config hospital-c.toml --data data-hospital-c
  "$train" verify "$PHT_REGISTRY_B/$repo:done" --master "$master"
  "$train" results "$PHT_REGISTRY_B/$repo:done" --key keys/creator.key.pem --out "results-$format"
  echo "--- results for the creator ($format) ---"
  cat "results-$format/counts.csv"
done
for s in hospital-a hospital-b hospital-c; do
  "$station" audit verify --config "$s.toml"
done
