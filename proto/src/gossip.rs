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
///
/// The two largest variants are boxed (the encoding is the same): a message is held by value in
/// the network's queues, and a flood of 200-byte votes would otherwise take 496 bytes each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    Observation(Signed<Observation>),
    /// A round leader's proposal, with the candidate it proposes.
    Proposal(Box<Signed<RoundProposal>>),
    Vote(Signed<Vote>),
    /// A member's EIP-712 signature over the settlement's final report, wrapped in its ed25519
    /// signature.
    ReportSignature(Signed<ReportSignature>),
    /// A member's review of a dispute (a review certificate lists q of them).
    ReviewVote(Signed<ReviewVote>),
    /// A dispute one member accepted through its API, relayed under its signature.
    Dispute(Box<Signed<RelayedDispute>>),
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

    /// The kind of the encoded message `bytes` claim to be, read from its variant index (its
    /// first byte: fewer than 128 kinds), without decoding it; `None` for an unknown index.
    pub fn of_encoded(bytes: &[u8]) -> Option<MessageKind> {
        MessageKind::ALL.get(usize::from(*bytes.first()?)).copied()
    }

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
    /// A round proposal as a message (the variant is boxed).
    pub fn proposal(signed: Signed<RoundProposal>) -> Self {
        GossipMessage::Proposal(Box::new(signed))
    }

    /// A relayed dispute as a message (the variant is boxed).
    pub fn dispute(signed: Signed<RelayedDispute>) -> Self {
        GossipMessage::Dispute(Box::new(signed))
    }

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

/// Many gossip messages in one gossipsub message, on a network's `bundles` topic: the wire
/// bytes of each ([`GossipMessage::encode`]), in the order they were signed. A node sends what it
/// signed together (an expiry burst's observations, a tick's votes) as bundles, so a burst of
/// 10,000 settlements costs the mesh a few hundred frames instead of tens of thousands; each
/// message inside is still signed by its own author and checked on its own, exactly as if it
/// had come alone.
///
/// The encoding is `BCS(Vec<bytes>)`: a ULEB128 count, then each message as a ULEB128 length
/// and its bytes. A bundle holds 2 to [`GossipBundle::MAX_MESSAGES`] messages and, encoded, no
/// more than the genesis `max_message_bytes`; a message alone goes on its own topic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipBundle {
    pub messages: Vec<Vec<u8>>,
}

/// Why bytes on the bundles topic are not a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("a bundle of {0} messages; a bundle holds 2 to {max}", max = GossipBundle::MAX_MESSAGES)]
    Count(usize),
}

impl GossipBundle {
    /// The most messages one bundle holds.
    pub const MAX_MESSAGES: usize = 1024;

    /// The wire bytes: `BCS(self)`.
    pub fn encode(&self) -> Vec<u8> {
        to_bcs(self)
    }

    /// Decodes wire bytes, refusing a bundle of fewer than 2 or more than
    /// [`GossipBundle::MAX_MESSAGES`] messages. The messages inside are not decoded.
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        let bundle: GossipBundle = from_bcs(bytes)?;
        if !(2..=Self::MAX_MESSAGES).contains(&bundle.messages.len()) {
            return Err(BundleError::Count(bundle.messages.len()));
        }
        Ok(bundle)
    }

    /// Packs encoded messages, in order, into as few bundles as fit `max_bytes` each (encoded).
    /// A group of one message comes back as a bundle of one, for its sender to send alone; so
    /// does a message too large for any bundle (its sender's size check refuses it).
    pub fn pack(encoded: Vec<Vec<u8>>, max_bytes: usize) -> Vec<GossipBundle> {
        let mut bundles = Vec::new();
        let mut current = GossipBundle::default();
        // The encoded size of `current`: its count's ULEB128 plus each length's and bytes.
        let mut size = uleb128_len(0);
        for message in encoded {
            let cost = uleb128_len(message.len()) + message.len();
            let count = current.messages.len();
            let grown = size - uleb128_len(count) + uleb128_len(count + 1) + cost;
            if count > 0 && (grown > max_bytes || count == Self::MAX_MESSAGES) {
                bundles.push(std::mem::take(&mut current));
                size = uleb128_len(0);
            }
            let count = current.messages.len();
            size = size - uleb128_len(count) + uleb128_len(count + 1) + cost;
            current.messages.push(message);
        }
        if !current.messages.is_empty() {
            bundles.push(current);
        }
        bundles
    }
}

/// The length of `n` in ULEB128.
fn uleb128_len(n: usize) -> usize {
    (usize::BITS - n.max(1).leading_zeros()).div_ceil(7) as usize
}

#[cfg(test)]
mod bundle_tests {
    use super::*;

    #[test]
    fn the_kind_of_an_encoded_message_is_its_first_byte() {
        for (index, kind) in MessageKind::ALL.into_iter().enumerate() {
            assert_eq!(MessageKind::of_encoded(&[index as u8, 0xff]), Some(kind));
        }
        assert_eq!(MessageKind::of_encoded(&[MessageKind::ALL.len() as u8]), None);
        assert_eq!(MessageKind::of_encoded(&[]), None);
    }

    #[test]
    fn uleb128_lengths_match_bcs() {
        for n in [0usize, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
            assert_eq!(uleb128_len(n), bcs_len(n), "{n}");
        }
    }

    fn bcs_len(n: usize) -> usize {
        // A vector of n unit values encodes as its length alone.
        to_bcs(&vec![(); n]).len()
    }

    #[test]
    fn packed_bundles_fit_the_limit_keep_the_order_and_decode() {
        let messages: Vec<Vec<u8>> =
            (0..500u32).map(|i| vec![i as u8; 50 + (i as usize * 7) % 300]).collect();
        let max = 4_096;
        let bundles = GossipBundle::pack(messages.clone(), max);
        assert!(bundles.len() > 1);
        for bundle in &bundles {
            let bytes = bundle.encode();
            assert!(bytes.len() <= max, "{} > {max}", bytes.len());
            if bundle.messages.len() > 1 {
                assert_eq!(&GossipBundle::decode(&bytes).unwrap(), bundle);
            }
        }
        // Each bundle but the last is full: the next message would not have fitted.
        for pair in bundles.windows(2) {
            let mut grown = pair[0].clone();
            grown.messages.push(pair[1].messages[0].clone());
            assert!(grown.encode().len() > max);
        }
        let flat: Vec<Vec<u8>> = bundles.into_iter().flat_map(|b| b.messages).collect();
        assert_eq!(flat, messages);
    }

    #[test]
    fn a_bundle_holds_at_most_max_messages_and_at_least_two() {
        let bundles = GossipBundle::pack(vec![vec![1]; 2_500], usize::MAX);
        assert_eq!(bundles.iter().map(|b| b.messages.len()).collect::<Vec<_>>(), [1024, 1024, 452]);
        let one = GossipBundle { messages: vec![vec![1]] }.encode();
        assert_eq!(GossipBundle::decode(&one), Err(BundleError::Count(1)));
        let too_many = GossipBundle { messages: vec![vec![1]; 1025] }.encode();
        assert_eq!(GossipBundle::decode(&too_many), Err(BundleError::Count(1025)));
        assert!(matches!(GossipBundle::decode(&[0xff, 0xff]), Err(BundleError::Decode(_))));
    }
}
