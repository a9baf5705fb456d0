#!/usr/bin/env bash
# Runs N more seeded chaos runs (issue 17): seven real `fixd` nodes, anvil and the replay
# venues, two faulty members and two SIGKILLs each (cli/tests/it/chaos.rs). Seeds start at
# FIXD_CHAOS_FIRST_SEED (default 1000) so that they differ from CI's. Each failing seed is listed
# with the command that replays it; the exit status is the number of failures (at most 255).
#
#   scripts/chaos.sh 200
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:?usage: scripts/chaos.sh N (how many seeded runs)}"
first="${FIXD_CHAOS_FIRST_SEED:-1000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fixd-target}"
bash scripts/install-tools.sh
export FIXD_ANVIL="${FIXD_ANVIL:-$PWD/.tools/bin/anvil}"
cargo nextest run -p fixd --no-run --locked
mkdir -p target/chaos
failed=()
for seed in $(seq "$first" $((first + runs - 1))); do
  log="target/chaos/seed-$seed.log"
  if FIXD_CHAOS_SEED="$seed" cargo nextest run -p fixd --locked --no-capture chaos::replay_one_seed >"$log" 2>&1; then
    echo "seed $seed: passed ($(grep -m1 '^chaos seed' "$log" | cut -c1-160))"
  else
    echo "seed $seed: FAILED, log in $log; replay: FIXD_CHAOS_SEED=$seed cargo nextest run -p fixd --no-capture chaos::replay_one_seed"
    failed+=("$seed")
  fi
done
echo "chaos: $((runs - ${#failed[@]})) of $runs passed${failed:+; failed seeds: ${failed[*]}}"
exit $(( ${#failed[@]} > 255 ? 255 : ${#failed[@]} ))
