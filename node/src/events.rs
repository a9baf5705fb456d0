//! The node's state changes, as one broadcast stream: the API's event stream (`/v1/events`)
//! and the metrics read it; the tasks that change state publish to it.

use alloy_primitives::B256;
pub use fixd_decision::events::EventKind;
use serde::Serialize;
use tokio::sync::broadcast;

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
