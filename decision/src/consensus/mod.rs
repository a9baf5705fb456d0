//! One decision of one settlement (DESIGN 5.2-5.3, 5.6) as a pure state machine: the first
//! certified value, the review of one dispute round, or the final report. Each is one
//! Tendermint instance ([`crate::tendermint`], on Malachite's core) whose value is a candidate
//! [`Proposal`], built and signed by the leader of the round it is first proposed in: a median
//! of members' signed inputs (observations, or review votes), or the leader's final report
//! ([`Reports`]: no inputs; a member prevotes only a report its own fold of the agreed
//! dispute history makes, with the relays that reached it in time and, if the report lists
//! them, some that reached it late; it signs the report (EIP-712) only once it is decided).
//!
//! ```text
//!   network / store ── Event (input, round proposal, vote, certificate, tick) + now ──► Certification
//!   shell ◄──── Vec<Action> (hold, propose, vote, certified, equivocation, rejected) ──────┘
//!     │ Propose / Vote: sign, record in the signing slot (settlement, decision, kind, round),
//!     │ flush, gossip, and feed the signed message back as an Event (gossip does not echo).
//! ```
//!
//! [`Certification::on`]`(now, event) -> Vec<Action>` reads no clock and does no I/O; the rules
//! of validity are [`fixd_proto::certify`]'s, so the node votes for exactly what a third party
//! will accept.
//!
//! # The protocol
//!
//! - **Start.** The instance starts at [`Certification::starts_at`]: `observe_at` for the first
//!   value, the agreed start of a review. Round r's proposer is
//!   `Committee::leader(settlement_id, r)`, a rotation. Rounds end by Tendermint's timeouts
//!   (propose, prevote, precommit), on this node's clock, each growing per round
//!   ([`crate::tendermint::Timeouts::for_round_timeout`] of `round_timeout_secs`).
//! - **Inputs.** Each valid input (member, this settlement, signature) is kept by hash. The
//!   first from a member is its input; another one with a different hash is equivocation:
//!   evidence is kept, the member's later inputs are ignored unless a held proposal lists them.
//! - **Propose.** A leader asked for a value proposes once it holds inputs *with a value* from at
//!   least q distinct members: a fresh candidate (`inputs` = their sorted hashes, `value` =
//!   their median, `proposed_at = now`, `challenge_deadline = now + challenge_period_secs`) in a
//!   [`RoundProposal`] without `pol_round`. A leader that holds a valid value from a polka
//!   re-proposes that candidate unchanged, naming the polka's round.
//! - **Validity** (Tendermint's `valid(v)`): the candidate passes
//!   [`fixd_proto::certify::check_proposal`] (or its review counterpart) with every listed input
//!   held, and the deadline policy [`fixd_proto::certify::check_challenge_deadline`]. A fresh
//!   candidate's `proposed_at` must also be within `max_clock_skew_secs` of this clock when it
//!   arrived. A round proposal whose inputs are not all held waits (the propose timeout runs);
//!   [`Certification::missing_inputs`] says what to fetch.
//! - **Votes** are Tendermint's prevotes and precommits, for a candidate's hash or nil. The
//!   decision is q precommits of one round for one candidate: a [`Certificate`]
//!   (`fixd_proto::certify::verify_certificate` accepts it). A member that receives a valid
//!   certificate (catch-up) takes it as the decision.
//!
//! # Rules kept here (the core trusts its input)
//! - **Admission before storage.** A message is held (and the shell stores it, [`Action::Hold`])
//!   only after it passed: this settlement and decision, a member, a valid signature, the round's
//!   leader for a proposal, and a round at most [`ROUNDS_AHEAD`] past this member's. Per member
//!   and decision at most one proposal and one vote per (round, step) is held, plus one piece of
//!   equivocation evidence per member: one member adds at most
//!   `(current round + ROUNDS_AHEAD + 1) × (1 proposal + 2 votes) + 1 evidence` messages
//!   ([`max_held_per_member`]).
//! - **Locks survive restarts.** The core's lock lives in memory. A restarted member replays what
//!   it kept, its own precommits included; a candidate other than the one it last precommitted
//!   (round r) is invalid to it unless re-proposed with `pol_round ≥ r` (Tendermint's lock rule,
//!   rebuilt from the store).
//! - **One signature per slot.** The shell signs at most one message per (decision, kind,
//!   round), whatever a restarted core asks for.

mod evidence;
mod held;
mod inputs;
mod machine;

