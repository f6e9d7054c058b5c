#!/usr/bin/env bash
# Fuzzes every target of train-lib/fuzz for a bounded time each, on stable Rust (cargo-fuzz
# with `-s none`: libFuzzer's coverage guidance without a sanitizer). The committed corpus
# (train-lib/fuzz/corpus/<target>) seeds each run; what the run finds goes to a scratch
# corpus under the fuzz crate's target/, and a crash fails the script, naming the input that
# reproduces it (train-lib/fuzz/artifacts/<target>/). Add that input to the committed corpus
# with the fix: `cargo test` replays it from then on (tests/fuzz-bodies/tests/corpus.rs).
#
#   scripts/fuzz.sh            # 20 s per target (CI)
#   PHT_FUZZ_SECONDS=600 scripts/fuzz.sh native_config
set -euo pipefail
cd "$(dirname "$0")/../train-lib/fuzz"
secs="${PHT_FUZZ_SECONDS:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (cargo install --locked cargo-fuzz) …" >&2
  cargo install --locked cargo-fuzz >&2
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
echo "fuzz.sh: building ${#targets[@]} targets …" >&2
cargo fuzz build -s none >&2
for t in "${targets[@]}"; do
  scratch="target/fuzz-corpus/$t"
  mkdir -p "$scratch"
  echo "fuzz.sh: $t for ${secs} s" >&2
  if ! cargo fuzz run -s none "$t" "$scratch" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      > "target/fuzz-$t.log" 2>&1; then
    tail -40 "target/fuzz-$t.log" >&2
    echo "fuzz.sh: $t failed; the input is in train-lib/fuzz/artifacts/$t/ (full log: train-lib/fuzz/target/fuzz-$t.log)" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units' "target/fuzz-$t.log" | sed "s/^/fuzz.sh: $t: /" >&2 || true
done
echo "fuzz.sh: ${#targets[@]} targets, ${secs} s each: no crash" >&2
