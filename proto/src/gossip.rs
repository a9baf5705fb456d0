//! The gossip envelope: [`GossipMessage`], one signed message of any kind, and its canonical
//! wire encoding. The network layer (`fixd-node`) puts each kind on its own topic; the pure
//! layers above (`fixd-decision`) take and produce these messages without knowing libp2p.

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::eip712::ReportSignature;
use crate::encoding::{DecodeError, from_bcs, to_bcs};
use crate::signing::{PublicKey, Signed};
use crate::types::certificate::{DecisionId, RoundProposal, Vote, VoteStep};
use crate::types::dispute::{RelayedDispute, RelayedRuling, ReviewVote};
use crate::types::observation::Observation;
use crate::types::report::BatchSignature;
use crate::types::settlement::SettlementId;

/// The settlement of an empty batch, which validation rejects.
static NO_SETTLEMENT: SettlementId = SettlementId::ZERO;

/// One gossiped message. Each variant carries its author's signature, so the gossip layer
/// needs no signature of its own (`ValidationMode::Anonymous`).
///
/// The encoding is BCS: a ULEB128 variant index, then the signed message. New variants go at
/// the end so existing indices keep their meaning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum GossipMessage {
    Observation(Signed<Observation>),
    /// A round leader's proposal, with the candidate it proposes.
    Proposal(Signed<RoundProposal>),
    Vote(Signed<Vote>),
    /// A member's EIP-712 signature over the settlement's final report, wrapped in its ed25519
    /// signature.
    ReportSignature(Signed<ReportSignature>),
    /// A member's review of a dispute (a review certificate lists q of them).
    ReviewVote(Signed<ReviewVote>),
    /// A dispute one member accepted through its API, relayed under its signature.
    Dispute(Signed<RelayedDispute>),
    /// An arbitrator's ruling one member accepted through its API, relayed under its signature.
    Ruling(Signed<RelayedRuling>),
    /// A member's EIP-712 signature over a batch of final reports, wrapped in its ed25519
    /// signature.
    BatchSignature(Signed<BatchSignature>),
}

/// The kind of a [`GossipMessage`]; one gossip topic per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Observation,
    Proposal,
    Vote,
    ReportSignature,
    ReviewVote,
    Dispute,
    Ruling,
    BatchSignature,
}

impl MessageKind {
    pub const ALL: [MessageKind; 8] = [
        MessageKind::Observation,
        MessageKind::Proposal,
        MessageKind::Vote,
        MessageKind::ReportSignature,
        MessageKind::ReviewVote,
        MessageKind::Dispute,
        MessageKind::Ruling,
        MessageKind::BatchSignature,
    ];

    /// The last segment of the topic name.
    pub fn topic_suffix(self) -> &'static str {
        match self {
            MessageKind::Observation => "observations",
            MessageKind::Proposal => "proposals",
            MessageKind::Vote => "votes",
            MessageKind::ReportSignature => "report_signatures",
            MessageKind::ReviewVote => "review_votes",
            MessageKind::Dispute => "disputes",
            MessageKind::Ruling => "rulings",
            MessageKind::BatchSignature => "batch_signatures",
        }
    }
}

impl GossipMessage {
    pub fn kind(&self) -> MessageKind {
        match self {
            GossipMessage::Observation(_) => MessageKind::Observation,
            GossipMessage::Proposal(_) => MessageKind::Proposal,
            GossipMessage::Vote(_) => MessageKind::Vote,
            GossipMessage::ReportSignature(_) => MessageKind::ReportSignature,
            GossipMessage::ReviewVote(_) => MessageKind::ReviewVote,
            GossipMessage::Dispute(_) => MessageKind::Dispute,
            GossipMessage::Ruling(_) => MessageKind::Ruling,
            GossipMessage::BatchSignature(_) => MessageKind::BatchSignature,
        }
    }

    /// The member who signed the message.
    pub fn signer(&self) -> &PublicKey {
        match self {
            GossipMessage::Observation(m) => &m.signer,
            GossipMessage::Proposal(m) => &m.signer,
            GossipMessage::Vote(m) => &m.signer,
            GossipMessage::ReportSignature(m) => &m.signer,
            GossipMessage::ReviewVote(m) => &m.signer,
            GossipMessage::Dispute(m) => &m.signer,
            GossipMessage::Ruling(m) => &m.signer,
            GossipMessage::BatchSignature(m) => &m.signer,
        }
    }

