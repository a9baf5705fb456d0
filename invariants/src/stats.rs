//! Counters over every run of this process, for the report of a property run: how many calls
//! and reads, and how often each kind of call met each expectation. The oracle's run counts in
//! [`ORACLE`], the vault's in [`VAULT`], so that tests sharing a process (`cargo test`) keep
//! their reports apart.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::call::Call;
use crate::chain::Chain;
use crate::model::Expectation;

/// The counters of one kind of run.
#[derive(Debug)]
pub struct Tally {
    /// State-changing transactions, deployments included.
    transactions: AtomicU64,
    /// Read-only calls (the invariant checks).
    views: AtomicU64,
    /// Runs deployed (cases, with the re-runs of shrinking).
    runs: AtomicU64,
    /// How often each kind of call met each expectation: shows that the run reaches what it
    /// claims to (valid publications with payees in every mode, each kind of refused report, …).
    coverage: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Tally {
    pub const fn new() -> Self {
        Self {
            transactions: AtomicU64::new(0),
            views: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            coverage: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts one call of `kind` that met `because`.
    pub fn record(&self, kind: &'static str, because: &'static str) {
        *self.coverage.lock().unwrap_or_else(|e| e.into_inner()).entry((kind, because)).or_default() += 1;
    }

    /// How often each kind of call met each expectation, as lines `kind  expectation  count`.
    pub fn coverage(&self) -> String {
        let coverage = self.coverage.lock().unwrap_or_else(|e| e.into_inner());
        coverage.iter().map(|((kind, because), n)| format!("{kind:>18}  {because:<60} {n:>9}\n")).collect()
    }

    /// Adds a finished chain's transactions and reads to the totals.
    pub fn count_chain(&self, chain: &Chain) {
        self.transactions.fetch_add(chain.transactions, Ordering::Relaxed);
        self.views.fetch_add(chain.views, Ordering::Relaxed);
    }

    /// Counts one deployment.
    pub fn count_run(&self) {
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// `[calls, reads, runs]` so far.
    pub fn totals(&self) -> [u64; 3] {
        [&self.transactions, &self.views, &self.runs].map(|n| n.load(Ordering::Relaxed))
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// The oracle's invariant run.
pub static ORACLE: Tally = Tally::new();
/// The vault's property run ([`crate::vault`]).
pub static VAULT: Tally = Tally::new();

/// What a call did to the model, beyond succeeding or failing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// It left a refused payout as a credit.
    pub credited: bool,
    /// How many settlements it published.
    pub published: usize,
    /// It took a reservation off `totalReserved` (to the pool, or to pay rewards from).
    pub released: bool,
}

/// Counts one call of the oracle's run, what it met and what it did.
pub fn count_call(call: &Call, expected: &Expectation, effects: Effects) {
    ORACLE.record(call.kind(), expected.because);
    if !expected.succeeds {
        return;
    }
    match call {
        Call::Publish(p) if !p.outcomes.is_empty() => ORACLE.record(call.kind(), "… and it settled escrows"),
        Call::PublishBatch(b) => {
            if effects.published > 1 {
                ORACLE.record(call.kind(), "… and it published more than one settlement");
            }
            if effects.published > 0 && effects.published < b.reports.len() {
                ORACLE.record(call.kind(), "… and it skipped a report already published");
            }
            if effects.released {
                ORACLE.record(call.kind(), "… and it returned a reservation to the pool");
            }
        }
        _ => {}
    }
    if effects.credited {
        ORACLE.record(call.kind(), "… and a refused payout was credited");
    }
}
