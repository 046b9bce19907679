#!/usr/bin/env bash
# Runs every Mamori test. Installs what the tests need first, from Debian's
# packages: the `scep` package (micromdm's independent SCEP client,
# /usr/bin/scepclient), openssl, OpenSSL's headers with pkg-config (the
# WebAuthn library, webauthn-rs, builds against the system OpenSSL),
# Chromium with Japanese fonts and Node.js for the console's browser tests;
# PostgreSQL's server (the tests start throwaway clusters of their own on
# a Unix socket, one for TLS on a free loopback port, and use nothing the
# package sets up);
# then those tests' npm packages (playwright-core, axe-core) at the versions
# of their package-lock.json. Safe to run again; installs only what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v scepclient >/dev/null 2>&1 || need+=(scep)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -q "Noto Sans CJK" || need+=(fonts-noto-cjk)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing test dependencies: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

browser=crates/server/tests/browser
if ! cmp -s "$browser/package-lock.json" "$browser/node_modules/.installed-lock.json"; then
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error &&
    cp package-lock.json node_modules/.installed-lock.json)
fi

# One build, not an edit loop: incremental caches only cost disk here
# (tens of GB over the workspace's test binaries).
export CARGO_INCREMENTAL=0

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
# Every fuzz target briefly, from the committed seeds (scripts/fuzz.sh).
./scripts/fuzz.sh 8
