//! The bond ledger: what happens to each escrowed bond, in wei, with the rounding written down.
//!
//! | decision   | refund | reward                                           | pooled      | burned          |
//! |------------|--------|--------------------------------------------------|-------------|-----------------|
//! | upheld     | bond   | `min(⌊bond × reward_bp / 10000⌋, pool)`           | 0           | 0               |
//! | rejected   | 0      | 0                                                | `⌊bond / 2⌋` | `bond − pooled` |
//! | unresolved | bond   | 0                                                | 0           | 0               |
//!
//! - The odd wei of a rejected bond burns.
//! - `pool` is the insurance pool at the moment of the decision: the settlement's starting pool,
//!   plus what earlier rejected bonds of this settlement pooled, minus the rewards already paid.
//!   Disputes decided together are paid in filing order, so when the pool runs short the first
//!   filed is paid first and a later one may get a smaller reward, or none.
//! - *Unresolved* is a dispute whose round was still open at the hard deadline: the disputer
//!   did nothing wrong and nobody decided, so the bond comes back whole.
//!
//! Conservation, per outcome and in total: `bond = refund + pooled + burned`, and
//! `pool_end = pool_start + Σpooled − Σreward ≥ 0`. [`Ledger`] keeps these totals and
//! [`LedgerTotals::check`] verifies them to the wei. The contract applies the outcomes of a
//! final report in order with the same arithmetic.

use alloy_primitives::{Address, B256, U256};
use fixd_proto::types::report::BondOutcome;
use serde::{Deserialize, Serialize};

/// How a dispute was decided, for the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The review (or the arbitrator) agreed with the disputer.
    Upheld,
    /// The review (or the arbitrator) disagreed: the bond is forfeit.
    Rejected,
    /// Still open at the hard deadline: the bond is returned, with no reward.
    Unresolved,
}

/// `⌊bond × reward_bp / 10000⌋`, exact (computed in 256 bits), saturating at `u128::MAX`.
pub fn full_reward(bond: u128, reward_bp: u32) -> u128 {
    let r = U256::from(bond) * U256::from(reward_bp) / U256::from(10_000u32);
    r.saturating_to()
}

/// The running insurance pool and totals of one settlement's bonds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ledger {
    totals: LedgerTotals,
}

/// Sums over every decided bond of a settlement, in wei.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LedgerTotals {
    /// What the insurance pool held when the settlement started.
    #[serde(with = "fixd_proto::value::wei")]
    pub pool_start: u128,
    /// What it holds after every decision so far.
    #[serde(with = "fixd_proto::value::wei")]
    pub pool_end: u128,
    /// Σbond of the decided disputes.
    #[serde(with = "fixd_proto::value::wei")]
    pub escrowed: u128,
    /// Σrefund.
    #[serde(with = "fixd_proto::value::wei")]
    pub refunded: u128,
    /// Σreward, paid out of the pool.
    #[serde(with = "fixd_proto::value::wei")]
    pub rewarded: u128,
    /// Σpooled, paid into the pool.
    #[serde(with = "fixd_proto::value::wei")]
    pub pooled: u128,
    /// Σburned.
    #[serde(with = "fixd_proto::value::wei")]
    pub burned: u128,
}

/// A broken ledger identity (never produced by this crate; see [`LedgerTotals::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerViolation {
    /// `escrowed ≠ refunded + pooled + burned`.
    Escrow,
    /// `pool_end ≠ pool_start + pooled − rewarded`.
    Pool,
}

impl LedgerTotals {
    /// Checks `escrowed = refunded + pooled + burned` and
    /// `pool_end = pool_start + pooled − rewarded` exactly (in 256 bits, so nothing wraps).
    pub fn check(&self) -> Result<(), LedgerViolation> {
        let w = U256::from;
        if w(self.escrowed) != w(self.refunded) + w(self.pooled) + w(self.burned) {
            return Err(LedgerViolation::Escrow);
        }
        if w(self.pool_end) + w(self.rewarded) != w(self.pool_start) + w(self.pooled) {
            return Err(LedgerViolation::Pool);
        }
        Ok(())
    }

