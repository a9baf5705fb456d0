//! The gossip validation rule, as a pure function: bytes and context in, [`Verdict`] out.
//!
//! | check (in order) | fails → | why |
//! |---|---|---|
//! | size ≤ genesis `max_message_bytes` | Reject | all members share the limit |
//! | canonical BCS of a [`GossipMessage`] | Reject | garbage is provable |
//! | kind matches the topic | Reject | provable |
//! | signer is a committee member | Reject | honest members validate before forwarding (1) |
//! | not already accepted ([`GossipMessage::hash`]) | Ignore | duplicates are normal in gossip |
//! | strict ed25519 over tag ‖ network id ‖ BCS | Reject | provable; binds the network id |
//! | signed time ≤ now + `max_clock_skew` | Ignore | the slow clock may be ours (2) |
//! | settlement known to this node | Ignore | not scheduled here yet; catch-up fetches it |
//!
//! (1) So whoever forwards a non-member's message is faulty. (2) Not delivered and not
//! forwarded, but not punished.
//!
//! "Reject" makes gossipsub drop the message and lower the propagation source's score (P₄);
//! "Ignore" drops it without a penalty. Only provable faults are rejected, so an honest member is
//! never punished for our own state (clock, schedule). The duplicate check comes before the
//! signature check because it is cheaper and equally safe: the seen-set holds only hashes of
//! accepted messages, and the hash covers the signature.

use std::collections::{HashSet, VecDeque};

use alloy_primitives::B256;
use fixd_proto::encoding::DecodeError;
use fixd_proto::signing::{PublicKey, SignatureError};
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::settlement::SettlementId;

use super::messages::{GossipMessage, MessageKind};

/// Everything [`verdict`] needs besides the bytes. Time is passed in, so the rule is pure.
#[allow(missing_debug_implementations)]
pub struct ValidationContext<'a> {
    pub network_id: &'a B256,
    pub committee: &'a Committee,
    /// Unix seconds now.
    pub now: u64,
    /// Genesis `params.max_message_bytes`.
    pub max_message_bytes: usize,
    /// Genesis `params.max_clock_skew_secs`.
    pub max_clock_skew_secs: u64,
    /// The topic the bytes arrived on; `None` for messages from catch-up.
    pub topic: Option<MessageKind>,
    /// Whether a message with this [`GossipMessage::hash`] was already accepted.
    pub is_seen: &'a dyn Fn(&B256) -> bool,
    /// Whether this node knows (has scheduled) the settlement.
    pub is_known_settlement: &'a dyn Fn(&SettlementId) -> bool,
}

/// The outcome of validating one message.
// Returned once per message and matched at once; accepting is the common case, so no box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver to the node and forward to the mesh.
    Accept(GossipMessage),
    /// A provable fault: drop and penalise the propagation source.
    Reject(RejectReason),
    /// Drop without a penalty.
    Ignore(IgnoreReason),
}

/// Why a message is a provable fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("message of {len} bytes exceeds the genesis limit of {max} bytes")]
    Oversized { len: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(DecodeError),
    #[error("a {got:?} message on the {topic:?} topic")]
    WrongTopic { topic: MessageKind, got: MessageKind },
    #[error("signer {0} is not a committee member")]
    NotAMember(PublicKey),
    #[error("bad signature: {0}")]
    BadSignature(SignatureError),
}

/// Why a message is dropped without blame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreReason {
    #[error("message {0} was already accepted")]
    Duplicate(B256),
    #[error("signed at {signed_at}, more than {skew} s after our clock ({now})")]
    FromTheFuture { signed_at: u64, now: u64, skew: u64 },
    #[error("settlement {0} is not known to this node")]
    UnknownSettlement(SettlementId),
}

/// Validates gossiped bytes. See the module docs for the order of checks and their outcomes.
pub fn verdict(bytes: &[u8], ctx: &ValidationContext<'_>) -> Verdict {
    if bytes.len() > ctx.max_message_bytes {
        return Verdict::Reject(RejectReason::Oversized { len: bytes.len(), max: ctx.max_message_bytes });
    }
    match GossipMessage::decode(bytes) {
        Ok(message) => check(message, ctx),
        Err(e) => Verdict::Reject(RejectReason::Malformed(e)),
    }
}

