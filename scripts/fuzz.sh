#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60),
# starting from the committed seeds in fuzz/corpus/<target>/; what the
# fuzzer finds goes to a scratch corpus, crashes to fuzz/artifacts/.
# Needs the nightly toolchain; installs cargo-fuzz from crates.io when it
# is missing. Exits non-zero on the first crash.
#
#   scripts/fuzz.sh            # a minute per target
#   scripts/fuzz.sh 1800       # half an hour per target
#   scripts/fuzz.sh 60 plist   # only the named targets
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(plist checkin connect mdm_signature scep ber csr proxy)
fi

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain; skipped (cargo test still replays fuzz/corpus)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

cargo +nightly fuzz build -O 2>&1 | tail -n 1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  echo "fuzz: $t for ${seconds}s"
  status=0
  cargo +nightly fuzz run -O "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    >"$scratch/$t.log" 2>&1 || status=$?
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|SUMMARY|ERROR|panicked' "$scratch/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$scratch/$t.log"
    echo "fuzz: $t failed (exit $status); the input is in fuzz/artifacts/$t"
    exit 1
  fi
done