    /// The settlement the message is about; a batch signature's first settlement (its batch
    /// spans several, and is never empty once validated).
    pub fn settlement_id(&self) -> &SettlementId {
        match self {
            GossipMessage::Observation(m) => &m.payload.settlement_id,
            GossipMessage::Proposal(m) => &m.payload.proposal.payload.settlement_id,
            GossipMessage::Vote(m) => &m.payload.settlement_id,
            GossipMessage::ReportSignature(m) => &m.payload.report.settlement_id,
            GossipMessage::ReviewVote(m) => &m.payload.settlement_id,
            GossipMessage::Dispute(m) => &m.payload.dispute.dispute.settlement_id,
            GossipMessage::Ruling(m) => &m.payload.ruling.ruling.settlement_id,
            GossipMessage::BatchSignature(m) => {
                m.payload.batch.reports.first().map_or(&NO_SETTLEMENT, |r| &r.settlement_id)
            }
        }
    }

    /// The signing slot's round: a proposal's or vote's round, a final report's round, 0 for an
    /// observation (one per member and settlement).
    pub fn round(&self) -> u32 {
        match self {
            GossipMessage::Observation(_) => 0,
            GossipMessage::Proposal(m) => m.payload.round,
            GossipMessage::Vote(m) => m.payload.round,
            GossipMessage::ReportSignature(m) => m.payload.report.round,
            // Not round-bound: one per (member, dispute), not per round.
            GossipMessage::ReviewVote(_)
            | GossipMessage::Dispute(_)
            | GossipMessage::Ruling(_)
            | GossipMessage::BatchSignature(_) => 0,
        }
    }

    /// The decision a round proposal or vote belongs to; `None` for other messages.
    pub fn decision(&self) -> Option<DecisionId> {
        match self {
            GossipMessage::Proposal(m) => Some(m.payload.decision()),
            GossipMessage::Vote(m) => Some(m.payload.decision),
            _ => None,
        }
    }

    /// A vote's step; `None` for other messages.
    pub fn step(&self) -> Option<VoteStep> {
        match self {
            GossipMessage::Vote(m) => Some(m.payload.step),
            _ => None,
        }
    }

    /// The signed message's own identity, [`Signed::hash`]: the key of the seen-set, and the
    /// hash that proposals and votes refer to.
    pub fn hash(&self) -> B256 {
        match self {
            GossipMessage::Observation(m) => m.hash(),
            GossipMessage::Proposal(m) => m.hash(),
            GossipMessage::Vote(m) => m.hash(),
            GossipMessage::ReportSignature(m) => m.hash(),
            GossipMessage::ReviewVote(m) => m.hash(),
            GossipMessage::Dispute(m) => m.hash(),
            GossipMessage::Ruling(m) => m.hash(),
            GossipMessage::BatchSignature(m) => m.hash(),
        }
    }

    /// The time the author claims to have signed it (unix seconds), for the clock-skew check.
    /// Votes and report signatures carry none.
    pub fn signed_at(&self) -> Option<u64> {
        match self {
            GossipMessage::Observation(m) => Some(m.payload.observed_at),
            // A fresh candidate is dated now; a re-proposed one keeps its first date.
            GossipMessage::Proposal(m) if m.payload.pol_round.is_none() => {
                Some(m.payload.proposal.payload.proposed_at)
            }
            GossipMessage::Proposal(_) => None,
            GossipMessage::Dispute(m) => Some(m.payload.accepted_at),
            GossipMessage::Ruling(m) => Some(m.payload.accepted_at),
            GossipMessage::Vote(_)
            | GossipMessage::ReportSignature(_)
            | GossipMessage::ReviewVote(_)
            | GossipMessage::BatchSignature(_) => None,
        }
    }

    /// Checks the author's signature (strict ed25519) for `network_id`.
    pub fn verify(&self, network_id: &B256) -> Result<(), crate::signing::SignatureError> {
        match self {
            GossipMessage::Observation(m) => m.verify(network_id),
            GossipMessage::Proposal(m) => m.verify(network_id),
            GossipMessage::Vote(m) => m.verify(network_id),
            GossipMessage::ReportSignature(m) => m.verify(network_id),
            GossipMessage::ReviewVote(m) => m.verify(network_id),
            GossipMessage::Dispute(m) => m.verify(network_id),
            GossipMessage::Ruling(m) => m.verify(network_id),
            GossipMessage::BatchSignature(m) => m.verify(network_id),
        }
    }

    /// The wire bytes: `BCS(self)`.
    pub fn encode(&self) -> Vec<u8> {
        to_bcs(self)
    }

    /// Decodes wire bytes (canonical BCS, no trailing bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        from_bcs(bytes)
    }
}
