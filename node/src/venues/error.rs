//! Why fetching trades from a venue failed, and whether trying again may help.

use std::time::Duration;

use fixd_proto::types::venue::Venue;

/// A failed venue fetch. Every message names the venue and says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VenueError {
    /// The venue's configuration cannot work (a bad base URL, for example).
    #[error("{venue}: bad configuration: {detail}; fix [venues.{venue}] in the config file")]
    Config { venue: Venue, detail: String },

    /// The request never got an HTTP answer: refused or reset connection, DNS failure, TLS error.
    #[error(
        "{venue}: request to {url} failed: {detail}; check network access to the venue and venues.{venue}.base_url"
    )]
    Transport { venue: Venue, url: String, detail: String },

    /// No complete answer within the configured timeout.
    #[error(
        "{venue}: no complete response from {url} within {}; the venue is slow or unreachable (raise venues.{venue}.timeout if it is slow but healthy)",
        humantime_serde::re::humantime::format_duration(*after)
    )]
    Timeout { venue: Venue, url: String, after: Duration },

    /// A non-2xx HTTP status. `message` is the venue's own error text when the body has the
    /// venue's error shape, otherwise a short excerpt of the body.
    #[error("{venue}: HTTP {status}: {message}")]
    Http { venue: Venue, status: u16, message: String },

    /// The venue answered in its own error shape (in a 2xx body, as Kraken always does), with
    /// an error that retrying will not fix, such as an unknown pair.
    #[error(
        "{venue} reported an error: {message}; check the pair and the adapter against the venue's API docs"
    )]
    Api { venue: Venue, message: String },

    /// The venue says it is rate limiting us or is temporarily unavailable (Kraken's
    /// `EGeneral:Too many requests`, `EService:Unavailable`, ...). Retried with backoff.
    #[error(
        "{venue} is rate limiting or busy: {message}; requests are retried with backoff (raise venues.{venue}.min_interval to ask less often)"
    )]
    Busy { venue: Venue, message: String },

    /// The body is not the venue's documented shape: truncated or invalid JSON, an HTML page,
    /// a missing field, a wrong type, a negative or exponent price. Not retried.
    #[error(
        "{venue}: malformed response: {detail}; the venue changed its format or sent garbage, so its trades are not used for this fetch"
    )]
    Malformed { venue: Venue, detail: String },

    /// Paging did not reach the window edge within `max_pages` requests.
    #[error(
        "{venue}: window [{start_ms}, {end_ms}] ms not covered after {pages} requests; the window holds more trades than the page cap allows or the venue is not paging (raise venues.{venue}.max_pages)"
    )]
    PageCap { venue: Venue, pages: u32, start_ms: u64, end_ms: u64 },

    /// The window holds more trades than one fetch keeps ([`crate::venues::MAX_FETCH_TRADES`]).
    #[error(
        "{venue}: window [{start_ms}, {end_ms}] ms holds more than {limit} trades, more than one fetch keeps; the venue is flooding its pages, or the window is far longer than an observation window (shorten window_secs)"
    )]
    TooManyTrades { venue: Venue, limit: usize, start_ms: u64, end_ms: u64 },

    /// The venue's public API does not serve trades that old (Bitstamp: the last 24 hours).
    #[error(
        "{venue}: the public API only serves the last {}, but the window starts {} ago; this venue cannot be used for this window",
        humantime_serde::re::humantime::format_duration(*limit),
        humantime_serde::re::humantime::format_duration(*age)
    )]
    WindowTooOld { venue: Venue, age: Duration, limit: Duration },

    /// `start_ms > end_ms`: a caller bug.
    #[error("{venue}: empty time range: start {start_ms} ms is after end {end_ms} ms")]
    InvalidRange { venue: Venue, start_ms: u64, end_ms: u64 },
}

impl VenueError {
    /// The venue the error is about.
    pub fn venue(&self) -> Venue {
        match self {
            VenueError::Config { venue, .. }
            | VenueError::Transport { venue, .. }
            | VenueError::Timeout { venue, .. }
            | VenueError::Http { venue, .. }
            | VenueError::Api { venue, .. }
            | VenueError::Busy { venue, .. }
            | VenueError::Malformed { venue, .. }
            | VenueError::PageCap { venue, .. }
            | VenueError::TooManyTrades { venue, .. }
            | VenueError::WindowTooOld { venue, .. }
            | VenueError::InvalidRange { venue, .. } => *venue,
        }
    }

    /// Whether the same request may succeed if sent again: transport failures, timeouts,
    /// HTTP 5xx and 429, and the venue saying it is busy. A 4xx, the venue's own error and a
    /// malformed body are answers, and asking again gets the same answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            VenueError::Transport { .. } | VenueError::Timeout { .. } | VenueError::Busy { .. } => true,
            VenueError::Http { status, .. } => *status >= 500 || *status == 429,
            VenueError::Config { .. }
            | VenueError::Api { .. }
            | VenueError::Malformed { .. }
            | VenueError::PageCap { .. }
            | VenueError::TooManyTrades { .. }
            | VenueError::WindowTooOld { .. }
            | VenueError::InvalidRange { .. } => false,
        }
    }
}
