#!/usr/bin/env bash
# The main job, on a fresh machine: build `train`, make keys for a creator, a builder and three
# stations, create a train, send it along the three-station route (pre-run, run, post-run at
# each), and print the results the creator decrypts at the end. Both formats.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --quiet --bin train
train="$root/target/release/train"
work="$root/.demo"
rm -rf "$work" && mkdir -p "$work/keys" "$work/algo"
cd "$work"

for who in creator builder hospital-a hospital-b hospital-c; do
  "$train" keygen "$who" --out-dir keys --bits 2048 >/dev/null
done
# The algorithm: counts the rows of the station's data and appends a line to the shared results.
cat > algo/count.sh <<'ALGO'
#!/bin/sh
rows=$(wc -l < "$1")
echo "$STATION,$rows" >> "$2/pht_results/counts.csv"
ALGO
echo '{"resourceType": "Patient"}' > algo/query.json

for format in native legacy; do
  echo "=== $format train ==="
  builder=()
  [ "$format" = legacy ] && builder=(--builder-key keys/builder.key.pem)
  "$train" create --format "$format" --files algo --entrypoint count.sh \
    --creator-id creator --creator-key keys/creator.key.pem "${builder[@]}" \
    --station hospital-a=keys/hospital-a.pub.pem --station hospital-b=keys/hospital-b.pub.pem \
    --station hospital-c=keys/hospital-c.pub.pem --out "train-$format"
  for station in hospital-a hospital-b hospital-c; do
    # The station's local data (never leaves the station).
    seq 1 $((RANDOM % 50 + 10)) > "data-$station.csv"
    "$train" pre-run "train-$format" --station "$station" --key "keys/$station.key.pem"
    STATION="$station" sh "train-$format/pht_train/count.sh" "data-$station.csv" "train-$format"
    "$train" post-run "train-$format" --station "$station" --key "keys/$station.key.pem"
  done
  "$train" verify "train-$format"
  "$train" results "train-$format" --key keys/creator.key.pem --out "results-$format"
  echo "--- results for the creator ($format) ---"
  cat "results-$format/counts.csv"
done
