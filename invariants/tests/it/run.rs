//! The invariant run: at least `FIXD_INVARIANT_CALLS` calls (100,000 by default) in random
//! sequences, each checked against the model (see the crate docs for what is asserted). A
//! failing sequence is shrunk, reported, and its seed kept in
//! `invariants/proptest-regressions/run.txt`, which every later run replays first.

use std::sync::Arc;
use std::time::Instant;

use fixd_invariants::run::oracle_artifact;
use fixd_invariants::stats::{coverage, totals};
use fixd_invariants::strategy::OracleMachine;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

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
    let target = match std::env::var("FIXD_INVARIANT_CALLS") {
        Ok(text) => text.parse::<u64>().unwrap_or_else(|_| {
            panic!("FIXD_INVARIANT_CALLS={text:?} is not a whole number of calls; set it like FIXD_INVARIANT_CALLS=1000000")
        }),
        Err(_) => DEFAULT_CALLS,
    };
    let cases = target.div_ceil(CALLS_PER_CASE).max(1) as u32;
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/run.txt"
        )))),
        max_shrink_iters: 4_096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    // Shrinking re-runs failing cases many times, on this thread: keep their panics quiet and
    // report the smallest one below. Other threads (other tests under `cargo test`) still speak.
    let previous = Arc::new(std::panic::take_hook());
    let quiet = std::thread::current().id();
    let others = Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != quiet {
            others(info);
        }
    }));
    let started = Instant::now();
    let result = runner.run(&OracleMachine::sequential_strategy(STEPS), |(initial, steps, seen)| {
        OracleMachine::test_sequential(config.clone(), initial, steps, seen);
        Ok(())
    });
    let elapsed = started.elapsed();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    let [calls, views, runs] = totals();
    eprintln!(
        "invariant run against {}: {calls} calls ({views} invariant reads) in {runs} cases, {:.1} s",
        oracle_artifact().display(),
        elapsed.as_secs_f64()
    );
    eprintln!("what the calls met:\n{}", coverage());
    if let Err(failure) = result {
        panic!("the invariant run failed (seed kept in invariants/proptest-regressions/run.txt):\n{failure}");
    }
    assert!(calls >= target, "the run made {calls} calls, fewer than the {target} asked for: raise cases");
}
