//! One settlement from its first observation to a confirmed publication (DESIGN 5-6), as one
//! pure [`SettlementDriver`]: it owns the settlement's first [`Certification`](crate::consensus::Certification), the review
//! certification of each dispute round and the [`Publication`](crate::publication::Publication), and routes every input to the
//! machine it belongs to. It takes [`Input`]s and returns [`Effect`]s; the node's settlement
//! service (`fixd_node::settlements`) is the one executor that carries them out.
//!
//! ```text
//!  store (Held, at start) ──────────────┐
//!  gossip / catch-up ── Input::Gossip ───┤                    ┌─ Certification (first)
//!  own signed message ─ Input::Own ──────┼─▶ SettlementDriver ┼─ Certification<Review> per dispute
//!  bond read back ──── Input::BondChecked┤     (+ now)        └─ Publication (window, report, turns)
//!  recomputation ───── Input::Recomputed ┤        │
//!  chain read ──────── Input::Chain ─────┤        ▼ Effects, in order:
//!  clock ───────────── Input::Tick ──────┘   Keep(record) · Sign(unsigned) · Gossip · Watch ·
//!  API ─ submit_dispute / submit_ruling       Publish · CheckBond · Recompute · CatchUp · Event
//! ```
//!
//! # The executor's rules
//! - **Sign** ([`Effect::Sign`]): sign the [`Unsigned`] message, record it in its
//!   [`SigningSlot`] (if it has one), store it and flush, *then* gossip it and feed it back as
//!   [`Input::Own`]. A slot this member used already for another message is not signed again:
//!   nothing is sent and nothing is fed back.
//! - **Keep** ([`Effect::Keep`]): store the record; flush those that other members may rely on
//!   (certificates, evidence, disputes, rulings) before the next effect.
//! - Every other effect is a request to a service (gossip, the chain service, a bond check, a
//!   review recomputation, a catch-up from a peer) or a line on the event stream.
//!
//! The driver holds in memory what the store holds of its settlement ([`Held`]): a restarted
//! node builds the driver from the store and goes on where it stopped.
//!
//! # Relays and the receipt bound
//! A relayed dispute or ruling from another member is judged when it arrives (gossip or
//! catch-up), on this member's clock: *in time* if its `accepted_at` lies within
//! `[now − (max_clock_skew + round_timeout), now + max_clock_skew]`, else *late*
//! ([`Record::LateRelay`]). Both are held, one per relaying member and dispute id; only relays in
//! time are folded on their own, and a late one counts only through a decided report that takes
//! it (see [`crate::publication`]). A late relay does not make the disputer's or arbitrator's
//! own submission to this member a duplicate.

mod interest;
mod machine;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use alloy_primitives::{Address, B256};
use fixd_dispute::{DisputeFiling, Finality, Refusal, ReviewVoteCast};
use fixd_proto::eip712::{EthSignature, ReportSignature};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{Certificate, DecisionId, RoundProposal, Vote, VoteStep};
use fixd_proto::types::dispute::{RelayedDispute, RelayedRuling, ReviewVote};
use fixd_proto::types::genesis::{Committee, ProtocolParams};
use fixd_proto::types::observation::Observation;
use fixd_proto::types::report::FinalReport;
use fixd_proto::types::settlement::SettlementId;

use crate::consensus::{ConsensusParams, Equivocation, ProposalToSign};
use crate::events::EventKind;
use crate::publication::OnChain;

pub use interest::{Interest, Unwanted, Wanted};
pub use machine::{QUIET_TICKS, SettlementDriver};

/// The longest evidence text a dispute may carry, so that a relayed dispute fits one gossip
/// message.
pub const MAX_EVIDENCE_BYTES: usize = 4096;

/// What every driver of this node shares: who this member is, and the committee's rules.
#[derive(Clone, Debug)]
pub struct DriverSetup {
    pub committee: Committee,
    /// This member's committee index.
    pub me: usize,
    pub network_id: B256,
    pub consensus: ConsensusParams,
    pub protocol: ProtocolParams,
    /// The chain and contract that final reports are signed for (EIP-712 domain).
    pub chain_id: u64,
    pub contract: Address,
    /// The genesis arbitrator (zero: none, and relayed rulings are ignored).
    pub arbitrator: Address,
    /// Whether a chain service runs (`chain.rpc_url` set): publications are watched and sent,
    /// and relayed disputes' bonds can be read back.
    pub has_chain: bool,
}

