#!/usr/bin/env bash
# Chaos campaigns (issue 17), more seeds than CI runs:
#
#   scripts/chaos.sh 200             # 200 seeded chaos runs (cli/tests/it/chaos.rs): seven real
#                                    # `fixd` nodes, anvil and the replay venues in a network lab,
#                                    # two faulty members, two SIGKILLs, a partition, a dispute in
#                                    # about half the runs
#   scripts/chaos.sh --crashes 10    # 10 crash-consistency runs (cli/tests/it/crashes.rs): a
#                                    # member SIGKILLed every second or two through every phase
#
# Seeds start at FIXD_CHAOS_FIRST_SEED (default 1000) so that they differ from CI's;
# FIXD_CHAOS_JOBS (default 1) runs that many seeds at once. Each failing seed is listed with the
# command that replays it. At the end the script counts what was injected over the campaign:
# each fault type (chaos) or each kill's phase (crashes). Logs are in target/chaos/. The exit
# status is the number of failed seeds (at most 255).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=chaos
if [[ "${1:-}" == "--crashes" ]]; then
  mode=crashes
  shift
fi
runs="${1:?usage: scripts/chaos.sh [--crashes] N (how many seeded runs)}"
first="${FIXD_CHAOS_FIRST_SEED:-1000}"
jobs="${FIXD_CHAOS_JOBS:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fixd-target}"
bash scripts/install-tools.sh
export FIXD_ANVIL="${FIXD_ANVIL:-$PWD/.tools/bin/anvil}"
cargo nextest run -p fixd --no-run --locked
dir="target/chaos/$mode"
mkdir -p "$dir"
rm -f "$dir"/seed-*.log

case "$mode" in
  chaos) seed_var=FIXD_CHAOS_SEED; test=chaos::replay_one_seed; counted='^injected: ' ;;
  crashes) seed_var=FIXD_CRASH_SEED; test=crashes::replay_one_seed; counted='^killed: ' ;;
esac
export dir seed_var test

one_seed() {
  local seed="$1" log="$dir/seed-$1.log"
  if env "$seed_var=$seed" cargo nextest run -p fixd --locked --no-capture "$test" >"$log" 2>&1; then
    echo "seed $seed: passed"
  else
    echo "seed $seed: FAILED, log in $log; replay: $seed_var=$seed cargo nextest run -p fixd --no-capture $test"
  fi
}
export -f one_seed

seq "$first" $((first + runs - 1)) | xargs -P "$jobs" -I{} bash -c 'one_seed {}' | tee "$dir/summary.txt"
failed=$(grep -c FAILED "$dir/summary.txt" || true)

echo
echo "what the $runs runs injected (count, fault):"
# Member numbers and partition sides vary by seed: count the fault types.
cat "$dir"/seed-*.log | grep -E "$counted" | sed -E 's/ \(node-[0-9]+\)//; s/ \[\[.*//; s/^killed: node-[0-9]+ /killed /' \
  | sort | uniq -c | sort -rn
echo "$mode: $((runs - failed)) of $runs passed"
exit $(( failed > 255 ? 255 : failed ))