#[cfg(test)]
mod tests;

use fixd_proto::certify::CertifyError;
use fixd_proto::signing::{PublicKey, Signed};
use fixd_proto::types::certificate::{Certificate, Proposal, RoundProposal, Vote};
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::observation::Observation;

pub use inputs::{Inputs, Observations, Reports, Review};
pub use machine::{Certification, max_held_per_member};

/// How many rounds past its own a member admits messages for.
pub const ROUNDS_AHEAD: u32 = crate::tendermint::ROUNDS_AHEAD;

/// The timing of certification, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsensusParams {
    /// The length of a first round (the three timeouts together); at least 1 is used.
    pub round_timeout_secs: u64,
    /// `challenge_deadline = proposed_at + challenge_period_secs`.
    pub challenge_period_secs: u64,
    /// How far a fresh candidate's `proposed_at` may be from this node's clock.
    pub max_clock_skew_secs: u64,
}

impl ConsensusParams {
    /// The genesis parameters for a first certification.
    pub fn from_protocol(params: &ProtocolParams) -> Self {
        ConsensusParams {
            round_timeout_secs: params.round_timeout_secs,
            challenge_period_secs: params.challenge_period_secs,
            max_clock_skew_secs: params.max_clock_skew_secs,
        }
    }
}

/// What the machine is told. The author's signature of every message has been checked by the
/// caller (the network layer checks each gossiped or caught-up message, the store holds what
/// passed); the machine checks membership, settlement, decision and round, and verifies what
/// others' signatures vouch for: a round proposal's polka, a proposal's inputs, a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Observation(Signed<Observation>),
    /// A round leader's proposal.
    Proposal(Signed<RoundProposal>),
    Vote(Signed<Vote>),
    /// A member's review vote: the input of a review's certification.
    ReviewVote(Signed<fixd_proto::types::dispute::ReviewVote>),
    /// A decision another member holds (catch-up): q precommits of one round.
    Certificate(Certificate),
    /// Time passed; send one at [`Certification::next_wakeup`].
    Tick,
}

pub use evidence::{Equivocation, EvidenceError};
pub use fixd_proto::gossip::MessageKind;

/// The candidate of a round proposal to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Candidate {
    /// Built by this member for this round: sign it first, then the round proposal around it.
    Fresh(Proposal),
    /// Re-proposed as it was signed.
    Held(Signed<Proposal>),
}

/// A round proposal this member is to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalToSign {
    pub round: u32,
    pub pol_round: Option<u32>,
    pub candidate: Candidate,
    /// The q prevotes of `pol_round` for a re-proposed candidate, sorted by signer.
    pub polka: Vec<fixd_proto::signing::Endorsement>,
}

impl ProposalToSign {
    /// The round proposal, its candidate signed by `sign_fresh` if this member built it. The
    /// caller signs the round proposal itself.
    pub fn into_round_proposal(self, sign_fresh: impl FnOnce(Proposal) -> Signed<Proposal>) -> RoundProposal {
        let proposal = match self.candidate {
            Candidate::Fresh(fresh) => sign_fresh(fresh),
            Candidate::Held(held) => held,
        };
        RoundProposal { round: self.round, pol_round: self.pol_round, proposal, polka: self.polka }
    }

    /// The source of its candidate: which decision it is for.
    pub fn source(&self) -> &fixd_proto::types::certificate::ProposalSource {
        match &self.candidate {
            Candidate::Fresh(fresh) => &fresh.source,
            Candidate::Held(held) => &held.payload.source,
        }
    }
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// A message from another member was admitted and is held: store it.
    Hold(fixd_proto::gossip::GossipMessage),
    /// Sign this round proposal, record it in its signing slot and flush *before* gossiping
    /// it, then feed the signed proposal back as [`Event::Proposal`].
    Propose(ProposalToSign),
    /// Sign this vote, record it in its signing slot and flush *before* gossiping it, then feed
    /// the signed vote back as [`Event::Vote`].
    Vote(Vote),
    /// The decision (emitted once); hand it to the dispute machine and the API. Shared with
    /// the machine, which keeps it: one copy a decision, not one per holder.
    Certified(std::sync::Arc<Certificate>),
    /// A member signed two different messages for one slot: store the evidence (both signed
    /// messages) and show it in the API.
    Equivocation(Equivocation),
    /// A message from `from` is invalid; for a proposal, this member prevotes nil.
    Rejected { from: PublicKey, reason: CertifyError },
}