    /// The totals of a list of outcomes applied in order to a pool holding `pool_start`, or
    /// `None` if some outcome breaks `bond = refund + pooled + burned`, pays a reward the pool
    /// does not hold at that point, or overflows.
    pub fn of(pool_start: u128, outcomes: &[BondOutcome]) -> Option<LedgerTotals> {
        let mut t = LedgerTotals { pool_start, pool_end: pool_start, ..LedgerTotals::default() };
        for o in outcomes {
            let parts = o.refund.checked_add(o.pooled)?.checked_add(o.burned)?;
            if parts != o.bond {
                return None;
            }
            t.pool_end = t.pool_end.checked_add(o.pooled)?.checked_sub(o.reward)?;
            t.escrowed = t.escrowed.checked_add(o.bond)?;
            t.refunded = t.refunded.checked_add(o.refund)?;
            t.rewarded = t.rewarded.checked_add(o.reward)?;
            t.pooled = t.pooled.checked_add(o.pooled)?;
            t.burned = t.burned.checked_add(o.burned)?;
        }
        Some(t)
    }
}

impl Ledger {
    /// A ledger whose insurance pool starts at `pool_start` wei.
    pub fn new(pool_start: u128) -> Self {
        Ledger { totals: LedgerTotals { pool_start, pool_end: pool_start, ..Default::default() } }
    }

    /// What the insurance pool holds now.
    pub fn pool(&self) -> u128 {
        self.totals.pool_end
    }

    /// The totals so far.
    pub fn totals(&self) -> LedgerTotals {
        self.totals
    }

    /// How much more bond the ledger can take before some total could overflow `u128`.
    ///
    /// Every total is bounded by `pool_start + escrowed`, so keeping that sum within `u128`
    /// keeps every sum exact. Real ETH amounts (all the ETH there is, ~2^87 wei) never come
    /// close.
    pub fn headroom(&self, escrowed_open: u128) -> u128 {
        u128::MAX
            .saturating_sub(self.totals.pool_start)
            .saturating_sub(self.totals.escrowed)
            .saturating_sub(escrowed_open)
    }