/// Validates an already decoded message (from catch-up), with every check of [`verdict`] after
/// decoding, the size limit included.
pub fn verdict_on(message: GossipMessage, ctx: &ValidationContext<'_>) -> Verdict {
    // BCS is canonical: the re-encoding is exactly as long as the bytes it came from.
    let len = message.encode().len();
    if len > ctx.max_message_bytes {
        return Verdict::Reject(RejectReason::Oversized { len, max: ctx.max_message_bytes });
    }
    check(message, ctx)
}

/// The checks after size and decoding.
fn check(message: GossipMessage, ctx: &ValidationContext<'_>) -> Verdict {
    if let Some(topic) = ctx.topic
        && topic != message.kind()
    {
        return Verdict::Reject(RejectReason::WrongTopic { topic, got: message.kind() });
    }
    if ctx.committee.index_of(message.signer()).is_none() {
        return Verdict::Reject(RejectReason::NotAMember(*message.signer()));
    }
    let hash = message.hash();
    if (ctx.is_seen)(&hash) {
        return Verdict::Ignore(IgnoreReason::Duplicate(hash));
    }
    if let Err(e) = message.verify(ctx.network_id) {
        return Verdict::Reject(RejectReason::BadSignature(e));
    }
    if let Some(signed_at) = message.signed_at()
        && signed_at > ctx.now.saturating_add(ctx.max_clock_skew_secs)
    {
        return Verdict::Ignore(IgnoreReason::FromTheFuture {
            signed_at,
            now: ctx.now,
            skew: ctx.max_clock_skew_secs,
        });
    }
    if !(ctx.is_known_settlement)(message.settlement_id()) {
        return Verdict::Ignore(IgnoreReason::UnknownSettlement(*message.settlement_id()));
    }
    Verdict::Accept(message)
}

/// The hashes of accepted messages, bounded: the oldest is forgotten first. Gossipsub keeps its
/// own (shorter-lived) duplicate cache by message id; this one also covers catch-up.
#[derive(Debug)]
pub struct SeenSet {
    capacity: usize,
    set: HashSet<B256>,
    order: VecDeque<B256>,
}

impl SeenSet {
    pub fn new(capacity: usize) -> Self {
        SeenSet { capacity: capacity.max(1), set: HashSet::new(), order: VecDeque::new() }
    }

    pub fn contains(&self, hash: &B256) -> bool {
        self.set.contains(hash)
    }

