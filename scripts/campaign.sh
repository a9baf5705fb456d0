#!/usr/bin/env bash
# The long campaigns that CI runs only a slice of: the contract's invariant run with a million
# calls, the P/N vault's property run with a million, and the committee simulations with more
# seeds. Prints each run's figures.
#   scripts/campaign.sh                 # 1,000,000 invariant calls, 1,000,000 vault calls, 2,000 seeds per strategy and committee
#   FIXD_INVARIANT_CALLS=5000000 FIXD_VAULT_CALLS=5000000 FIXD_SIM_SEEDS=20000 scripts/campaign.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fixd-target}"
export FIXD_INVARIANT_CALLS="${FIXD_INVARIANT_CALLS:-1000000}"
export FIXD_VAULT_CALLS="${FIXD_VAULT_CALLS:-1000000}"
export FIXD_SIM_SEEDS="${FIXD_SIM_SEEDS:-2000}"
bash scripts/install-tools.sh
echo "==> the contract's invariant run: ${FIXD_INVARIANT_CALLS} calls"
cargo nextest run --locked --profile campaign --no-capture -p fixd-invariants -E 'test(/^run::/)'
echo "==> the P/N vault's property run: ${FIXD_VAULT_CALLS} calls"
cargo nextest run --locked --profile campaign --no-capture -p fixd-invariants -E 'test(=vault::pn_vault_invariants_hold)'
echo "==> committee simulations: ${FIXD_SIM_SEEDS} seeds per strategy"
cargo nextest run --locked --profile campaign --no-capture -p fixd-decision -E 'test(/^consensus::tests::committees_of_/)'
