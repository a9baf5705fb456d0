//! `/v1/events`: server-sent events, one `event: <kind>` with a JSON `data:` per state change.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;

pub async fn stream(State(state): State<ApiState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.events.subscribe();
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(event) => {
                let data = serde_json::to_string(&event).expect("events serialise");
                Event::default().event(event.kind.name()).data(data)
            }
            // A slow listener missed some events: say so, and go on with the next.
            Err(RecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(format!("{{\"missed\":{missed}}}"))
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
