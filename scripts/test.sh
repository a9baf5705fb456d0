#!/usr/bin/env bash
# Runs every fixd test: the README's test command. Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fixd-target}"
bash scripts/install-tools.sh
export FIXD_ANVIL="${FIXD_ANVIL:-$PWD/.tools/bin/anvil}"

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> cargo-nextest is missing; installing it (one-off, a few minutes)"
  cargo install cargo-nextest --locked
fi

echo "==> building and running the test suite"
cargo nextest run --workspace --locked --no-fail-fast "$@"
echo "==> doc tests"
cargo test --workspace --locked --doc
