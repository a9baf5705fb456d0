//! Why a venue is not in an observation: a node-local record kept beside the observation (the
//! signed observation lists only the venues that reported trades), so that an operator sees
//! at `GET /v1/settlements/{id}` why a venue is missing without reading the logs.

use fixd_proto::types::observation::{Computation, Exclusion};
use fixd_proto::types::venue::Venue;
use serde::{Deserialize, Serialize};

use super::VenueError;

/// Why a venue was left out of an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftOutReason {
    /// The venue answered a non-2xx HTTP status (`status` says which), after the retries.
    HttpStatus,
    /// The venue's page was not its documented shape: invalid JSON, an HTML page, a bad row, a
    /// page larger than the caps, a cursor that does not move.
    Malformed,
    /// No complete answer within the venue's timeout, after the retries.
    Timeout,
    /// No HTTP answer at all: refused or reset connection, DNS or TLS failure.
    Unreachable,
    /// The venue said it was rate limiting or busy, after the retries.
    Busy,
    /// The venue answered with its own error (an unknown pair, for example).
    VenueError,
    /// Paging did not cover the window within the configured page cap.
    PageCap,
    /// The window held more trades than one fetch keeps.
    TooManyTrades,
    /// The venue's public API does not serve trades that old.
    WindowTooOld,
    /// The venue's configuration cannot work.
    Config,
    /// The venue answered, with no trade inside the window.
    NoTrades,
    /// The methodology dropped it: it traded in fewer than half the partitions.
    TooFewPartitions,
    /// The methodology dropped it: its window median was too far from the other venues'.
    Deviation,
}

/// One venue left out of this node's observation, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub venue: Venue,
    pub reason: LeftOutReason,
    /// The HTTP status, for [`LeftOutReason::HttpStatus`].
    pub status: Option<u16>,
    /// The error or the methodology's reason, in words.
    pub detail: String,
}

impl LeftOut {
    /// A venue whose fetch failed with `error`.
    pub fn failed(error: &VenueError) -> LeftOut {
        let (reason, status) = match error {
            VenueError::Http { status, .. } => (LeftOutReason::HttpStatus, Some(*status)),
            VenueError::Malformed { .. } => (LeftOutReason::Malformed, None),
            VenueError::Timeout { .. } => (LeftOutReason::Timeout, None),
            VenueError::Transport { .. } => (LeftOutReason::Unreachable, None),
            VenueError::Busy { .. } => (LeftOutReason::Busy, None),
            VenueError::Api { .. } => (LeftOutReason::VenueError, None),
            VenueError::PageCap { .. } => (LeftOutReason::PageCap, None),
            VenueError::TooManyTrades { .. } => (LeftOutReason::TooManyTrades, None),
            VenueError::WindowTooOld { .. } => (LeftOutReason::WindowTooOld, None),
            VenueError::Config { .. } | VenueError::InvalidRange { .. } => (LeftOutReason::Config, None),
        };
        LeftOut { venue: error.venue(), reason, status, detail: error.to_string() }
    }

    /// Every venue of `asked` that `computation` does not use: those whose fetch failed (in
    /// `failed`), those with no trade in the window, and those the methodology dropped. In
    /// canonical venue order.
    pub fn of_observation(asked: &[Venue], failed: &[LeftOut], computation: &Computation) -> Vec<LeftOut> {
        let mut out = Vec::new();
        for venue in Venue::ALL.into_iter().filter(|v| asked.contains(v)) {
            if let Some(failure) = failed.iter().find(|f| f.venue == venue) {
                out.push(failure.clone());
                continue;
            }
            let report = computation.venues.iter().find(|r| r.venue == venue);
            let left_out = match report.map(|r| &r.excluded) {
                None => LeftOut {
                    venue,
                    reason: LeftOutReason::NoTrades,
                    status: None,
                    detail: format!("{venue} answered with no trade inside the window"),
                },
                Some(None) => continue,
                Some(Some(Exclusion::TooFewPartitions { traded, partitions })) => LeftOut {
                    venue,
                    reason: LeftOutReason::TooFewPartitions,
                    status: None,
                    detail: format!(
                        "{venue} traded in {traded} of {partitions} partitions, fewer than half; dropped for the window"
                    ),
                },
                Some(Some(Exclusion::Deviation { venue_median, cross_venue_median, deviation_bp })) => {
                    LeftOut {
                        venue,
                        reason: LeftOutReason::Deviation,
                        status: None,
                        detail: format!(
                            "{venue}'s window median {venue_median} is {deviation_bp} bp from the cross-venue median {cross_venue_median}; dropped for the window"
                        ),
                    }
                }
            };
            out.push(left_out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fixd_proto::types::observation::{NodeValue, VenueReport};
    use fixd_proto::value::Wad;

    use super::*;

    #[test]
    fn every_failure_and_every_dropped_venue_is_named_with_its_reason() {
        let failed = [
            LeftOut::failed(&VenueError::Http { venue: Venue::Kraken, status: 500, message: "down".into() }),
            LeftOut::failed(&VenueError::Timeout {
                venue: Venue::Gemini,
                url: "http://x".into(),
                after: Duration::from_secs(2),
            }),
        ];
        let computation = Computation {
            partitions: vec![],
            venues: vec![VenueReport {
                venue: Venue::Bitstamp,
                trades: 3,
                excluded: Some(Exclusion::TooFewPartitions { traded: 2, partitions: 12 }),
            }],
            value: NodeValue::Value(Wad::ONE),
        };
        let left_out = LeftOut::of_observation(&Venue::ALL, &failed, &computation);
        let reasons: Vec<_> = left_out.iter().map(|l| (l.venue, l.reason, l.status)).collect();
        assert_eq!(
            reasons,
            [
                (Venue::Coinbase, LeftOutReason::NoTrades, None),
                (Venue::Kraken, LeftOutReason::HttpStatus, Some(500)),
                (Venue::Bitstamp, LeftOutReason::TooFewPartitions, None),
                (Venue::Gemini, LeftOutReason::Timeout, None),
            ]
        );
        assert_eq!(left_out[1].detail, "kraken: HTTP 500: down");
        assert!(left_out[2].detail.contains("2 of 12 partitions"), "{}", left_out[2].detail);
        let json = serde_json::to_value(&left_out[1]).unwrap();
        assert_eq!(json["reason"], "http_status");
        assert_eq!(json["status"], 500);
        // A venue not asked is not left out; a used venue is not either.
        let used = Computation {
            venues: vec![VenueReport { venue: Venue::Coinbase, trades: 9, excluded: None }],
            ..computation
        };
        assert!(LeftOut::of_observation(&[Venue::Coinbase], &[], &used).is_empty());
        let malformed = LeftOut::failed(&crate::venues::parse::too_many_rows(Venue::Coinbase));
        assert_eq!(malformed.reason, LeftOutReason::Malformed);
    }
}
