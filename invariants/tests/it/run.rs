//! The invariant run: at least `FIXD_INVARIANT_CALLS` calls (100,000 by default) in random
//! sequences, each checked against the model (see the crate docs for what is asserted). A
//! failing sequence is shrunk, reported, and its seed kept in
//! `invariants/proptest-regressions/run.txt`, which every later run replays first.

use fixd_invariants::run::oracle_artifact;
use fixd_invariants::stats::ORACLE;
use fixd_invariants::strategy::OracleMachine;

use crate::support::{Campaign, run_campaign};

/// Calls made at least, unless `FIXD_INVARIANT_CALLS` says otherwise.
const DEFAULT_CALLS: u64 = 100_000;
/// Steps per case: long enough for bonds, publications, reclaims and committee changes to
/// interleave; short enough that a failure shrinks quickly.
const STEPS: std::ops::RangeInclusive<usize> = 40..=160;
/// Calls per case, counted a little low (a case makes about 112: it also deploys, arms and
/// drains, and some steps only move the clock), so the run makes at least the calls asked for.
const CALLS_PER_CASE: u64 = 104;

#[test]
fn settlement_oracle_invariants_hold() {
    run_campaign::<OracleMachine>(Campaign {
        name: "invariant run",
        calls_var: "FIXD_INVARIANT_CALLS",
        default_calls: DEFAULT_CALLS,
        steps: STEPS,
        calls_per_case: CALLS_PER_CASE,
        regressions: "proptest-regressions/run.txt",
        artifact: oracle_artifact(),
        tally: &ORACLE,
    });
}
