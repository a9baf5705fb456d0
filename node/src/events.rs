//! The node's state changes, as one broadcast stream: the API's event stream (`/v1/events`)
//! and the metrics read it; the tasks that change state publish to it.

use alloy_primitives::B256;
use serde::Serialize;
use tokio::sync::broadcast;

/// One state change of one settlement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeEvent {
    pub settlement_id: B256,
    /// What happened: `scheduled`, `observed`, …
    pub kind: &'static str,
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
        tracing::debug!(settlement = %event.settlement_id, kind = event.kind, "event");
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
