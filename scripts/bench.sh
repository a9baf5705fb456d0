#!/usr/bin/env bash
# fixd's benchmarks, both kinds, each printing its table (BENCHMARKS.md holds a run's figures):
#   scripts/bench.sh           # the pure paths (cargo bench), then the system harness
#   scripts/bench.sh --pure    # only the pure paths
#   scripts/bench.sh --system [fixd-bench flags]   # only the system harness (fixd-bench --help)
# Builds fixd and the harness in release; the harness starts real fixd processes, anvil and the
# replay venues on loopback. Their logs go to bench-logs/ (stderr of the harness).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fixd-target}"
what="${1:-all}"
[[ $# -gt 0 ]] && shift
bash scripts/install-tools.sh
export FIXD_ANVIL="${FIXD_ANVIL:-$PWD/.tools/bin/anvil}"
if [[ "$what" == all || "$what" == --pure ]]; then
  echo "==> the pure paths (cargo bench -p fixd-bench)"
  cargo bench -p fixd-bench --locked --bench pure
fi
if [[ "$what" == all || "$what" == --system ]]; then
  echo "==> building fixd and fixd-bench in release"
  cargo build --release --locked -p fixd -p fixd-bench
  mkdir -p bench-logs
  echo "==> the system harness (node logs in bench-logs/harness.log)"
  FIXD_BIN="$CARGO_TARGET_DIR/release/fixd" "$CARGO_TARGET_DIR/release/fixd-bench" "$@" 2> bench-logs/harness.log
fi
