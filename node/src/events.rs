//! The node's state changes, as one broadcast stream: the API's event stream (`/v1/events`)
//! and the metrics read it; the tasks that change state publish to it.

use alloy_primitives::B256;
use serde::Serialize;
use tokio::sync::broadcast;

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

/// One state change of one settlement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeEvent {
    pub settlement_id: B256,
    /// What happened.
    pub kind: EventKind,
    /// Unix seconds.
    pub at: u64,
    /// Details for the kind (for `observed`: the message hash and the value or "no value").
    pub detail: serde_json::Value,
}

/// The sending side of the event stream. Cloneable; a send with no listener is fine.
#[derive(Clone, Debug)]
pub struct EventBus {
    sender: broadcast::Sender<NodeEvent>,
}

impl EventBus {
    /// A bus that keeps the last `capacity` events for slow listeners.
    pub fn new(capacity: usize) -> Self {
        EventBus { sender: broadcast::channel(capacity).0 }
    }

    pub fn publish(&self, event: NodeEvent) {
        tracing::debug!(settlement = %event.settlement_id, kind = event.kind.name(), "event");
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    /// The stream's name, the JSON `kind` and the API document's list are one name each.
    #[test]
    fn each_kind_has_one_name_everywhere() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("api/openapi.json")).unwrap();
        let listed = &doc["components"]["schemas"]["NodeEvent"]["properties"]["kind"]["enum"];
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(listed, &serde_json::json!(names));
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
