//! What happens to a settlement, as one vocabulary: the settlement driver names each state
//! change with an [`EventKind`]; the node's event stream (`/v1/events`), its metrics
//! (`fixd_phase_seconds`, `fixd_disputes_total`), its logs and the devnet's progress view read
//! the same names.

use serde::Serialize;

/// What happened to a settlement: one name each, used by the event stream (`event: <name>`),
/// the metrics (`fixd_phase_seconds`, `fixd_disputes_total`) and the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Scheduled through the admin API; detail `{maturity}`.
    Scheduled,
    /// This node signed its observation; detail `{hash, value}`.
    Observed,
    /// The first certificate; detail `{round, value, challenge_deadline}`.
    Certified,
    /// The challenge window opened (again); detail `{round, deadline}`.
    ChallengeWindowOpened,
    /// A dispute was accepted at its agreed time; detail: the dispute machine's action,
    /// `outcome`, `agreed_at`.
    DisputeAccepted,
    /// A dispute was refused at its agreed time; detail as for `dispute_accepted`.
    DisputeRefused,
    /// A dispute round went to committee review; detail `{dispute_round, dispute_id, first_round}`.
    ReviewStarted,
    /// This member signed its review vote; detail `{dispute_id, member, value}`.
    ReviewVote,
    /// A review was certified; detail `{dispute_id, round, value}`.
    ReviewCertified,
    /// A review was decided, upheld or rejected; detail: the action, `outcome`, `agreed_at`.
    ReviewDecided,
    /// The dispute went to the arbitrator; detail: the action.
    Escalated,
    /// Another step of the dispute machine; detail: the action.
    DisputeMachine,
    /// The settlement is final and this member signed the report; detail `{value, round, by}`.
    Final,
    /// The value is on-chain with enough confirmations; detail: the publication.
    Published,
    /// The contract holds another value than this member's report; detail `{on_chain, ours, tx_hash}`.
    Conflict,
    /// Nothing was certified by the hard deadline; detail `{reason}`.
    Failed,
    /// A member signed two different messages for one slot; detail: the evidence.
    Equivocation,
}

impl EventKind {
    pub const ALL: [EventKind; 17] = [
        EventKind::Scheduled,
        EventKind::Observed,
        EventKind::Certified,
        EventKind::ChallengeWindowOpened,
        EventKind::DisputeAccepted,
        EventKind::DisputeRefused,
        EventKind::ReviewStarted,
        EventKind::ReviewVote,
        EventKind::ReviewCertified,
        EventKind::ReviewDecided,
        EventKind::Escalated,
        EventKind::DisputeMachine,
        EventKind::Final,
        EventKind::Published,
        EventKind::Conflict,
        EventKind::Failed,
        EventKind::Equivocation,
    ];

    /// The event's name on the stream and in the API document.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Scheduled => "scheduled",
            EventKind::Observed => "observed",
            EventKind::Certified => "certified",
            EventKind::ChallengeWindowOpened => "challenge_window_opened",
            EventKind::DisputeAccepted => "dispute_accepted",
            EventKind::DisputeRefused => "dispute_refused",
            EventKind::ReviewStarted => "review_started",
            EventKind::ReviewVote => "review_vote",
            EventKind::ReviewCertified => "review_certified",
            EventKind::ReviewDecided => "review_decided",
            EventKind::Escalated => "escalated",
            EventKind::DisputeMachine => "dispute_machine",
            EventKind::Final => "final",
            EventKind::Published => "published",
            EventKind::Conflict => "conflict",
            EventKind::Failed => "failed",
            EventKind::Equivocation => "equivocation",
        }
    }
}
