//! What travels on the gossip topics: [`GossipMessage`], its topics and its wire encoding.

use alloy_primitives::{B256, keccak256};
use fixd_proto::eip712::ReportSignature;
use fixd_proto::encoding::{DecodeError, from_bcs, to_bcs};
use fixd_proto::signing::{PublicKey, Signed};
use fixd_proto::types::certificate::{Proposal, Vote};
use fixd_proto::types::dispute::{RelayedDispute, RelayedRuling, ReviewVote};
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::SettlementId;
use libp2p::gossipsub::{IdentTopic, MessageId, TopicHash};
use serde::{Deserialize, Serialize};

/// One gossiped message. Each variant carries its author's signature, so the gossip layer
/// needs no signature of its own (`ValidationMode::Anonymous`).
///
/// The encoding is BCS: a ULEB128 variant index, then the signed message. New variants go at
/// the end so existing indices keep their meaning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum GossipMessage {
    Observation(Signed<Observation>),
    Proposal(Signed<Proposal>),
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
}

impl MessageKind {
    pub const ALL: [MessageKind; 7] = [
        MessageKind::Observation,
        MessageKind::Proposal,
        MessageKind::Vote,
        MessageKind::ReportSignature,
        MessageKind::ReviewVote,
        MessageKind::Dispute,
        MessageKind::Ruling,
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
        }
    }

    /// The settlement the message is about.
    pub fn settlement_id(&self) -> &SettlementId {
        match self {
            GossipMessage::Observation(m) => &m.payload.settlement_id,
            GossipMessage::Proposal(m) => &m.payload.settlement_id,
            GossipMessage::Vote(m) => &m.payload.settlement_id,
            GossipMessage::ReportSignature(m) => &m.payload.report.settlement_id,
            GossipMessage::ReviewVote(m) => &m.payload.settlement_id,
            GossipMessage::Dispute(m) => &m.payload.dispute.dispute.settlement_id,
            GossipMessage::Ruling(m) => &m.payload.ruling.ruling.settlement_id,
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
            GossipMessage::ReviewVote(_) | GossipMessage::Dispute(_) | GossipMessage::Ruling(_) => 0,
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
        }
    }

    /// The time the author claims to have signed it (unix seconds), for the clock-skew check.
    /// Votes and report signatures carry none.
    pub fn signed_at(&self) -> Option<u64> {
        match self {
            GossipMessage::Observation(m) => Some(m.payload.observed_at),
            GossipMessage::Proposal(m) => Some(m.payload.proposed_at),
            GossipMessage::Dispute(m) => Some(m.payload.accepted_at),
            GossipMessage::Ruling(m) => Some(m.payload.accepted_at),
            GossipMessage::Vote(_) | GossipMessage::ReportSignature(_) | GossipMessage::ReviewVote(_) => None,
        }
    }

    /// Checks the author's signature (strict ed25519) for `network_id`.
    pub fn verify(&self, network_id: &B256) -> Result<(), fixd_proto::signing::SignatureError> {
        match self {
            GossipMessage::Observation(m) => m.verify(network_id),
            GossipMessage::Proposal(m) => m.verify(network_id),
            GossipMessage::Vote(m) => m.verify(network_id),
            GossipMessage::ReportSignature(m) => m.verify(network_id),
            GossipMessage::ReviewVote(m) => m.verify(network_id),
            GossipMessage::Dispute(m) => m.verify(network_id),
            GossipMessage::Ruling(m) => m.verify(network_id),
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

/// The gossip topics of one network: `fixd/<first 8 bytes of network_id, hex>/<kind>`.
///
/// The network id in the name keeps two networks that share peers (a devnet beside a testnet)
/// from ever meshing their messages; the signatures commit to the full id anyway.
#[derive(Clone, Debug)]
pub struct Topics {
    topics: [(MessageKind, IdentTopic); MessageKind::ALL.len()],
}

impl Topics {
    pub fn new(network_id: &B256) -> Self {
        let short = hex::encode(&network_id[..8]);
        let topic =
            |kind: MessageKind| (kind, IdentTopic::new(format!("fixd/{short}/{}", kind.topic_suffix())));
        Topics { topics: MessageKind::ALL.map(topic) }
    }

    pub fn topic(&self, kind: MessageKind) -> &IdentTopic {
        &self.topics.iter().find(|(k, _)| *k == kind).expect("every kind has a topic").1
    }

    /// The kind carried on a topic, or `None` for a topic that is not ours.
    pub fn kind_of(&self, hash: &TopicHash) -> Option<MessageKind> {
        self.topics.iter().find(|(_, t)| &t.hash() == hash).map(|(k, _)| *k)
    }

    pub fn iter(&self) -> impl Iterator<Item = &IdentTopic> {
        self.topics.iter().map(|(_, t)| t)
    }
}

/// The gossipsub message id: `keccak256(data)`. Content-addressed, so the same bytes published
/// by two members, or twice by one, are one message to the mesh.
pub fn message_id(data: &[u8]) -> MessageId {
    MessageId::new(keccak256(data).as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_carry_the_network_and_kind() {
        let topics = Topics::new(&B256::repeat_byte(0xab));
        assert_eq!(topics.topic(MessageKind::Vote).to_string(), "fixd/abababababababab/votes");
        let hash = topics.topic(MessageKind::Proposal).hash();
        assert_eq!(topics.kind_of(&hash), Some(MessageKind::Proposal));
        assert_eq!(topics.kind_of(&TopicHash::from_raw("other")), None);
    }
}
