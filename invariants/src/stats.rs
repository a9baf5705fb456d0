//! Counters over every run of this process, for the report of the invariant run: how many
//! calls and reads, and how often each kind of call met each expectation.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::call::Call;
use crate::chain::Chain;
use crate::model::Expectation;

/// Transactions and views run by every run of this process.
static TRANSACTIONS: AtomicU64 = AtomicU64::new(0);
static VIEWS: AtomicU64 = AtomicU64::new(0);
/// Runs deployed (cases, with the re-runs of shrinking).
static RUNS: AtomicU64 = AtomicU64::new(0);

/// How often each kind of call met each expectation, in every run of this process: shows
/// that the run reaches what it claims to (valid publications with payees in every mode, each
/// kind of refused report, …).
static COVERAGE: Mutex<BTreeMap<(&'static str, &'static str), u64>> = Mutex::new(BTreeMap::new());

/// How often each kind of call met each expectation, as lines `kind  expectation  count`.
pub fn coverage() -> String {
    let coverage = COVERAGE.lock().unwrap_or_else(|e| e.into_inner());
    coverage.iter().map(|((kind, because), n)| format!("{kind:>18}  {because:<60} {n:>9}\n")).collect()
}

fn record(kind: &'static str, because: &'static str) {
    *COVERAGE.lock().unwrap_or_else(|e| e.into_inner()).entry((kind, because)).or_default() += 1;
}

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

/// Counts one call, what it met and what it did.
pub fn count_call(call: &Call, expected: &Expectation, effects: Effects) {
    record(call.kind(), expected.because);
    if !expected.succeeds {
        return;
    }
    match call {
        Call::Publish(p) if !p.outcomes.is_empty() => record(call.kind(), "… and it settled escrows"),
        Call::PublishBatch(b) => {
            if effects.published > 1 {
                record(call.kind(), "… and it published more than one settlement");
            }
            if effects.published > 0 && effects.published < b.reports.len() {
                record(call.kind(), "… and it skipped a report already published");
            }
            if effects.released {
                record(call.kind(), "… and it returned a reservation to the pool");
            }
        }
        _ => {}
    }
    if effects.credited {
        record(call.kind(), "… and a refused payout was credited");
    }
}

/// Adds a finished chain's transactions and reads to the totals.
pub fn count_chain(chain: &Chain) {
    TRANSACTIONS.fetch_add(chain.transactions, Ordering::Relaxed);
    VIEWS.fetch_add(chain.views, Ordering::Relaxed);
}

/// Counts one deployment.
pub fn count_run() {
    RUNS.fetch_add(1, Ordering::Relaxed);
}

/// `[calls, reads, runs]` so far.
pub fn totals() -> [u64; 3] {
    [&TRANSACTIONS, &VIEWS, &RUNS].map(|n| n.load(Ordering::Relaxed))
}