    /// Records a hash; returns false if it was already there.
    pub fn insert(&mut self, hash: B256) -> bool {
        if !self.set.insert(hash) {
            return false;
        }
        self.order.push_back(hash);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use alloy_primitives::Address;
    use ed25519_dalek::SigningKey;
    use fixd_proto::signing::Signed;
    use fixd_proto::types::certificate::{DecisionId, Vote, VoteStep};
    use fixd_proto::types::genesis::Member;
    use fixd_proto::types::observation::{Computation, NoValueReason, NodeValue, Observation};

    use super::*;

    pub(crate) const NET: B256 = B256::repeat_byte(0x42);
    pub(crate) const SETTLEMENT: B256 = B256::repeat_byte(0x07);
    const NOW: u64 = 1_800_000_000;

    pub(crate) fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i + 1; 32])
    }

    pub(crate) fn committee(n: u8) -> Committee {
        Committee::new(
            (0..n)
                .map(|i| Member {
                    name: format!("node-{i}"),
                    ed25519: PublicKey::of(&key(i)),
                    eth_address: Address::repeat_byte(i + 1),
                    listen: vec![],
                })
                .collect(),
        )
    }

    pub(crate) fn observation(signer: &SigningKey, observed_at: u64) -> GossipMessage {
        let payload = Observation {
            settlement_id: SETTLEMENT,
            observed_at,
            computation: Computation {
                partitions: vec![None; 12],
                venues: vec![],
                value: NodeValue::NoValue(NoValueReason::NoVenues),
            },
            trade_digest: B256::repeat_byte(9),
        };
        GossipMessage::Observation(Signed::sign(signer, &NET, payload))
    }

    fn run(bytes: &[u8], topic: Option<MessageKind>, seen: &[B256]) -> Verdict {
        let committee = committee(4);
        let is_seen = |h: &B256| seen.contains(h);
        let is_known = |id: &B256| *id == SETTLEMENT;
        let ctx = ValidationContext {
            network_id: &NET,
            committee: &committee,
            now: NOW,
            max_message_bytes: 1024,
            max_clock_skew_secs: 5,
            topic,
            is_seen: &is_seen,
            is_known_settlement: &is_known,
        };
        verdict(bytes, &ctx)
    }

    #[test]
    fn a_valid_message_is_accepted() {
        let msg = observation(&key(1), NOW);
        assert_eq!(run(&msg.encode(), Some(MessageKind::Observation), &[]), Verdict::Accept(msg.clone()));
        // Within the skew is fine too.
        let msg = observation(&key(1), NOW + 5);
        assert_eq!(run(&msg.encode(), None, &[]), Verdict::Accept(msg));
    }

    #[test]
    fn malformed_bytes_are_rejected() {
        assert!(matches!(run(b"\xff\x00garbage", None, &[]), Verdict::Reject(RejectReason::Malformed(_))));
        let mut bytes = observation(&key(1), NOW).encode();
        bytes.push(0); // trailing byte: not canonical
        assert!(matches!(run(&bytes, None, &[]), Verdict::Reject(RejectReason::Malformed(_))));
    }

    #[test]
    fn a_message_on_the_wrong_topic_is_rejected() {
        let bytes = observation(&key(1), NOW).encode();
        assert_eq!(
            run(&bytes, Some(MessageKind::Vote), &[]),
            Verdict::Reject(RejectReason::WrongTopic {
                topic: MessageKind::Vote,
                got: MessageKind::Observation
            })
        );
    }

    #[test]
    fn a_non_member_signer_is_rejected() {
        let outsider = key(9);
        let bytes = observation(&outsider, NOW).encode();
        assert_eq!(
            run(&bytes, None, &[]),
            Verdict::Reject(RejectReason::NotAMember(PublicKey::of(&outsider)))
        );
    }

    #[test]
    fn a_bad_signature_is_rejected() {
        let GossipMessage::Observation(mut signed) = observation(&key(1), NOW) else { unreachable!() };
        signed.payload.trade_digest = B256::repeat_byte(0xee);
        let bytes = GossipMessage::Observation(signed).encode();
        assert!(matches!(
            run(&bytes, None, &[]),
            Verdict::Reject(RejectReason::BadSignature(SignatureError::Invalid(_)))
        ));
        // A signature for another network is as bad.
        let vote = Vote {
            settlement_id: SETTLEMENT,
            decision: DecisionId::Value,
            round: 0,
            step: VoteStep::Prevote,
            proposal_hash: Some(B256::ZERO),
        };
        let bytes = GossipMessage::Vote(Signed::sign(&key(2), &B256::repeat_byte(1), vote)).encode();
        assert!(matches!(run(&bytes, None, &[]), Verdict::Reject(RejectReason::BadSignature(_))));
    }

    #[test]
    fn an_oversized_message_is_rejected_before_decoding() {
        let bytes = vec![0u8; 1025];
        assert_eq!(run(&bytes, None, &[]), Verdict::Reject(RejectReason::Oversized { len: 1025, max: 1024 }));
    }

    #[test]
    fn a_message_from_the_future_is_ignored() {
        let bytes = observation(&key(1), NOW + 6).encode();
        assert_eq!(
            run(&bytes, None, &[]),
            Verdict::Ignore(IgnoreReason::FromTheFuture { signed_at: NOW + 6, now: NOW, skew: 5 })
        );
    }

    #[test]
    fn a_duplicate_is_ignored() {
        let msg = observation(&key(1), NOW);
        assert_eq!(
            run(&msg.encode(), None, &[msg.hash()]),
            Verdict::Ignore(IgnoreReason::Duplicate(msg.hash()))
        );
    }

    #[test]
    fn an_unknown_settlement_is_ignored() {
        let vote = Vote {
            settlement_id: B256::repeat_byte(0x99),
            decision: DecisionId::Value,
            round: 0,
            step: VoteStep::Prevote,
            proposal_hash: Some(B256::ZERO),
        };
        let bytes = GossipMessage::Vote(Signed::sign(&key(0), &NET, vote)).encode();
        assert_eq!(
            run(&bytes, None, &[]),
            Verdict::Ignore(IgnoreReason::UnknownSettlement(B256::repeat_byte(0x99)))
        );
    }

    #[test]
    fn the_seen_set_forgets_the_oldest() {
        let mut seen = SeenSet::new(2);
        assert!(seen.insert(B256::repeat_byte(1)));
        assert!(!seen.insert(B256::repeat_byte(1)));
        seen.insert(B256::repeat_byte(2));
        seen.insert(B256::repeat_byte(3));
        assert!(!seen.contains(&B256::repeat_byte(1)));
        assert!(seen.contains(&B256::repeat_byte(2)) && seen.contains(&B256::repeat_byte(3)));
    }
}
