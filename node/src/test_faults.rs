//! Faults a test can switch on in a node, to prove that the honest members catch them or
//! survive them. Compiled only with the cargo feature `test-faults`, which only the end-to-end
//! tests enable (as a dev-dependency feature of the `fixd` package); the release build, the
//! Docker image and `scripts/devnet.sh` build without it, and there every function here is a
//! no-op that reads no environment variable.
//!
//! | `FIXD_TEST_FAULT` | where | what the node does |
//! |---|---|---|
//! | `wrong-median` | the settlement service, when it signs a round proposal it leads | proposes the median plus 1 wei |
//! | `stall-after-review-vote` | the settlement service, after its review vote is durable | its task hangs before gossiping the vote |
//! | `stall-before-publish` | the chain service, before sending `publish` | its task hangs, as if killed mid-publication |
//! | `flood` | the settlement service, after its first prevote of a settlement | gossips 10,000 validly signed votes for far-future rounds and review votes for unknown disputes |
//! | `crash-after-observation-slot` | the settlement service, when it signs its observation | flushes the slot record, then aborts before the observation is stored |
//! | `withhold-catch-up` | the network service, when a peer asks it to catch up | accepts the request and never answers it, as a hung peer |
//! | `relay-bogus-disputes` | the settlement service, once it stores a settlement's certificate | gossips [`BOGUS_RELAYS`] relays, signed by this member, of validly signed disputes whose bond transactions do not exist |
//! | `backdate-rulings` | the settlement service, when it relays an arbitrator's ruling | dates the relay [`BACKDATE_SECS`] before it accepted the ruling |

use alloy_primitives::B256;
use ed25519_dalek::SigningKey;
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{DecisionId, Proposal, Vote, VoteStep};
use fixd_proto::types::dispute::{RelayedRuling, ReviewVote};
use fixd_proto::types::observation::NodeValue;

/// How many messages `flood` sends.
pub const FLOOD_MESSAGES: u32 = 10_000;

/// How far back `backdate-rulings` dates a relayed ruling: an hour, before any arbitration of a
/// test's settlement began.
pub const BACKDATE_SECS: u64 = 3600;

/// How many relays `relay-bogus-disputes` sends.
pub const BOGUS_RELAYS: u64 = 1_000;

/// Whether fault `name` is switched on; if so, logs `test fault: {doing}` (tests wait for it).
#[cfg(feature = "test-faults")]
fn active(name: &str, doing: &str) -> bool {
    let on = std::env::var("FIXD_TEST_FAULT").as_deref() == Ok(name);
    if on {
        tracing::warn!(fault = name, "test fault: {doing}");
    }
    on
}

#[cfg(not(feature = "test-faults"))]
fn active(_name: &str, _doing: &str) -> bool {
    false
}

/// `wrong-median`: the proposal as this node signs it.
pub fn tamper(mut proposal: Proposal) -> Proposal {
    if active("wrong-median", "proposing a wrong median") {
        proposal.value = fixd_proto::value::Wad::from_raw(proposal.value.raw().saturating_add(1));
    }
    proposal
}

/// `backdate-rulings`: the relay of an arbitrator's ruling as this node signs it.
pub fn backdate(mut relayed: RelayedRuling) -> RelayedRuling {
    if active("backdate-rulings", "relaying the arbitrator's ruling backdated") {
        relayed.accepted_at = relayed.accepted_at.saturating_sub(BACKDATE_SECS);
    }
    relayed
}

/// `crash-after-observation-slot`: called once the slot of `message` is recorded and before the
/// message is stored; for an observation, flushes the slot and aborts the process when on.
pub fn after_slot(store: &dyn crate::store::Store, message: &GossipMessage) {
    if matches!(message, GossipMessage::Observation(_))
        && active(
            "crash-after-observation-slot",
            "crashing between the observation's slot and the observation",
        )
    {
        let _ = store.durable();
        std::process::abort();
    }
}

/// `stall-after-review-vote`: never returns when on (only this task hangs; the runtime runs on).
pub async fn after_review_vote() {
    if active("stall-after-review-vote", "stalling after the review vote") {
        std::future::pending::<()>().await;
    }
}

/// `withhold-catch-up`: whether to accept a catch-up request and never answer it.
pub fn withhold_catch_up() -> bool {
    active("withhold-catch-up", "accepting a catch-up request and never answering it")
}

