//! The rules one settlement's disputes follow: [`DisputeParams`].

use fixd_proto::types::genesis::{Committee, ProtocolParams};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Everything the machine needs to know about one settlement's dispute rules.
///
/// Built from the genesis [`ProtocolParams`], the settlement's maturity and the committee with
/// [`DisputeParams::for_committee`] (or [`DisputeParams::new`] when only `n` and `q` are at hand).
/// Durations are whole seconds, amounts are wei.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisputeParams {
    /// Maturity `M`, unix seconds.
    pub maturity: u64,
    /// First challenge window, opened by the first certificate.
    pub challenge_period_secs: u64,
    /// Window reopened after a dispute round is decided (shorter by default).
    pub reopened_challenge_period_secs: u64,
    /// Every settlement is final by `M + hard_deadline_secs`.
    pub hard_deadline_secs: u64,
    /// Committee review rounds before the next dispute goes to the arbitrator. `0` sends the
    /// first dispute straight to the arbitrator.
    pub max_rounds: u8,
    /// Smallest bond of a first-round dispute, wei. At least 1.
    #[serde(with = "fixd_proto::value::wei")]
    pub min_bond_wei: u128,
    /// A reviewed value further than this from the certified value upholds the dispute, basis
    /// points of the certified value.
    pub dispute_tolerance_bp: u32,
    /// Reward of an upheld dispute, basis points of its bond, paid from the insurance pool.
    pub reward_bp: u32,
    /// Committee size `n`: review votes come from members `0..n`.
    pub committee_size: usize,
    /// Quorum `q`: review votes with a value needed to decide a review.
    pub quorum: usize,
    /// What the insurance pool holds for this settlement when the machine starts, wei. Rewards
    /// are paid from this plus what this settlement's rejected bonds add.
    #[serde(with = "fixd_proto::value::wei")]
    pub insurance_pool_wei: u128,
}

impl DisputeParams {
    /// The rules of a settlement maturing at `maturity` under `protocol`, for a committee of
    /// `committee_size` members with quorum `quorum`.
    pub fn new(
        protocol: &ProtocolParams,
        maturity: u64,
        committee_size: usize,
        quorum: usize,
        insurance_pool_wei: u128,
    ) -> Self {
        DisputeParams {
            maturity,
            challenge_period_secs: protocol.challenge_period_secs,
            reopened_challenge_period_secs: protocol.reopened_challenge_period_secs,
            hard_deadline_secs: protocol.hard_deadline_secs,
            max_rounds: protocol.max_rounds,
            min_bond_wei: protocol.min_bond_wei,
            dispute_tolerance_bp: protocol.dispute_tolerance_bp,
            reward_bp: protocol.reward_bp,
            committee_size,
            quorum,
            insurance_pool_wei,
        }
    }

    /// [`DisputeParams::new`] with `n` and `q` taken from the committee.
    pub fn for_committee(
        protocol: &ProtocolParams,
        maturity: u64,
        committee: &Committee,
        insurance_pool_wei: u128,
    ) -> Self {
        Self::new(protocol, maturity, committee.n(), committee.q(), insurance_pool_wei)
    }

    /// The hard deadline `M + hard_deadline_secs`, or `None` if it overflows `u64`.
    pub fn hard_deadline(&self) -> Option<u64> {
        self.maturity.checked_add(self.hard_deadline_secs)
    }

    /// Checks that the rules make sense.
    pub fn validate(&self) -> Result<(), Error> {
        if self.committee_size == 0 {
            return Err(Error::EmptyCommittee);
        }
        if self.quorum == 0 || self.quorum > self.committee_size {
            return Err(Error::Quorum { quorum: self.quorum, committee_size: self.committee_size });
        }
        if self.min_bond_wei == 0 {
            return Err(Error::ZeroMinBond);
        }
        if self.hard_deadline().is_none() {
            return Err(Error::HardDeadlineOverflow {
                maturity: self.maturity,
                hard_deadline_secs: self.hard_deadline_secs,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DisputeParams {
        DisputeParams::new(&ProtocolParams::default(), 1_000, 4, 3, 0)
    }

    #[test]
    fn takes_the_genesis_defaults() {
        let p = params();
        assert_eq!(p.challenge_period_secs, 7200);
        assert_eq!(p.reopened_challenge_period_secs, 3600);
        assert_eq!(p.hard_deadline(), Some(1_000 + 172_800));
        assert_eq!(p.max_rounds, 2);
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn names_each_bad_rule() {
        let mut p = params();
        p.quorum = 5;
        assert_eq!(p.validate(), Err(Error::Quorum { quorum: 5, committee_size: 4 }));
        p.quorum = 0;
        assert!(matches!(p.validate(), Err(Error::Quorum { .. })));
        p = params();
        p.committee_size = 0;
        assert_eq!(p.validate(), Err(Error::EmptyCommittee));
        p = params();
        p.min_bond_wei = 0;
        assert_eq!(p.validate(), Err(Error::ZeroMinBond));
        p = params();
        p.maturity = u64::MAX;
        assert!(matches!(p.validate(), Err(Error::HardDeadlineOverflow { .. })));
        assert!(p.validate().unwrap_err().to_string().contains("hard_deadline_secs"));
    }
}
