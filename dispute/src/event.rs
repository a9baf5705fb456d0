//! What the node feeds the machine: [`Event`].

use alloy_primitives::{Address, B256};
use fixd_proto::types::dispute::{ArbitratorRuling, Dispute, DisputeReason, ReviewVote};
use fixd_proto::value::Wad;
use serde::{Deserialize, Serialize};

/// Something that happened to the settlement. The node checks signatures, the escrow and
/// membership before it feeds an event in; the machine decides what the event means.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Event {
    /// A proposal of the settlement got its certificate. The machine, not the proposal,
    /// decides the window's deadline.
    Certified {
        /// The proposal's round.
        round: u32,
        /// `keccak256(BCS(Signed<Proposal>))`: what disputes of this value must name.
        proposal_hash: B256,
        value: Wad,
    },
    /// A signed dispute whose escrowed bond the node has read from the chain.
    DisputeFiled(DisputeFiling),
    /// A committee member's review vote.
    ReviewVote(ReviewVoteCast),
    /// The arbitrator's signed ruling.
    Ruling {
        dispute_id: B256,
        /// The value that stands.
        value: Wad,
        upheld: bool,
    },
    /// Time passed. Send one at [`crate::SettlementDisputes::next_wakeup`].
    Tick,
}

/// The parts of a [`Dispute`] the machine needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DisputeFiling {
    pub dispute_id: B256,
    pub disputer: Address,
    /// The escrowed bond, wei, as read from the chain.
    #[serde(with = "fixd_proto::value::wei")]
    pub bond_wei: u128,
    /// The certified proposal the dispute contests.
    pub proposal_hash: B256,
    /// Informational: the reviewed value decides, not the claim.
    pub claimed_value: Option<Wad>,
    pub reason: DisputeReason,
}

impl From<&Dispute> for DisputeFiling {
    fn from(d: &Dispute) -> Self {
        DisputeFiling {
            dispute_id: d.dispute_id,
            disputer: d.disputer,
            bond_wei: d.bond_wei,
            proposal_hash: d.proposal_hash,
            claimed_value: d.claimed_value,
            reason: d.reason,
        }
    }
}

/// One member's review vote, as the machine counts it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReviewVoteCast {
    /// The member's index in the committee (`0..n`).
    pub member: usize,
    /// The dispute the vote was signed for. Any dispute of the round under review will do:
    /// the vote counts for the whole round.
    pub dispute_id: B256,
    /// The member's recomputed value; `None` when it has no value.
    pub value: Option<Wad>,
    /// Whether the certified median recomputes from the certified observations.
    pub median_recomputes: bool,
}

impl ReviewVoteCast {
    /// The vote of committee member `member`.
    pub fn from_vote(member: usize, vote: &ReviewVote) -> Self {
        ReviewVoteCast {
            member,
            dispute_id: vote.dispute_id,
            value: vote.value.value(),
            median_recomputes: vote.median_recomputes,
        }
    }
}

impl From<&ArbitratorRuling> for Event {
    fn from(r: &ArbitratorRuling) -> Self {
        Event::Ruling { dispute_id: r.dispute_id, value: r.value, upheld: r.upheld }
    }
}

#[cfg(test)]
mod tests {
    use fixd_proto::types::observation::{NoValueReason, NodeValue};

    use super::*;

    #[test]
    fn wire_types_map_onto_events() {
        let d = Dispute {
            settlement_id: B256::repeat_byte(1),
            dispute_id: B256::repeat_byte(2),
            proposal_hash: B256::repeat_byte(3),
            claimed_value: Some(Wad::ONE),
            reason: DisputeReason::Miscomputed,
            evidence: "replay of partition 7".into(),
            bond_wei: 42,
            bond_tx: B256::repeat_byte(4),
            disputer: Address::repeat_byte(5),
        };
        let f = DisputeFiling::from(&d);
        assert_eq!(
            (f.dispute_id, f.proposal_hash, f.bond_wei, f.disputer, f.claimed_value, f.reason),
            (d.dispute_id, d.proposal_hash, 42, d.disputer, Some(Wad::ONE), d.reason)
        );

        let vote = ReviewVote {
            settlement_id: d.settlement_id,
            dispute_id: d.dispute_id,
            proposal_hash: d.proposal_hash,
            median_recomputes: false,
            value: NodeValue::NoValue(NoValueReason::NoVenues),
            trade_digest: B256::ZERO,
        };
        let cast = ReviewVoteCast::from_vote(3, &vote);
        assert_eq!(
            cast,
            ReviewVoteCast { member: 3, dispute_id: d.dispute_id, value: None, median_recomputes: false }
        );

        let ruling = ArbitratorRuling {
            settlement_id: d.settlement_id,
            dispute_id: d.dispute_id,
            value: Wad::ONE,
            upheld: true,
        };
        assert_eq!(
            Event::from(&ruling),
            Event::Ruling { dispute_id: d.dispute_id, value: Wad::ONE, upheld: true }
        );
    }
}