/// `relay-bogus-disputes`: once this member stores `certificate`, the relays it sends: disputes
/// of the certified proposal with distinct ids, each signed (EIP-712) by a made-up disputer, each
/// naming a bond transaction that does not exist, relayed as accepted now. Empty when off.
pub fn bogus_relays(
    key: &SigningKey,
    setup: &fixd_decision::driver::DriverSetup,
    certificate: &fixd_proto::types::certificate::Certificate,
) -> Vec<GossipMessage> {
    use fixd_proto::types::dispute::{Dispute, DisputeEscrow, DisputeReason, RelayedDispute, SignedDispute};
    if !active("relay-bogus-disputes", "relaying disputes whose bonds do not exist") {
        return Vec::new();
    }
    let disputer = alloy_signer_local::PrivateKeySigner::from_bytes(&B256::repeat_byte(0x5b))
        .expect("a valid secp256k1 key");
    let domain = fixd_proto::eip712::domain(setup.chain_id, setup.contract);
    let now = crate::clock::now();
    (0..BOGUS_RELAYS)
        .map(|k| {
            let made_up = B256::from(alloy_primitives::U256::from(0xb06u64 << 32 | k));
            let dispute = Dispute {
                settlement_id: certificate.proposal.payload.settlement_id,
                dispute_id: made_up,
                proposal_hash: certificate.precommit().proposal_hash.unwrap_or_default(),
                claimed_value: None,
                reason: DisputeReason::BadData,
                evidence: String::new(),
                bond_wei: setup.protocol.min_bond_wei,
                bond_tx: made_up,
                disputer: disputer.address(),
            };
            let signature = fixd_proto::eip712::sign_typed(&disputer, &domain, &dispute);
            let escrow = DisputeEscrow {
                block_number: 1,
                block_hash: made_up,
                block_timestamp: now.saturating_sub(1),
                log_index: 0,
                pool_wei: 0,
            };
            let relayed =
                RelayedDispute { dispute: SignedDispute { dispute, signature }, escrow, accepted_at: now };
            GossipMessage::dispute(Signed::sign(key, &setup.network_id, relayed))
        })
        .collect()
}

/// `stall-before-publish`: never returns when on.
pub async fn before_send() {
    if active("stall-before-publish", "stalling before sending the publish transaction") {
        std::future::pending::<()>().await;
    }
}

/// `flood`: after this member's first round-0 prevote, of a settlement's first value or, if the
/// others certified it before this member voted, of its final report, the messages a flooding
/// member sends (once per process): [`FLOOD_MESSAGES`] validly signed messages, nine in ten votes
/// for rounds 1,000 and up, one in ten review votes for disputes nobody filed. Empty when off.
pub fn flood(key: &SigningKey, network_id: &B256, prevote: &Vote) -> Vec<GossipMessage> {
    static FLOODED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let first = matches!(prevote.decision, DecisionId::Value | DecisionId::Report)
        && prevote.round == 0
        && prevote.step == VoteStep::Prevote;
    let done = || FLOODED.load(std::sync::atomic::Ordering::Relaxed);
    if !first || done() || !active("flood", "flooding far-future votes and review votes for unknown disputes")
    {
        return Vec::new();
    }
    FLOODED.store(true, std::sync::atomic::Ordering::Relaxed);
    flood_messages(key, network_id, prevote)
}

/// The [`FLOOD_MESSAGES`] messages of a flood after `prevote` (also the `byzantine` feature's
/// flood strategy): nine in ten votes for rounds 1,000 and up, one in ten review votes for
/// disputes nobody filed, each validly signed with `key`.
pub fn flood_messages(key: &SigningKey, network_id: &B256, prevote: &Vote) -> Vec<GossipMessage> {
    (0..FLOOD_MESSAGES)
        .map(|k| {
            let made_up = B256::from(alloy_primitives::U256::from(k));
            if k % 10 == 9 {
                let vote = ReviewVote {
                    settlement_id: prevote.settlement_id,
                    dispute_id: made_up,
                    proposal_hash: prevote.proposal_hash.unwrap_or_default(),
                    median_recomputes: true,
                    value: NodeValue::Value(fixd_proto::value::Wad::ONE),
                    trade_digest: made_up,
                };
                return GossipMessage::ReviewVote(Signed::sign(key, network_id, vote));
            }
            let vote = Vote {
                round: 1_000 + k,
                step: if k % 2 == 0 { VoteStep::Prevote } else { VoteStep::Precommit },
                proposal_hash: Some(made_up),
                ..prevote.clone()
            };
            GossipMessage::Vote(Signed::sign(key, network_id, vote))
        })
        .collect()
}
