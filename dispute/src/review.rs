//! The committee review of one dispute round: counting review votes and deciding.
//!
//! - Each member's **first** vote in a round counts; later ones are ignored.
//! - The review is **decided** by the vote that brings the count of votes *with a value* to `q`:
//!   the reviewed value is the median of those `q` values, with the methodology's rounding
//!   ([`fixd_proto::methodology::median`]: even `q` takes the mean of the two middle values,
//!   rounded down).
//! - The round is **upheld** when `|reviewed − certified| × 10000 > tolerance_bp × certified`
//!   (exact, in 256 bits), or when at least `q` of the counted votes say the certified median
//!   does not recompute from the certified observations (the objective `miscomputed` check: a
//!   certificate whose median does not recompute is replaced even within tolerance).
//!   Otherwise it is **rejected**.
//! - The review is **inconclusive** as soon as so many members voted "no value" that `q` values
//!   can no longer come (`n − no_value < q`): the committee cannot decide, so the round goes to
//!   the arbitrator.

use std::collections::BTreeSet;

use alloy_primitives::U256;
use fixd_proto::methodology::median;
use fixd_proto::value::Wad;
use serde::{Deserialize, Serialize};

/// True when `reviewed` is further than `tolerance_bp` basis points from `certified`:
/// `|reviewed − certified| × 10000 > tolerance_bp × certified`, exactly.
pub fn beyond_tolerance(certified: Wad, reviewed: Wad, tolerance_bp: u32) -> bool {
    let diff = U256::from(certified.abs_diff(reviewed).raw());
    diff * U256::from(10_000u32) > U256::from(tolerance_bp) * U256::from(certified.raw())
}

/// What a review concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Verdict {
    /// `q` values are in; `upheld` says whether the certified value is replaced by `reviewed`.
    Decided { reviewed: Wad, upheld: bool },
    /// `q` values can no longer come: the round goes to the arbitrator.
    Inconclusive,
}

/// The votes counted so far in one review round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tally {
    /// Members whose vote counted.
    voted: BTreeSet<usize>,
    /// Values of the counted votes that had one, in arrival order.
    values: Vec<Wad>,
    /// Counted votes with no value.
    no_value: usize,
    /// Counted votes saying the certified median does not recompute.
    not_recomputing: usize,
}

impl Tally {
    /// True when `member` already has a counted vote.
    pub fn has_voted(&self, member: usize) -> bool {
        self.voted.contains(&member)
    }

    /// How many members' votes counted.
    pub fn votes(&self) -> usize {
        self.voted.len()
    }

    /// Counts a member's first vote. The caller has checked [`Tally::has_voted`].
    pub fn count(&mut self, member: usize, value: Option<Wad>, median_recomputes: bool) {
        self.voted.insert(member);
        match value {
            Some(v) => self.values.push(v),
            None => self.no_value += 1,
        }
        if !median_recomputes {
            self.not_recomputing += 1;
        }
    }

    /// The verdict once the votes allow one, for a committee of `n` with quorum `q`.
    pub fn verdict(&self, certified: Wad, n: usize, q: usize, tolerance_bp: u32) -> Option<Verdict> {
        if self.values.len() >= q {
            let reviewed = median(&self.values[..q])?;
            let upheld = beyond_tolerance(certified, reviewed, tolerance_bp) || self.not_recomputing >= q;
            return Some(Verdict::Decided { reviewed, upheld });
        }
        if n.saturating_sub(self.no_value) < q {
            return Some(Verdict::Inconclusive);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(raw: u128) -> Wad {
        Wad::from_raw(raw)
    }

    #[test]
    fn an_even_quorum_takes_the_mean_of_the_two_middle_values_rounded_down() {
        let mut t = Tally::default();
        t.count(0, Some(w(4)), true);
        t.count(1, Some(w(1)), true);
        assert_eq!(t.verdict(w(1), 2, 2, 0), Some(Verdict::Decided { reviewed: w(2), upheld: true }));
    }

    #[test]
    fn tolerance_boundary_is_exact() {
        let c = Wad::from_units(2000).unwrap();
        // 10 bp of 2000 is exactly 2: a distance of 2 stays within, 2 + 1 wei is beyond.
        let two = Wad::from_units(2).unwrap();
        assert!(!beyond_tolerance(c, c.checked_add(two).unwrap(), 10));
        assert!(!beyond_tolerance(c, c.checked_sub(two).unwrap(), 10));
        assert!(beyond_tolerance(c, w(c.raw() + two.raw() + 1), 10));
        assert!(beyond_tolerance(c, w(c.raw() - two.raw() - 1), 10));
        assert!(!beyond_tolerance(Wad::ZERO, Wad::ZERO, 0));
        assert!(beyond_tolerance(Wad::ZERO, w(1), u32::MAX), "any move from zero is beyond");
        assert!(!beyond_tolerance(Wad::MAX, Wad::ZERO, u32::MAX), "no overflow");
    }

    #[test]
    fn decides_on_the_first_q_values() {
        let c = Wad::from_units(2000).unwrap();
        let far = Wad::from_units(2100).unwrap();
        let mut t = Tally::default();
        t.count(0, Some(far), true);
        t.count(1, None, true);
        assert_eq!(t.verdict(c, 4, 3, 10), None);
        t.count(2, Some(far), true);
        assert_eq!(t.verdict(c, 4, 3, 10), None);
        t.count(3, Some(c), true);
        assert_eq!(t.verdict(c, 4, 3, 10), Some(Verdict::Decided { reviewed: far, upheld: true }));
    }

    #[test]
    fn a_quorum_saying_the_median_does_not_recompute_upholds_within_tolerance() {
        let c = Wad::from_units(2000).unwrap();
        let near = w(c.raw() + 1);
        let mut t = Tally::default();
        for m in 0..3 {
            t.count(m, Some(near), false);
        }
        assert_eq!(t.verdict(c, 4, 3, 10), Some(Verdict::Decided { reviewed: near, upheld: true }));
        let mut t = Tally::default();
        t.count(0, Some(near), false);
        t.count(1, Some(near), false);
        t.count(2, Some(near), true);
        assert_eq!(t.verdict(c, 4, 3, 10), Some(Verdict::Decided { reviewed: near, upheld: false }));
    }

    #[test]
    fn too_many_no_values_is_inconclusive() {
        let c = Wad::ONE;
        let mut t = Tally::default();
        t.count(0, None, true);
        assert_eq!(t.verdict(c, 4, 3, 10), None, "3 values can still come from 3 members");
        t.count(1, None, true);
        assert_eq!(t.verdict(c, 4, 3, 10), Some(Verdict::Inconclusive));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The 256-bit tolerance check agrees with the same check in checked u128 when that
        /// one does not overflow.
        #[test]
        fn tolerance_agrees_with_small_arithmetic(c in any::<u64>(), r in any::<u64>(), bp in 0u32..100_000) {
            let (c, r) = (u128::from(c), u128::from(r));
            let expected = c.abs_diff(r) * 10_000 > u128::from(bp) * c;
            prop_assert_eq!(beyond_tolerance(w(c), w(r), bp), expected);
        }
    }
}
