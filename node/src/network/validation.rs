//! The gossip validation rule, as a pure function: bytes and context in, [`Verdict`] out.
//!
//! | check (in order) | fails → | why |
//! |---|---|---|
//! | size ≤ genesis `max_message_bytes` | Reject | all members share the limit |
//! | canonical BCS of a [`GossipMessage`] | Reject | garbage is provable |
//! | kind matches the topic | Reject | provable |
//! | signer is a committee member | Reject | honest members validate before forwarding (1) |
//! | a batch signature's batch has the gossiped form ([`fixd_proto::types::report::FinalReportBatch::check`]) | Reject | provable |
//! | not already accepted ([`GossipMessage::hash`]) | Ignore | duplicates are normal in gossip |
//! | settlement known to this node | Ignore | not scheduled here yet; catch-up fetches it |
//! | wanted by the settlement's driver ([`Interest`]) | Ignore | its round or dispute may come (3) |
//! | strict ed25519 over tag ‖ network id ‖ BCS | Reject | provable; binds the network id |
//! | signed time ≤ now + `max_clock_skew` | Ignore | the slow clock may be ours (2) |
//!
//! (1) So whoever forwards a non-member's message is faulty. (2) Not delivered and not
//! forwarded, but not punished. (3) A vote or proposal more than `ROUNDS_AHEAD` rounds past this
//! member's round in its decision, a vote of a review not under way here, or a review vote for a
//! dispute this member does not hold: the driver would drop it. Of the rounds past the window,
//! [`FAR_ROUNDS_PER_MEMBER`] per member and decision still pass ([`FarRounds`]), so that a member
//! that fell behind sees where f + 1 members are and jumps there.
//!
//! "Reject" makes gossipsub drop the message and lower the propagation source's score (P₄);
//! "Ignore" drops it without a penalty. Only provable faults are rejected, so an honest member is
//! never punished for our own state (clock, schedule). Every check before the signature's is
//! cheaper and equally safe, since it only ignores: the seen-set holds only hashes of accepted
//! messages (the hash covers the signature), and what the driver does not want costs no
//! signature check and is not forwarded. So a member flooding validly signed votes for
//! far-future rounds costs each honest member a decoding per message, not a signature check,
//! and is not relayed by them (measured in the note of the flood test).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use alloy_primitives::B256;
pub use fixd_decision::driver::Interest;
use fixd_decision::driver::{Unwanted, Wanted};
use fixd_proto::encoding::DecodeError;
use fixd_proto::signing::{PublicKey, SignatureError};
use fixd_proto::types::certificate::DecisionId;
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::report::BatchError;
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
    /// Whether the settlement's driver takes the message now ([`Interest::judge`]); `Ok(Now)`
    /// when the driver has not said yet.
    pub wanted: &'a dyn Fn(&GossipMessage) -> Result<Wanted, Unwanted>,
    /// The rounds past their window already let through.
    pub far: &'a FarRounds,
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
    #[error("malformed batch: {0}")]
    BadBatch(BatchError),
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
    #[error("not wanted now: {0}")]
    Unwanted(Unwanted),
    #[error(
        "round {round} of the {decision:?} decision is past this member's window, and its signer has shown {FAR_ROUNDS_PER_MEMBER} such rounds already"
    )]
    FarAhead { decision: DecisionId, round: u32 },
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
    if let GossipMessage::BatchSignature(m) = &message
        && let Err(e) = m.payload.batch.check()
    {
        return Verdict::Reject(RejectReason::BadBatch(e));
    }
    let hash = message.hash();
    if (ctx.is_seen)(&hash) {
        return Verdict::Ignore(IgnoreReason::Duplicate(hash));
    }
    if !(ctx.is_known_settlement)(message.settlement_id()) {
        return Verdict::Ignore(IgnoreReason::UnknownSettlement(*message.settlement_id()));
    }
    match (ctx.wanted)(&message) {
        Err(unwanted) => return Verdict::Ignore(IgnoreReason::Unwanted(unwanted)),
        Ok(Wanted::Ahead { decision, round, horizon })
            if !ctx.far.admits(&message, decision, round, horizon) =>
        {
            return Verdict::Ignore(IgnoreReason::FarAhead { decision, round });
        }
        Ok(_) => {}
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
    Verdict::Accept(message)
}

