//! [`Interest`]: what one settlement's driver would take now, so that the network can drop the
//! rest before it checks a signature or forwards a message.
//!
//! A member who floods validly signed votes for far-future rounds, or review votes for disputes
//! nobody filed, costs every honest member a signature check per message, and every honest
//! member that accepts one forwards it to the others. The driver holds none of them (its rounds
//! take messages at most [`ROUNDS_AHEAD`] past this member's round; review votes only for a
//! dispute it holds), so the network asks this summary first:
//!
//! | message | wanted when |
//! |---|---|
//! | a vote or round proposal | its decision is under way here and its round is at most [`ROUNDS_AHEAD`] past this member's round in it ([`Wanted::Now`]); past that, [`Wanted::Ahead`] |
//! | a review vote | this member holds the relay of its dispute |
//! | anything else | always |
//!
//! [`Wanted::Ahead`] is not refused outright: a member that fell behind learns from the rounds
//! f + 1 members show past its window that the committee has moved on, and jumps there (see
//! [`crate::tendermint`]). The caller lets a few such rounds per member through
//! (`fixd_node::network::validation`), which is all the jump needs and all a flood gets.
//!
//! The summary may lag the driver by the inputs in flight; a message it drops for that reason
//! comes again by catch-up.

use std::collections::BTreeSet;

use alloy_primitives::B256;
use fixd_proto::gossip::GossipMessage;
use fixd_proto::types::certificate::DecisionId;

use crate::tendermint::ROUNDS_AHEAD;

/// What one settlement's driver takes now. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    /// This member's round in each decision under way (0 before the decision starts). A few
    /// entries (the first value, the final report, a review or two) in a vector, not a B-tree,
    /// which would allocate room for eleven: every settlement's is kept.
    rounds: Vec<(DecisionId, u32)>,
    /// The disputes whose relays this member holds.
    disputes: BTreeSet<B256>,
}

/// A message the driver takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Now.
    Now,
    /// A round past the window of its decision: held only once the decision moves on, but
    /// telling of where its signer is.
    Ahead {
        decision: DecisionId,
        round: u32,
        /// The highest round of the decision held now ([`Interest::horizon`]).
        horizon: u32,
    },
}

/// Why the driver would drop a message now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unwanted {
    #[error("the {0:?} decision is not under way at this member")]
    NoDecision(DecisionId),
    #[error("dispute {0} is not held by this member")]
    UnknownDispute(B256),
}

impl Interest {
    /// The interest of a driver in these decisions (with this member's round in each) and
    /// disputes.
    pub fn new(
        rounds: impl IntoIterator<Item = (DecisionId, u32)>,
        disputes: impl IntoIterator<Item = B256>,
    ) -> Self {
        Interest { rounds: rounds.into_iter().collect(), disputes: disputes.into_iter().collect() }
    }

    /// The highest round of `decision` the driver holds messages of now; `None` if the decision
    /// is not under way.
    pub fn horizon(&self, decision: &DecisionId) -> Option<u32> {
        let round = self.rounds.iter().find_map(|(d, round)| (d == decision).then_some(*round));
        round.map(|round| round.saturating_add(ROUNDS_AHEAD))
    }

    /// Whether the driver would take `message` now. See the module docs.
    pub fn judge(&self, message: &GossipMessage) -> Result<Wanted, Unwanted> {
        let (decision, round) = match message {
            GossipMessage::Vote(v) => (v.payload.decision, v.payload.round),
            GossipMessage::Proposal(p) => (p.payload.decision(), p.payload.round),
            GossipMessage::ReviewVote(v) if !self.disputes.contains(&v.payload.dispute_id) => {
                return Err(Unwanted::UnknownDispute(v.payload.dispute_id));
            }
            _ => return Ok(Wanted::Now),
        };
        match self.horizon(&decision) {
            None => Err(Unwanted::NoDecision(decision)),
            Some(horizon) if round <= horizon => Ok(Wanted::Now),
            Some(horizon) => Ok(Wanted::Ahead { decision, round, horizon }),
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use fixd_proto::signing::Signed;
    use fixd_proto::types::certificate::{Vote, VoteStep};
    use fixd_proto::types::dispute::ReviewVote;
    use fixd_proto::types::observation::NodeValue;
    use fixd_proto::value::Wad;

    use super::*;

    const NET: B256 = B256::repeat_byte(0x42);
    const SETTLEMENT: B256 = B256::repeat_byte(7);
    const DISPUTE: B256 = B256::repeat_byte(9);

    fn vote(decision: DecisionId, round: u32) -> GossipMessage {
        let vote =
            Vote { settlement_id: SETTLEMENT, decision, round, step: VoteStep::Prevote, proposal_hash: None };
        GossipMessage::Vote(Signed::sign(&SigningKey::from_bytes(&[1; 32]), &NET, vote))
    }

    fn review_vote(dispute_id: B256) -> GossipMessage {
        let vote = ReviewVote {
            settlement_id: SETTLEMENT,
            dispute_id,
            proposal_hash: B256::ZERO,
            median_recomputes: true,
            value: NodeValue::Value(Wad::ONE),
            trade_digest: B256::ZERO,
        };
        GossipMessage::ReviewVote(Signed::sign(&SigningKey::from_bytes(&[1; 32]), &NET, vote))
    }

    #[test]
    fn rounds_in_the_window_are_wanted_now_and_past_it_ahead() {
        let interest = Interest::new([(DecisionId::Value, 3), (DecisionId::Report, 0)], []);
        assert_eq!(interest.judge(&vote(DecisionId::Value, 0)), Ok(Wanted::Now));
        assert_eq!(interest.judge(&vote(DecisionId::Value, 3 + ROUNDS_AHEAD)), Ok(Wanted::Now));
        assert_eq!(
            interest.judge(&vote(DecisionId::Value, 4 + ROUNDS_AHEAD)),
            Ok(Wanted::Ahead {
                decision: DecisionId::Value,
                round: 4 + ROUNDS_AHEAD,
                horizon: 3 + ROUNDS_AHEAD
            })
        );
        assert_eq!(
            interest.judge(&vote(DecisionId::Report, 1_000)),
            Ok(Wanted::Ahead { decision: DecisionId::Report, round: 1_000, horizon: ROUNDS_AHEAD })
        );
    }

    #[test]
    fn a_review_not_under_way_and_a_dispute_not_held_are_unwanted() {
        let review = DecisionId::Review { dispute_id: DISPUTE };
        let without = Interest::new([(DecisionId::Value, 0)], []);
        assert_eq!(without.judge(&vote(review, 0)), Err(Unwanted::NoDecision(review)));
        assert_eq!(without.judge(&review_vote(DISPUTE)), Err(Unwanted::UnknownDispute(DISPUTE)));
        let with = Interest::new([(DecisionId::Value, 0), (review, 1)], [DISPUTE]);
        assert_eq!(with.judge(&vote(review, 1)), Ok(Wanted::Now));
        assert_eq!(with.judge(&review_vote(DISPUTE)), Ok(Wanted::Now));
    }
}
