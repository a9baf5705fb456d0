//! `/v1/events`: server-sent events, one `event: <kind>` with a JSON `data:` per state change.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;

/// The stream, while fewer than `api.max_event_streams` are open; past it a 503 with a JSON error
/// and `Retry-After`, so that idle clients cannot hold the node's memory.
pub async fn stream(
    State(state): State<std::sync::Arc<ApiState>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, axum::response::Response> {
    let Ok(permit) = state.event_streams.clone().try_acquire_owned() else {
        let error = super::ApiError::unavailable(
            "too_many_streams",
            "this node serves api.max_event_streams event streams already; retry later or ask another member",
        );
        let mut response = axum::response::IntoResponse::into_response(error);
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("10"));
        return Err(response);
    };
    let receiver = state.events.subscribe();
    // The permit lives as long as the stream: dropped when the client goes.
    let events = futures::stream::unfold((receiver, permit), |(mut receiver, permit)| async move {
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
        Some((Ok(event), (receiver, permit)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
