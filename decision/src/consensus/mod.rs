//! Certification of one settlement (DESIGN 5.2-5.3, 5.6) as a pure state machine: from signed
//! observations to a certificate, with rounds, leaders, votes and equivocation evidence.
//!
//! ```text
//!   network / store ── Event (observation, proposal, vote, tick) + now ──► Certification
//!   shell ◄──── Vec<Action> (propose, vote, certified, equivocation, timed out, rejected) ──┘
//!     │ Propose / Vote: sign, record in the store slot (settlement, kind, round), flush,
//!     │ gossip, and feed the signed message back in as an Event (gossip does not echo).
//! ```
//!
//! [`Certification::on`]`(now, event) -> Vec<Action>` reads no clock and does no I/O; the rules
//! of validity are [`fixd_proto::certify`]'s, so the node votes for exactly what a third party
//! will accept.
//!
//! # Rounds
//!
//! Round r runs over `[observe_at + r·T, observe_at + (r+1)·T)`, `T = round_timeout_secs`, on the
//! node's own clock. Every member derives the same schedule from the spec, so a member that
//! starts late or restarts is in the right round at once, with no round-change messages; clocks
//! are NTP-synced within `max_clock_skew_secs` (DESIGN 2), much less than `T`. Before
//! `observe_at` no round runs (messages are kept). When a round ends with no certificate the
//! machine emits [`Action::RoundTimedOut`] and the next round's leader,
//! `Committee::leader(settlement_id, r)`, takes over.
//!
//! # What the machine does
//!
//! - **Observations.** Each valid observation (member, this settlement, signature) is kept by
//!   hash. The first from a member is its observation; another one with a different hash is
//!   equivocation (see below).
//! - **Propose.** The current round's leader, once it holds observations *with a value* from at
//!   least q distinct members (equivocators excluded), proposes once: `inputs` = the sorted hashes
//!   of exactly those observations (all it holds, not just q, for a more robust median; "no value"
//!   observations are left out: they do not count toward q or the median), `value` = their
//!   median, `proposed_at = now`, `challenge_deadline = now + challenge_period_secs`.
//! - **Vote.** A member votes once per round, only for the current round's leader's proposal,
//!   and only if it passes [`fixd_proto::certify::check_proposal`] (with `now` = when the
//!   proposal arrived, or when its round began if it came early) and the deadline policy
//!   [`fixd_proto::certify::check_challenge_deadline`]. A proposal that fails gets
//!   [`Action::Rejected`] and no vote. A proposal listing observations the member does not hold
//!   waits, and is checked again as observations arrive; [`Certification::missing_inputs`] says
//!   what to fetch.
//! - **Certify.** q valid votes from distinct members for one proposal hash make a certificate,
//!   emitted once as [`Action::Certified`] after [`fixd_proto::certify::verify_certificate`]
//!   passes. After that the machine is done and ignores everything. Votes count for their own
//!   round even when it has passed: any q votes make a valid certificate, and a member only ever
//!   *signs* in the current round.
//! - **Equivocation.** ed25519 signing is deterministic (RFC 8032), so an honest member has one
//!   signed message per slot (observation; proposal or vote per round). Two with different hashes
//!   from one member are evidence ([`Action::Equivocation`]); the member's votes are dropped from
//!   the tallies, its proposals are dropped, and its later messages for this settlement are
//!   ignored. Observations it signed stay usable as inputs of other members' proposals: each is
//!   a valid signed statement on its own, and the median tolerates f arbitrary values. So one
//!   that arrives after it is caught is still kept if a held proposal lists it (the leader may
//!   have used it first; a member that refused it could never vote for that proposal).
//! - **Future rounds.** Proposals and votes for up to [`ROUNDS_AHEAD`] rounds past the current
//!   one are kept (a member whose clock runs ahead); further ones are ignored. At most one
//!   message per member, kind and round is kept, plus the one that proves equivocation, so memory
//!   is bounded by rounds × members.
//! - **Own messages.** The machine records each round it proposes or votes in before emitting
//!   the action, and never emits a second. A restarted node replays what its store says it
//!   signed as events; seeing its own signed proposal or vote marks that round as taken.

mod evidence;
mod inputs;
mod machine;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use fixd_proto::certify::CertifyError;
use fixd_proto::signing::{PublicKey, Signed};
use fixd_proto::types::certificate::{Certificate, Proposal, Vote};
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::observation::Observation;

pub use inputs::{Inputs, Observations, Review};
pub use machine::Certification;

/// How many rounds past the current one a proposal or vote is kept for.
pub const ROUNDS_AHEAD: u32 = 2;

/// The timing of certification, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsensusParams {
    /// Length of a round; at least 1 is used.
    pub round_timeout_secs: u64,
    /// `challenge_deadline = proposed_at + challenge_period_secs`.
    pub challenge_period_secs: u64,
    /// How far a proposal's `proposed_at` may be from this node's clock.
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

/// What the machine is told. Signatures may have been checked by the network layer already;
/// the machine checks them again, with membership and settlement.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    Observation(Signed<Observation>),
    Proposal(Signed<Proposal>),
    Vote(Signed<Vote>),
    /// A member's review vote: the input of a review's certification.
    ReviewVote(Signed<fixd_proto::types::dispute::ReviewVote>),
    /// Time passed; send one at [`Certification::next_wakeup`].
    Tick,
}

pub use evidence::{Equivocation, EvidenceError};
pub use fixd_proto::gossip::MessageKind;

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Sign this proposal, record it in the store slot (settlement, proposal, round) and flush
    /// *before* gossiping it, then feed the signed proposal back as [`Event::Proposal`].
    Propose(Proposal),
    /// Sign this vote, record it in the store slot (settlement, vote, round) and flush *before*
    /// gossiping it, then feed the signed vote back as [`Event::Vote`].
    Vote(Vote),
    /// The settlement is certified (emitted once); hand it to the dispute machine and the API.
    Certified(Certificate),
    /// A member signed two different messages for one slot: store the evidence (both signed
    /// messages) and show it in the API. The machine now ignores that member.
    Equivocation(Equivocation),
    /// `round` ended without a certificate; `next_round` (led by member `next_leader`) runs.
    RoundTimedOut { round: u32, next_round: u32, next_leader: usize },
    /// A message from `from` is invalid; for a proposal, this member does not vote for it.
    Rejected { from: PublicKey, reason: CertifyError },
}
