#!/usr/bin/env bash
# The main job: a local network settling a real replayed maturity end to end.
#   scripts/devnet.sh                        # runs until Ctrl-C
#   scripts/devnet.sh --exit-after-publish   # stops once the value is on-chain
# Installs the pinned chain tools (anvil, solc) into .tools/, builds fixd, then runs
# `fixd devnet` with any arguments given (see `fixd devnet --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fixd-target}"
bash scripts/install-tools.sh
echo "==> building fixd (the first build takes several minutes)"
start=$(date +%s)
cargo build -p fixd --locked
echo "==> built in $(( $(date +%s) - start )) s; starting the devnet"
exec "$CARGO_TARGET_DIR/debug/fixd" devnet --anvil "$PWD/.tools/bin/anvil" "$@"