/// How many rounds past its window one member may show this member per settlement and
/// decision: one shows where the member is, which is all the jump of f + 1 members needs; two
/// leave room for a member that moves on again before this one catches up.
pub const FAR_ROUNDS_PER_MEMBER: usize = 2;

/// Who showed which rounds past this member's window (settlement, decision, signer), recorded
/// once such a message is accepted (so after its signature): see the module docs. Bounded: the
/// oldest key is forgotten first.
#[derive(Debug)]
pub struct FarRounds {
    capacity: usize,
    rounds: HashMap<FarKey, BTreeSet<u32>>,
    order: VecDeque<FarKey>,
}

/// Whose rounds of which decision: (settlement, decision, signer).
pub type FarKey = (SettlementId, DecisionId, PublicKey);

/// The [`FarKey`] of a vote or proposal of `decision`.
pub fn far_key(message: &GossipMessage, decision: DecisionId) -> FarKey {
    (*message.settlement_id(), decision, *message.signer())
}

impl FarRounds {
    pub fn new(capacity: usize) -> Self {
        FarRounds { capacity: capacity.max(1), rounds: HashMap::new(), order: VecDeque::new() }
    }

    /// Whether `message`, of `round` past `horizon` in `decision`, may pass: its round was let
    /// through already, or its signer has shown fewer than [`FAR_ROUNDS_PER_MEMBER`] rounds past
    /// `horizon`.
    pub fn admits(&self, message: &GossipMessage, decision: DecisionId, round: u32, horizon: u32) -> bool {
        let Some(shown) = self.rounds.get(&far_key(message, decision)) else { return true };
        shown.contains(&round) || shown.range(horizon.saturating_add(1)..).count() < FAR_ROUNDS_PER_MEMBER
    }

    /// Records an accepted message ([`far_key`]) of a round past `horizon`; forgets the
    /// signer's rounds that are no longer past it.
    pub fn record(&mut self, key: FarKey, round: u32, horizon: u32) {
        let shown = self.rounds.entry(key).or_insert_with(|| {
            self.order.push_back(key);
            BTreeSet::new()
        });
        shown.retain(|r| *r > horizon);
        shown.insert(round);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.rounds.remove(&old);
            }
        }
    }
}

/// The hashes of accepted messages, bounded: the oldest is forgotten first. Gossipsub keeps its
/// own (shorter-lived) duplicate cache by message id; this one also covers catch-up.
///
/// It holds 64 bits of each hash, keyed by a secret of this process: 16 bytes an entry rather
/// than 64 (some 5 MB less at its 100,000). Two messages meet on 64 bits once in some 10^14
/// lookups of a full set, and no one outside knows the key, so no one can make a message that
/// meets another's.
#[derive(Debug)]
pub struct SeenSet {
    capacity: usize,
    key: std::hash::RandomState,
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

impl SeenSet {
    pub fn new(capacity: usize) -> Self {
        SeenSet {
            capacity: capacity.max(1),
            key: std::hash::RandomState::new(),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn short(&self, hash: &B256) -> u64 {
        std::hash::BuildHasher::hash_one(&self.key, hash)
    }

    pub fn contains(&self, hash: &B256) -> bool {
        self.set.contains(&self.short(hash))
    }

    /// Records a hash; returns false if it was already there.
    pub fn insert(&mut self, hash: B256) -> bool {
        let short = self.short(&hash);
        if !self.set.insert(short) {
            return false;
        }
        self.order.push_back(short);
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
    use fixd_proto::types::observation::{Computation, NoValueReason, NodeValue, Observation, Partition};

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
                partitions: vec![Partition::not_counted(0); 12],
                venues: vec![],
                value: NodeValue::NoValue(NoValueReason::NoVenues),
            },
            trade_digest: B256::repeat_byte(9),
        };
        GossipMessage::Observation(Signed::sign(signer, &NET, payload))
    }

    fn run(bytes: &[u8], topic: Option<MessageKind>, seen: &[B256]) -> Verdict {
        run_with(bytes, topic, seen, &Interest::default(), &FarRounds::new(16))
    }