impl DriverSetup {
    /// The setup of member `me` of `genesis`; `has_chain` when a chain service runs.
    pub fn from_genesis(genesis: &fixd_proto::types::genesis::Genesis, me: usize, has_chain: bool) -> Self {
        DriverSetup {
            committee: genesis.committee(),
            me,
            network_id: genesis.network_id(),
            consensus: ConsensusParams::from_protocol(&genesis.params),
            protocol: genesis.params.clone(),
            chain_id: genesis.chain_id,
            contract: genesis.contract,
            arbitrator: genesis.arbitrator,
            has_chain,
        }
    }
}

/// What kind of message a signing slot is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedKind {
    Observation,
    /// A round proposal (with the fresh candidate inside it).
    Proposal,
    Prevote,
    Precommit,
    ReviewVote,
    FinalReport,
}

impl SignedKind {
    /// All kinds, for tests and listings.
    pub const ALL: [SignedKind; 6] = [
        SignedKind::Observation,
        SignedKind::Proposal,
        SignedKind::Prevote,
        SignedKind::Precommit,
        SignedKind::ReviewVote,
        SignedKind::FinalReport,
    ];

    /// The slot kind of a vote step.
    pub fn of_step(step: VoteStep) -> Self {
        match step {
            VoteStep::Prevote => SignedKind::Prevote,
            VoteStep::Precommit => SignedKind::Precommit,
        }
    }
}

/// The slot a member may sign at most one message for: per settlement, kind, decision and
/// round. Observations, review votes and final reports belong to no Tendermint decision and use
/// [`DecisionId::Value`]; a review vote's round is its dispute round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SigningSlot {
    pub settlement: SettlementId,
    pub kind: SignedKind,
    pub decision: DecisionId,
    pub round: u32,
}

/// The one slot of a member's final report per settlement: whatever round the report's value
/// was certified in (a review replaces the first certificate's round), a member signs one.
pub const FINAL_REPORT_ROUND: u32 = crate::publication::FINAL_REPORT_ROUND;

/// What this member is about to sign, as the driver asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Unsigned {
    /// This node's observation of the window, as the observer computed it.
    Observation(Observation),
    /// A round proposal (of the first value or of a review): sign a fresh candidate first,
    /// then the round proposal around it.
    Proposal(ProposalToSign),
    Vote(Vote),
    /// This member's review of a dispute round.
    ReviewVote {
        dispute_round: u16,
        vote: ReviewVote,
    },
    /// The final report: signed with the member's secp256k1 key (EIP-712), wrapped in an
    /// ed25519-signed [`ReportSignature`]; kept with its finality.
    Report {
        report: FinalReport,
        finality: Finality,
    },
    /// A dispute this member accepted from the API, relayed at its agreed time.
    Dispute(RelayedDispute),
    /// An arbitrator's ruling this member accepted from the API, relayed at its agreed time.
    Ruling(RelayedRuling),
}

impl Unsigned {
    /// The slot the signed message takes; `None` for relays, which are one per member and
    /// dispute id anyway (the store keeps the first).
    pub fn slot(&self, settlement: SettlementId) -> Option<SigningSlot> {
        let value = DecisionId::Value;
        let (kind, decision, round) = match self {
            Unsigned::Observation(_) => (SignedKind::Observation, value, 0),
            Unsigned::Proposal(p) => (SignedKind::Proposal, DecisionId::of_source(p.source()), p.round),
            Unsigned::Vote(v) => (SignedKind::of_step(v.step), v.decision, v.round),
            Unsigned::ReviewVote { dispute_round, .. } => {
                (SignedKind::ReviewVote, value, u32::from(*dispute_round))
            }
            Unsigned::Report { .. } => (SignedKind::FinalReport, value, FINAL_REPORT_ROUND),
            Unsigned::Dispute(_) | Unsigned::Ruling(_) => return None,
        };
        Some(SigningSlot { settlement, kind, decision, round })
    }
}

/// What the store should keep for the settlement.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// A message another member signed, accepted: an observation, proposal, vote, review vote,
    /// report signature, relayed dispute (bond checked) or relayed ruling (arbitrator checked).
    Message(GossipMessage),
    /// The first certificate (flush).
    Certificate(Certificate),
    /// A dispute round's review certificate (flush).
    ReviewCertificate { dispute_id: B256, certificate: Certificate },
    /// The certificate of the committee's final report (flush).
    ReportCertificate(Certificate),
    /// Evidence that a member signed two messages for one slot (flush).
    Equivocation(Equivocation),
    /// The hash of a relayed dispute or ruling kept as [`Record::Message`] that reached this
    /// member outside the receipt bound.
    LateRelay(B256),
    /// What the contract holds now.
    OnChain(Option<OnChain>),
}

