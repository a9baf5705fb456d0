//! What the property runs share: how many calls they make, the run itself, and quiet
//! shrinking.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use fixd_invariants::stats::Tally;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

/// One property run: what it is called, how many calls it makes, and where it keeps seeds.
pub struct Campaign<'a> {
    /// "invariant run", "vault run".
    pub name: &'a str,
    /// The environment variable that sets the calls, and their default.
    pub calls_var: &'a str,
    pub default_calls: u64,
    /// Steps per case.
    pub steps: RangeInclusive<usize>,
    /// Calls per case, counted low, so that the run makes at least the calls asked for.
    pub calls_per_case: u64,
    /// The file under `invariants/` that keeps failing seeds, replayed first by every run.
    pub regressions: &'a str,
    /// The artifact under test, for the report.
    pub artifact: &'a Path,
    /// What counts the calls.
    pub tally: &'a Tally,
}

/// Runs `M` as `campaign` says, prints the calls made and what they met, and panics with the
/// shrunk failure, or if fewer calls were made than asked for.
pub fn run_campaign<M>(campaign: Campaign<'_>)
where
    M: StateMachineTest + ReferenceStateMachine,
    M: StateMachineTest<Reference = M>,
{
    let target = calls(campaign.calls_var, campaign.default_calls);
    let cases = u32::try_from(target.div_ceil(campaign.calls_per_case).max(1)).unwrap_or(u32::MAX);
    let regressions = format!("{}/{}", env!("CARGO_MANIFEST_DIR"), campaign.regressions);
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(Box::leak(
            regressions.into_boxed_str(),
        )))),
        max_shrink_iters: 4_096,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let started = Instant::now();
    // The failure, shrunk, as text (the error itself holds the whole case).
    let result = quietly(|| {
        runner
            .run(&M::sequential_strategy(campaign.steps.clone()), |(initial, steps, seen)| {
                M::test_sequential(config.clone(), initial, steps, seen);
                Ok(())
            })
            .map_err(|failure| failure.to_string())
    });
    let elapsed = started.elapsed();
    let [calls, views, runs] = campaign.tally.totals();
    eprintln!(
        "{} against {}: {calls} calls ({views} invariant reads) in {runs} cases, {:.1} s",
        campaign.name,
        campaign.artifact.display(),
        elapsed.as_secs_f64()
    );
    eprintln!("what the calls met:\n{}", campaign.tally.coverage());
    if let Err(failure) = result {
        panic!("the {} failed (seed kept in invariants/{}):\n{failure}", campaign.name, campaign.regressions);
    }
    assert!(calls >= target, "the run made {calls} calls, fewer than the {target} asked for: raise cases");
}

/// The calls asked for in the environment variable `var`, else `default`.
pub fn calls(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(text) => text.parse::<u64>().unwrap_or_else(|_| {
            panic!("{var}={text:?} is not a whole number of calls; set it like {var}=1000000")
        }),
        Err(_) => default,
    }
}

/// Runs `f` with this thread's panics kept quiet: shrinking re-runs failing cases many times,
/// and the caller reports the smallest one. Other threads (other tests under `cargo test`)
/// still speak.
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let previous = Arc::new(std::panic::take_hook());
    let quiet = std::thread::current().id();
    let others = Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != quiet {
            others(info);
        }
    }));
    let result = f();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    result
}