    /// [`run`] with a driver's interest (the default one: no driver yet, so all is wanted) and
    /// the far rounds shown.
    fn run_with(
        bytes: &[u8],
        topic: Option<MessageKind>,
        seen: &[B256],
        interest: &Interest,
        far: &FarRounds,
    ) -> Verdict {
        let committee = committee(4);
        let is_seen = |h: &B256| seen.contains(h);
        let is_known = |id: &B256| *id == SETTLEMENT;
        let wanted = |m: &GossipMessage| {
            if interest == &Interest::default() { Ok(Wanted::Now) } else { interest.judge(m) }
        };
        let ctx = ValidationContext {
            network_id: &NET,
            committee: &committee,
            now: NOW,
            max_message_bytes: 1024,
            max_clock_skew_secs: 5,
            topic,
            is_seen: &is_seen,
            is_known_settlement: &is_known,
            wanted: &wanted,
            far,
        };
        verdict(bytes, &ctx)
    }

    fn vote(signer: u8, decision: DecisionId, round: u32) -> GossipMessage {
        let vote =
            Vote { settlement_id: SETTLEMENT, decision, round, step: VoteStep::Prevote, proposal_hash: None };
        GossipMessage::Vote(Signed::sign(&key(signer), &NET, vote))
    }

    /// The message with its signature broken.
    fn forged(message: GossipMessage) -> GossipMessage {
        match message {
            GossipMessage::Vote(mut v) => {
                v.payload.step = VoteStep::Precommit;
                GossipMessage::Vote(v)
            }
            GossipMessage::ReviewVote(mut v) => {
                v.payload.median_recomputes = !v.payload.median_recomputes;
                GossipMessage::ReviewVote(v)
            }
            other => other,
        }
    }

    #[test]
    fn a_member_shows_two_rounds_past_the_window_and_the_rest_are_ignored_unchecked() {
        use fixd_decision::consensus::ROUNDS_AHEAD;
        let interest = Interest::new([(DecisionId::Value, 0), (DecisionId::Report, 0)], []);
        let mut far = FarRounds::new(16);
        let horizon = ROUNDS_AHEAD;
        // In the window: checked and accepted, nothing recorded.
        let near = vote(1, DecisionId::Value, horizon);
        assert_eq!(run_with(&near.encode(), None, &[], &interest, &far), Verdict::Accept(near));
        // A flood of far rounds: the first two pass (and are recorded once accepted)...
        for round in [1_000, 1_001] {
            let v = vote(1, DecisionId::Value, round);
            assert_eq!(run_with(&v.encode(), None, &[], &interest, &far), Verdict::Accept(v.clone()));
            far.record(far_key(&v, DecisionId::Value), round, horizon);
        }
        // ... a round shown already passes again (its other step) ...
        let again = vote(1, DecisionId::Value, 1_000);
        assert!(matches!(run_with(&again.encode(), None, &[], &interest, &far), Verdict::Accept(_)));
        // ... and the rest are ignored before their signatures are checked: a forged one is not
        // even found out.
        for round in [1_002, 50_000] {
            let v = forged(vote(1, DecisionId::Value, round));
            assert_eq!(
                run_with(&v.encode(), None, &[], &interest, &far),
                Verdict::Ignore(IgnoreReason::FarAhead { decision: DecisionId::Value, round })
            );
        }
        // Each member and decision has its own two.
        let other = vote(2, DecisionId::Value, 1_002);
        assert!(matches!(run_with(&other.encode(), None, &[], &interest, &far), Verdict::Accept(_)));
        let report = vote(1, DecisionId::Report, 1_002);
        assert!(matches!(run_with(&report.encode(), None, &[], &interest, &far), Verdict::Accept(_)));
        // A forged far round is caught by its signature while its signer has room, and so takes
        // none of the room (only accepted messages are recorded).
        let forged_far = forged(vote(3, DecisionId::Value, 2_000));
        assert!(matches!(
            run_with(&forged_far.encode(), None, &[], &interest, &far),
            Verdict::Reject(RejectReason::BadSignature(_))
        ));
    }

    fn batch_signature(signer: u8, ids: &[B256]) -> GossipMessage {
        use fixd_proto::types::report::{BatchSignature, FinalReport, FinalReportBatch};
        let reports = ids
            .iter()
            .map(|id| FinalReport {
                settlement_id: *id,
                value: fixd_proto::value::Wad::from_raw(1),
                round: 0,
                outcomes: vec![],
            })
            .collect();
        let payload = BatchSignature {
            batch: FinalReportBatch { reports },
            signer: Address::repeat_byte(signer + 1),
            signature: Default::default(),
        };
        GossipMessage::BatchSignature(Signed::sign(&key(signer), &NET, payload))
    }