/// What the driver is told.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// A message another member signed, that passed the network's checks (gossip or catch-up).
    Gossip(GossipMessage),
    /// A message this member signed and kept ([`Effect::Sign`] carried out), or this node's
    /// observation as the observer signed and kept it.
    Own(GossipMessage),
    /// A relayed dispute whose bond this node read back on its own RPC, as relayed; `late` as
    /// [`Effect::CheckBond`] said.
    BondChecked { relayed: Signed<RelayedDispute>, late: bool },
    /// This member's recomputation for a review ([`Effect::Recompute`]), to sign.
    Recomputed { dispute_round: u16, vote: ReviewVote },
    /// What the contract holds now (`None`: nothing published).
    Chain(Option<OnChain>),
    /// A decision another member holds (catch-up), signatures unchecked.
    Certificate(Certificate),
    /// Time passed.
    Tick,
}

/// What the executor must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Effect {
    Keep(Record),
    Sign(Unsigned),
    /// Gossip a message that is stored already (this member's review vote, after a restart).
    Gossip(GossipMessage),
    /// Ask the chain service to watch the settlement's publication.
    Watch,
    /// Ask the chain service to publish the report with these signatures, in turn `turn`.
    Publish {
        report: FinalReport,
        signatures: Vec<(Address, EthSignature)>,
        turn: u64,
    },
    /// Read a relayed dispute's bond back on this node's RPC, until `give_up_at` at the latest;
    /// answer with [`Input::BondChecked`] (and `late` as given) if it is as relayed.
    CheckBond {
        relayed: Signed<RelayedDispute>,
        give_up_at: u64,
        /// Whether the relay reached this member outside the receipt bound.
        late: bool,
    },
    /// Recompute the window for the review of `contested` (the venues' history, else this
    /// node's archive); answer with [`Input::Recomputed`].
    Recompute {
        dispute_round: u16,
        dispute_id: B256,
        contested: B256,
    },
    /// Ask a peer for what it holds of the settlement, and feed what passes the network's checks
    /// as [`Input::Gossip`].
    CatchUp,
    /// A line on the event stream.
    Event {
        kind: EventKind,
        detail: serde_json::Value,
    },
}

/// Everything the store holds of one settlement, to build its driver from (after a restart, or
/// the first time the settlement is used).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub observations: Vec<Signed<Observation>>,
    pub proposals: Vec<Signed<RoundProposal>>,
    pub votes: Vec<Signed<Vote>>,
    pub equivocations: Vec<Equivocation>,
    /// Shared with the decision's machine.
    pub certificate: Option<Arc<Certificate>>,
    pub review_certificates: Vec<(B256, Certificate)>,
    /// The decided final report's certificate, shared with its machine.
    pub report_certificate: Option<Arc<Certificate>>,
    pub review_votes: Vec<Signed<ReviewVote>>,
    pub disputes: Vec<Signed<RelayedDispute>>,
    pub rulings: Vec<Signed<RelayedRuling>>,
    /// The hashes of the held relays (disputes and rulings) that reached this member outside
    /// the receipt bound: not folded on their own (see [`crate::publication`]).
    pub late: BTreeSet<B256>,
    /// Every member's, as stored; a driver keeps only this member's own once its publication
    /// (which holds the rest) exists.
    pub report_signatures: Vec<Signed<ReportSignature>>,
    pub on_chain: Option<OnChain>,
}

/// A dispute this member accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    pub dispute_round: u16,
    /// The agreed time every member feeds it at.
    pub accepted_at: u64,
}

/// Why a dispute or ruling submitted to this member is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("settlement {0} is not known to this node")]
    UnknownSettlement(B256),
    #[error("dispute {0} was accepted already; a dispute id is used once")]
    Duplicate(B256),
    #[error("a ruling on dispute {0} was accepted already")]
    DuplicateRuling(B256),
    #[error("{0}")]
    Refused(Refusal),
    #[error("the settlement is not in arbitration, or dispute {0} is not in its arbitration round")]
    NotInArbitration(B256),
    #[error(
        "the ruling comes at or after the hard deadline {hard_deadline}; the last certified value stands"
    )]
    TooLate { hard_deadline: u64 },
    #[error(
        "the bond was mined at {mined_at}, more than {max_age} s ago: submit a dispute within {max_age} s of \
         its bond (escrow a new bond under a new dispute id; reclaim this one after publication)"
    )]
    BondTooOld { mined_at: u64, max_age: u64 },
}