    /// Decides one bond, updates the pool and the totals, and returns its outcome.
    ///
    /// The caller keeps `pool_start + escrowed` within `u128` (see [`Ledger::headroom`]), so
    /// the additions below cannot overflow; they saturate rather than panic regardless.
    pub fn decide(
        &mut self,
        dispute_id: B256,
        disputer: Address,
        bond: u128,
        decision: Decision,
        reward_bp: u32,
    ) -> BondOutcome {
        let (refund, reward, pooled) = match decision {
            Decision::Upheld => (bond, full_reward(bond, reward_bp).min(self.totals.pool_end), 0),
            Decision::Rejected => (0, 0, bond / 2),
            Decision::Unresolved => (bond, 0, 0),
        };
        let burned = bond - refund - pooled;
        let t = &mut self.totals;
        t.pool_end = t.pool_end.saturating_add(pooled) - reward;
        t.escrowed = t.escrowed.saturating_add(bond);
        t.refunded = t.refunded.saturating_add(refund);
        t.rewarded = t.rewarded.saturating_add(reward);
        t.pooled = t.pooled.saturating_add(pooled);
        t.burned = t.burned.saturating_add(burned);
        BondOutcome { dispute_id, disputer, bond, refund, reward, pooled, burned }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decide(l: &mut Ledger, bond: u128, d: Decision, bp: u32) -> BondOutcome {
        l.decide(B256::ZERO, Address::ZERO, bond, d, bp)
    }

    #[test]
    fn rejected_bond_burns_the_odd_wei() {
        let mut l = Ledger::new(0);
        let o = decide(&mut l, 7, Decision::Rejected, 5000);
        assert_eq!((o.refund, o.reward, o.pooled, o.burned), (0, 0, 3, 4));
        assert_eq!(l.pool(), 3);
        let o = decide(&mut l, 1, Decision::Rejected, 5000);
        assert_eq!((o.pooled, o.burned), (0, 1));
    }

    #[test]
    fn upheld_reward_rounds_down_and_is_capped_by_the_pool() {
        let mut l = Ledger::new(10);
        // 999 × 5000 / 10000 = 499.5 → 499, capped by the pool (10).
        let o = decide(&mut l, 999, Decision::Upheld, 5000);
        assert_eq!((o.refund, o.reward, o.pooled, o.burned), (999, 10, 0, 0));
        assert_eq!(l.pool(), 0);
        let mut l = Ledger::new(1_000);
        let o = decide(&mut l, 999, Decision::Upheld, 5000);
        assert_eq!(o.reward, 499);
        assert_eq!(l.pool(), 501);
        assert_eq!(full_reward(3, 3333), 0);
        assert_eq!(full_reward(u128::MAX, 10_000), u128::MAX);
        assert_eq!(full_reward(u128::MAX, 20_000), u128::MAX, "saturates, never wraps");
    }

    #[test]
    fn unresolved_bond_comes_back_whole() {
        let mut l = Ledger::new(5);
        let o = decide(&mut l, 11, Decision::Unresolved, 5000);
        assert_eq!((o.refund, o.reward, o.pooled, o.burned), (11, 0, 0, 0));
        assert_eq!(l.pool(), 5);
    }

    #[test]
    fn check_names_the_broken_identity() {
        let mut t = LedgerTotals { escrowed: 2, refunded: 1, burned: 1, ..Default::default() };
        assert_eq!(t.check(), Ok(()));
        t.burned = 0;
        assert_eq!(t.check(), Err(LedgerViolation::Escrow));
        let t = LedgerTotals { pool_start: 5, pool_end: 6, ..Default::default() };
        assert_eq!(t.check(), Err(LedgerViolation::Pool));
    }

    fn decision() -> impl Strategy<Value = Decision> {
        prop_oneof![Just(Decision::Upheld), Just(Decision::Rejected), Just(Decision::Unresolved)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Any sequence of decisions conserves every wei, and the totals recomputed from the
        /// outcomes alone (as the contract does) agree with the running totals.
        #[test]
        fn decisions_conserve_every_wei(
            pool_start in prop_oneof![Just(0u128), 0u128..1_000, any::<u64>().prop_map(u128::from)],
            reward_bp in prop_oneof![Just(5000u32), 0u32..30_000],
            bonds in prop::collection::vec(
                (prop_oneof![1u128..100, any::<u64>().prop_map(u128::from), any::<u128>().prop_map(|b| b >> 8)], decision()),
                0..20,
            ),
        ) {
            let mut l = Ledger::new(pool_start);
            let mut outcomes = Vec::new();
            for (bond, d) in bonds {
                if l.headroom(0) < bond {
                    continue;
                }
                let pool_before = l.pool();
                let o = decide(&mut l, bond, d, reward_bp);
                prop_assert_eq!(o.refund + o.pooled + o.burned, o.bond);
                prop_assert!(o.reward <= pool_before);
                if d == Decision::Upheld {
                    prop_assert_eq!(o.reward, full_reward(bond, reward_bp).min(pool_before));
                }
                if d == Decision::Rejected {
                    prop_assert_eq!(o.pooled, bond / 2);
                    prop_assert!(o.burned - o.pooled <= 1);
                }
                outcomes.push(o);
            }
            prop_assert_eq!(l.totals().check(), Ok(()));
            prop_assert_eq!(LedgerTotals::of(pool_start, &outcomes), Some(l.totals()));
        }
    }
}
