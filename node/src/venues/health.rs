//! Per-venue health counters, as the API and metrics show them.

use fixd_proto::types::venue::Venue;
use serde::{Deserialize, Serialize};

use super::VenueError;

/// How one venue has been answering. Counted per HTTP request attempt: a fetch that pages
/// through 5 pages and retries one of them twice counts 7 requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueHealth {
    pub venue: Venue,
    /// Requests sent, successful or not.
    pub total_requests: u64,
    /// Requests that failed, for any reason (including malformed bodies).
    pub total_errors: u64,
    /// Failures since the last success; 0 when the last request succeeded.
    pub consecutive_errors: u32,
    /// When the last request succeeded, unix ms.
    pub last_success_ms: Option<u64>,
    /// When the last request failed, unix ms.
    pub last_error_ms: Option<u64>,
    /// The message of the last failure.
    pub last_error: Option<String>,
    /// Time spent in all requests, ms.
    #[serde(default)]
    pub total_latency_ms: u64,
    /// How long the last request took, ms.
    #[serde(default)]
    pub last_latency_ms: Option<u64>,
}

impl VenueHealth {
    /// A venue that has not been asked yet.
    pub fn new(venue: Venue) -> Self {
        VenueHealth {
            venue,
            total_requests: 0,
            total_errors: 0,
            consecutive_errors: 0,
            last_success_ms: None,
            last_error_ms: None,
            last_error: None,
            total_latency_ms: 0,
            last_latency_ms: None,
        }
    }

    fn record_latency(&mut self, latency_ms: u64) {
        self.total_latency_ms = self.total_latency_ms.saturating_add(latency_ms);
        self.last_latency_ms = Some(latency_ms);
    }

    /// Records a request that got a usable answer at `now_ms` after `latency_ms`.
    pub fn record_success(&mut self, now_ms: u64, latency_ms: u64) {
        self.record_latency(latency_ms);
        self.total_requests = self.total_requests.saturating_add(1);
        self.consecutive_errors = 0;
        self.last_success_ms = Some(now_ms);
    }

    /// Records a request that failed at `now_ms` after `latency_ms`.
    pub fn record_error(&mut self, now_ms: u64, latency_ms: u64, error: &VenueError) {
        self.record_latency(latency_ms);
        self.total_requests = self.total_requests.saturating_add(1);
        self.total_errors = self.total_errors.saturating_add(1);
        self.consecutive_errors = self.consecutive_errors.saturating_add(1);
        self.last_error_ms = Some(now_ms);
        self.last_error = Some(error.to_string());
    }

    /// True when the last request succeeded (or none was sent yet).
    pub fn is_healthy(&self) -> bool {
        self.consecutive_errors == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_successes_and_errors() {
        let mut h = VenueHealth::new(Venue::Kraken);
        assert!(h.is_healthy());
        let err = VenueError::Http { venue: Venue::Kraken, status: 502, message: "Bad Gateway".into() };
        h.record_error(1_000, 40, &err);
        h.record_error(2_000, 60, &err);
        assert_eq!((h.total_requests, h.total_errors, h.consecutive_errors), (2, 2, 2));
        assert!(!h.is_healthy());
        h.record_success(3_000, 20);
        assert_eq!((h.total_requests, h.total_errors, h.consecutive_errors), (3, 2, 0));
        assert_eq!((h.total_latency_ms, h.last_latency_ms), (120, Some(20)));
        assert_eq!(h.last_success_ms, Some(3_000));
        assert_eq!(h.last_error_ms, Some(2_000));
        assert_eq!(h.last_error.as_deref(), Some("kraken: HTTP 502: Bad Gateway"));
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["venue"], "kraken");
        assert_eq!(json["consecutive_errors"], 0);
    }
}