/// The agreed events of a settlement, for its [`Publication`]: the first certificate,
/// certified reviews (with their listed votes), disputes and rulings. The API folds the same
/// events to show the dispute state.
///
/// [`Publication`]: crate::publication::Publication
pub fn agreed_events(
    committee: &Committee,
    certificate: Option<&Certificate>,
    review_certificates: &[(B256, Certificate)],
    review_votes: &[Signed<ReviewVote>],
    disputes: &[Signed<RelayedDispute>],
    rulings: &[Signed<RelayedRuling>],
    late: &BTreeSet<B256>,
) -> Vec<crate::publication::Event> {
    let vouched = vouched_relays(committee, review_votes, disputes, rulings, late);
    let late = |hash: B256| late.contains(&hash) && !vouched.contains(&hash);
    let mut events = Vec::new();
    events.extend(certificate.map(certified_event));
    for (_, certificate) in review_certificates {
        events.extend(review_event(committee, certificate, review_votes));
    }
    events.extend(disputes.iter().map(|d| dispute_event(&d.payload, late(d.hash()))));
    events.extend(rulings.iter().map(|r| ruling_event(&r.payload, late(r.hash()))));
    events
}

/// The late relays (by hash) that count on their own all the same: those of a dispute that more
/// than f members have cast review votes on. At least one of them is honest and folds the
/// dispute, so the review needs this member too.
pub fn vouched_relays(
    committee: &Committee,
    review_votes: &[Signed<ReviewVote>],
    disputes: &[Signed<RelayedDispute>],
    rulings: &[Signed<RelayedRuling>],
    late: &BTreeSet<B256>,
) -> BTreeSet<B256> {
    let dispute_of = |hash: &B256| {
        (disputes.iter().find(|d| &d.hash() == hash).map(|d| d.payload.dispute.dispute.dispute_id)).or_else(
            || rulings.iter().find(|r| &r.hash() == hash).map(|r| r.payload.ruling.ruling.dispute_id),
        )
    };
    let reviewers = |dispute_id: B256| {
        let mut signers: Vec<_> =
            review_votes.iter().filter(|v| v.payload.dispute_id == dispute_id).map(|v| v.signer).collect();
        signers.sort_by_key(|s| s.0);
        signers.dedup();
        signers.len()
    };
    (late.iter())
        .filter(|hash| dispute_of(hash).is_some_and(|id| reviewers(id) > committee.f()))
        .copied()
        .collect()
}

/// [`vouched_relays`] of what `held` holds.
fn vouched(committee: &Committee, held: &Held) -> BTreeSet<B256> {
    vouched_relays(committee, &held.review_votes, &held.disputes, &held.rulings, &held.late)
}

/// The first certificate as an agreed event.
pub fn certified_event(certificate: &Certificate) -> crate::publication::Event {
    let proposal = &certificate.proposal.payload;
    crate::publication::Event::Certified {
        // The certification the value comes from (see the publication timeline): the first.
        round: 0,
        proposal_hash: certificate.proposal.hash(),
        value: proposal.value,
        proposed_at: proposal.proposed_at,
    }
}

/// A relayed ruling as an agreed event, at its relay's time.
pub fn ruling_event(relayed: &RelayedRuling, late: bool) -> crate::publication::Event {
    let ruling = &relayed.ruling.ruling;
    crate::publication::Event::Ruling {
        dispute_id: ruling.dispute_id,
        value: ruling.value,
        upheld: ruling.upheld,
        accepted_at: relayed.accepted_at,
        late,
    }
}

/// A relayed dispute as an agreed event, at its relay's time.
pub fn dispute_event(relayed: &RelayedDispute, late: bool) -> crate::publication::Event {
    crate::publication::Event::Dispute {
        filing: DisputeFiling::from(&relayed.dispute.dispute),
        pool_wei: relayed.escrow.pool_wei,
        accepted_at: relayed.accepted_at,
        late,
    }
}

/// A review certificate as an agreed event: its listed votes in listed order. `None` while a
/// listed vote is missing.
pub fn review_event(
    committee: &Committee,
    certificate: &Certificate,
    votes: &[Signed<ReviewVote>],
) -> Option<crate::publication::Event> {
    let proposal = &certificate.proposal.payload;
    let casts = proposal
        .inputs
        .iter()
        .map(|hash| {
            let vote = votes.iter().find(|v| &v.hash() == hash)?;
            Some(ReviewVoteCast::from_vote(committee.index_of(&vote.signer)?, &vote.payload))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(crate::publication::Event::ReviewCertified {
        votes: casts,
        round: certificate.round,
        proposal_hash: certificate.proposal.hash(),
        value: proposal.value,
        proposed_at: proposal.proposed_at,
    })
}