    #[test]
    fn a_batch_out_of_order_or_empty_is_rejected_and_a_well_formed_one_accepted() {
        let topic = Some(MessageKind::BatchSignature);
        let later = B256::repeat_byte(0x08);
        let good = batch_signature(1, &[SETTLEMENT, later]);
        assert_eq!(run(&good.encode(), topic, &[]), Verdict::Accept(good));
        let unordered = batch_signature(1, &[later, SETTLEMENT]);
        assert_eq!(
            run(&unordered.encode(), topic, &[]),
            Verdict::Reject(RejectReason::BadBatch(BatchError::Unordered(SETTLEMENT)))
        );
        let empty = batch_signature(1, &[]);
        assert_eq!(
            run(&empty.encode(), topic, &[]),
            Verdict::Reject(RejectReason::BadBatch(BatchError::Empty))
        );
        // Its first settlement must be one this node knows, like any message's.
        let unknown = batch_signature(1, &[later]);
        assert_eq!(
            run(&unknown.encode(), topic, &[]),
            Verdict::Ignore(IgnoreReason::UnknownSettlement(later))
        );
    }

    #[test]
    fn rounds_the_window_reached_no_longer_count() {
        let mut far = FarRounds::new(16);
        let v = vote(1, DecisionId::Value, 0);
        let key = far_key(&v, DecisionId::Value);
        far.record(key, 20, 10);
        far.record(key, 21, 10);
        assert!(!far.admits(&v, DecisionId::Value, 22, 10));
        // The member's window moved to 20: rounds 20 and 21 are in it now.
        assert!(far.admits(&v, DecisionId::Value, 22, 21));
        far.record(key, 22, 21);
        far.record(key, 23, 21);
        assert!(!far.admits(&v, DecisionId::Value, 24, 21));
    }

    #[test]
    fn the_far_rounds_forget_the_oldest_key() {
        let mut far = FarRounds::new(1);
        let (a, b) = (vote(1, DecisionId::Value, 0), vote(2, DecisionId::Value, 0));
        far.record(far_key(&a, DecisionId::Value), 20, 10);
        far.record(far_key(&a, DecisionId::Value), 21, 10);
        assert!(!far.admits(&a, DecisionId::Value, 22, 10));
        far.record(far_key(&b, DecisionId::Value), 20, 10);
        assert!(far.admits(&a, DecisionId::Value, 22, 10), "a's key was the oldest");
    }

    #[test]
    fn what_the_driver_does_not_take_is_ignored_unchecked() {
        use fixd_proto::types::dispute::ReviewVote;
        let dispute = B256::repeat_byte(0xd1);
        let interest = Interest::new([(DecisionId::Value, 0)], []);
        let far = FarRounds::new(16);
        let review = DecisionId::Review { dispute_id: dispute };
        let v = forged(vote(1, review, 0));
        assert_eq!(
            run_with(&v.encode(), None, &[], &interest, &far),
            Verdict::Ignore(IgnoreReason::Unwanted(fixd_decision::driver::Unwanted::NoDecision(review)))
        );
        let payload = ReviewVote {
            settlement_id: SETTLEMENT,
            dispute_id: dispute,
            proposal_hash: B256::ZERO,
            median_recomputes: true,
            value: NodeValue::NoValue(NoValueReason::NoVenues),
            trade_digest: B256::ZERO,
        };
        let review_vote = forged(GossipMessage::ReviewVote(Signed::sign(&key(1), &NET, payload)));
        assert_eq!(
            run_with(&review_vote.encode(), None, &[], &interest, &far),
            Verdict::Ignore(IgnoreReason::Unwanted(fixd_decision::driver::Unwanted::UnknownDispute(dispute)))
        );
        // Once the dispute is held, the same forged review vote is checked and found out.
        let holding = Interest::new([(DecisionId::Value, 0)], [dispute]);
        assert!(matches!(
            run_with(&review_vote.encode(), None, &[], &holding, &far),
            Verdict::Reject(RejectReason::BadSignature(_))
        ));
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
