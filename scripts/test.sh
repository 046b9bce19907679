#!/usr/bin/env bash
# Runs every Mamori test. Installs what the tests need first, from Debian's
# packages: the `scep` package (micromdm's independent SCEP client,
# /usr/bin/scepclient) and openssl. Safe to run again; installs only what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v scepclient >/dev/null 2>&1 || need+=(scep)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing test dependencies: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked "$@"
