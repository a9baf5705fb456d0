//! Venue adapters: the ETH-USD trades of each venue between two times, exactly, over its public
//! REST API.
//!
//! ```text
//!  observation producer / dispute review
//!        │ trades_between(start_ms, end_ms)
//!        ▼
//!  VenueAdapter ──► walk (pure: page in, next query out) ──► parse (pure: bytes in, Page out)
//!        │                    ▲                                      ▲
//!        ▼                    │ Page                                 │ RawResponse
//!  HttpClient: pacing, timeout, retries with backoff, body cap ──────┘ ──► VenueHealth
//! ```
//!
//! Every venue answers in its own shape. The parsers turn the exact bytes into normalised
//! [`Trade`]s: the venue's trade id as a string, price and size as exact [`Wad`](fixd_proto::value::Wad)s parsed from
//! the venue's decimal strings (no floats anywhere), and the time in unix ms, floored (digits
//! past the ms are dropped). [`VenueAdapter::trades_between`] pages until the window
//! `[start_ms, end_ms]` (both inclusive) is covered, keeps the trades inside it, drops repeated
//! ids and sorts by time, then id.
//!
//! | venue | endpoint (`{base_url}` +) | order | paging | time precision | error shape |
//! |---|---|---|---|---|---|
//! | Coinbase | `/products/ETH-USD/trades?limit=1000&after=<id>` | newest first | back by trade id: `after` = `CB-AFTER` header (oldest id of the page); an old window is first found by one-trade probes | RFC 3339 string, µs | non-2xx + `{"message":"..."}` |
//! | Kraken | `/0/public/Trades?pair=XETHZUSD&since=<ns>&count=1000` | oldest first | forward: `since` = `result.last` (ns) | JSON float seconds, 7 decimals, read from the text | HTTP 200 + `{"error":["EQuery:Unknown asset pair"]}` |
//! | Bitstamp | `/api/v2/transactions/ethusd/?time=hour\|day` | newest first | none: one request covering the last hour or day | `date`: unix seconds (string) | `{"status":"error","reason":...,"code":...}`, 200 or 4xx/5xx |
//! | Gemini | `/v1/trades/ethusd?timestamp=<ms>&limit_trades=500` | newest first | forward: `timestamp` = newest `timestampms` of the page | `timestampms`: integer ms | `{"result":"error","reason":...,"message":...}` |
//!
//! Decisions:
//! - **Retries**: transport failures, timeouts, HTTP 5xx and 429, and the venue saying it is
//!   busy (Kraken `EService:*`, `EGeneral:Too many requests`; Gemini `RateLimited`) are retried
//!   `retries` times with exponential backoff and jitter. Other 4xx, the venue's own errors and
//!   malformed bodies are answers and are not retried ([`VenueError::is_retryable`]).
//! - **Malformed pages**: one bad row (a negative or exponent price, a missing field, a wrong
//!   type) fails the whole page, and so the fetch: a venue that sends garbage is not trusted
//!   for that fetch, and the methodology runs without it.
//! - **Page cap**: at most `max_pages` requests (default 200) per fetch, probes included;
//!   beyond it the fetch fails with [`VenueError::PageCap`] rather than loop. A cursor that
//!   does not move fails with [`VenueError::Malformed`].
//! - **Bitstamp** has no cursor: `time=hour` when the window starts within the last hour
//!   (with a one-minute margin), `time=day` within the last day, else
//!   [`VenueError::WindowTooOld`].
//! - **Health** is counted per HTTP attempt ([`VenueHealth`]).
//!
//! ## Memory: at most [`FETCH_MEMORY_BOUND`] (80 MiB) per fetch
//! A venue is not trusted with the node's memory. One fetch holds at most:
//! - the body being read: at most [`MAX_BODY_BYTES`] (32 MiB); a longer body is refused as it
//!   arrives (or at once, from its `Content-Length`), and the buffer is sized from
//!   `Content-Length` so that it never grows by copying;
//! - the rows of one page: pages are **streamed** into typed rows (`serde` visitors over the
//!   body, each row decoded into a [`Trade`] as it is read, strings borrowed from the body; no
//!   JSON tree of the page, and Kraken's float times are read from their raw text). A page
//!   with more than [`MAX_PAGE_ROWS`] (100,000) trades is refused as malformed at the first row
//!   past it: about 14 MB at ~112 bytes a trade (its `Vec` slot and its id string);
//! - the window's trades kept so far: only the trades inside the window are kept past their
//!   page, and a fetch that would keep more than [`MAX_FETCH_TRADES`] (250,000) fails with
//!   [`VenueError::TooManyTrades`]: about 29 MB.
//!
//! So 32 MiB + 14 MB + 29 MB ≈ 73 MiB, under 80 MiB with the allocator's slack. A page of
//! millions of tiny trades costs its 32 MiB body and 100,000 rows, then it is refused and the
//! venue is left out of the observation. The node fetches its venues concurrently, so its
//! observer needs at most one bound per enabled venue (4 × 80 MiB) above its resting size.
//! Nothing inside a page can make its decoding buffer more than its size suggests: a row
//! longer than [`MAX_ROW_BYTES`] (4 KiB; a real trade takes 100 to 200 bytes) is refused before
//! it is decoded, and error bodies keep only the fields of the venue's error shape, at most 64
//! values of at most 1 KiB each, however they nest.

mod bitstamp;
mod client;
mod coinbase;
mod config;
mod error;
mod gemini;
mod health;
mod kraken;
mod left_out;
mod parse;

#[cfg(test)]
mod http_tests;
#[cfg(test)]
pub(crate) mod testdata;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, PoisonError};

use fixd_proto::types::venue::{Trade, Venue};
use futures::future::BoxFuture;

pub use client::{MAX_BODY_BYTES, RawResponse, backoff_delay, unix_ms_now};
pub use config::{MAX_BACKOFF, VenueConfig, VenuesConfig};
pub use error::VenueError;
pub use health::VenueHealth;
pub use left_out::{LeftOut, LeftOutReason};
pub use parse::{MAX_FETCH_TRADES, MAX_PAGE_ROWS, MAX_ROW_BYTES, Page};

/// The most memory one fetch of one venue holds (see the module docs): the body being read,
/// one page's rows and the window's trades kept so far.
pub const FETCH_MEMORY_BOUND: usize = 80 * 1024 * 1024;

/// The pure parsers of each venue, for fuzz targets, replay tools and tests: bytes of a 2xx
/// body in, a [`Page`] or a [`VenueError`] out; and the venue error of a non-2xx answer.
pub mod parsers {
    pub mod coinbase {
        pub use super::super::coinbase::{PAGE_LIMIT, PATH, parse_error, parse_trades};
    }
    pub mod kraken {
        pub use super::super::kraken::{PAGE_LIMIT, PAIR, PATH, parse_error, parse_trades};
    }
    pub mod bitstamp {
        pub use super::super::bitstamp::{PATH, SPAN_MARGIN, parse_error, parse_trades, time_param};
    }
    pub mod gemini {
        pub use super::super::gemini::{PAGE_LIMIT, PATH, parse_error, parse_trades};
    }
}

/// Query parameters of one request.
pub(crate) type Query = Vec<(&'static str, String)>;

/// A venue's parser of a whole answer (status, headers, body).
type ParseResponse = fn(&RawResponse) -> Result<Page, VenueError>;

/// The paging plan of one fetch, as a pure state machine: it says which request to send next
/// and learns from each parsed page. The adapter only carries requests out and pages in.
pub(crate) trait PageWalk: Send + fmt::Debug {
    /// The query of the next request, or `None` when the window is covered.
    fn next_query(&mut self) -> Option<Query>;
    /// Feeds the page answered to the last query.
    fn on_page(&mut self, page: &Page) -> Result<(), VenueError>;
}

/// Anything that yields a venue's trades for a window: the HTTP [`VenueAdapter`], or a fake in
/// the tests of the observation producer.
pub trait TradeSource: Send + Sync + fmt::Debug {
    /// The venue whose trades this yields.
    fn venue(&self) -> Venue;
    /// The trades with `start_ms <= time_ms <= end_ms`, without repeated ids, sorted by time.
    fn trades_between(&self, start_ms: u64, end_ms: u64) -> BoxFuture<'_, Result<Vec<Trade>, VenueError>>;
    /// How the venue has been answering.
    fn health(&self) -> VenueHealth;
}

/// The adapter of one venue. Cheap to clone: clones share the HTTP client, the pacing and the
/// health counters.
#[derive(Clone, Debug)]
pub struct VenueAdapter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    venue: Venue,
    max_pages: u32,
    client: client::HttpClient,
}

impl VenueAdapter {
    /// An adapter for `venue` with its settings. Fails only on a bad configuration.
    pub fn new(venue: Venue, config: &VenueConfig) -> Result<Self, VenueError> {
        let client = client::HttpClient::new(venue, config)?;
        Ok(VenueAdapter { inner: Arc::new(Inner { venue, max_pages: config.max_pages, client }) })
    }

    /// One adapter per enabled venue, in canonical venue order.
    pub fn all(config: &VenuesConfig) -> Result<Vec<Self>, VenueError> {
        Venue::ALL
            .into_iter()
            .filter(|v| config.get(*v).enabled)
            .map(|v| VenueAdapter::new(v, config.get(v)))
            .collect()
    }

    /// The venue.
    pub fn venue(&self) -> Venue {
        self.inner.venue
    }

    /// A snapshot of the venue's health counters.
    pub fn health(&self) -> VenueHealth {
        self.inner.client.health().lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The venue's trades with `start_ms <= time_ms <= end_ms` (unix ms), without repeated
    /// ids, sorted by time then id. Serves both the observation at `M + 2 min` and a dispute
    /// review hours later.
    pub async fn trades_between(&self, start_ms: u64, end_ms: u64) -> Result<Vec<Trade>, VenueError> {
        self.trades_between_at(unix_ms_now(), start_ms, end_ms).await
    }

    /// [`Self::trades_between`] as if asked at `now_ms` (used only to choose Bitstamp's span).
    pub async fn trades_between_at(
        &self,
        now_ms: u64,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<Trade>, VenueError> {
        let venue = self.venue();
        if start_ms > end_ms {
            return Err(VenueError::InvalidRange { venue, start_ms, end_ms });
        }
        let mut walk: Box<dyn PageWalk> = match venue {
            Venue::Coinbase => Box::new(coinbase::Walk::new(start_ms, end_ms)),
            Venue::Kraken => Box::new(kraken::Walk::new(start_ms, end_ms)),
            Venue::Bitstamp => Box::new(bitstamp::Walk::new(now_ms, start_ms)?),
            Venue::Gemini => Box::new(gemini::Walk::new(start_ms, end_ms)),
        };
        let (path, parse): (&str, ParseResponse) = match venue {
            Venue::Coinbase => (coinbase::PATH, coinbase::parse_response),
            Venue::Kraken => (kraken::PATH, kraken::parse_response),
            Venue::Bitstamp => (bitstamp::PATH, bitstamp::parse_response),
            Venue::Gemini => (gemini::PATH, gemini::parse_response),
        };
        let mut trades = Vec::new();
        let mut requests = 0u32;
        while let Some(query) = walk.next_query() {
            if requests >= self.inner.max_pages {
                return Err(VenueError::PageCap { venue, pages: requests, start_ms, end_ms });
            }
            requests += 1;
            let page = self.inner.client.get(path, &query, parse).await?;
            walk.on_page(&page)?;
            // Only the window's trades are kept past the page: a page is at most
            // MAX_PAGE_ROWS rows, and the fetch keeps at most MAX_FETCH_TRADES.
            let room = MAX_FETCH_TRADES + 1 - trades.len();
            trades.extend(
                page.trades.into_iter().filter(|t| (start_ms..=end_ms).contains(&t.time_ms)).take(room),
            );
            if trades.len() > MAX_FETCH_TRADES {
                return Err(VenueError::TooManyTrades { venue, limit: MAX_FETCH_TRADES, start_ms, end_ms });
            }
        }
        let trades = normalise(trades, start_ms, end_ms);
        tracing::debug!(%venue, start_ms, end_ms, requests, trades = trades.len(), "fetched venue trades");
        Ok(trades)
    }
}

impl TradeSource for VenueAdapter {
    fn venue(&self) -> Venue {
        VenueAdapter::venue(self)
    }

    fn trades_between(&self, start_ms: u64, end_ms: u64) -> BoxFuture<'_, Result<Vec<Trade>, VenueError>> {
        Box::pin(VenueAdapter::trades_between(self, start_ms, end_ms))
    }

    fn health(&self) -> VenueHealth {
        VenueAdapter::health(self)
    }
}

/// Keeps the trades inside `[start_ms, end_ms]`, the first of each id, sorted by time then id
/// (numeric ids compare as numbers).
pub fn normalise(trades: Vec<Trade>, start_ms: u64, end_ms: u64) -> Vec<Trade> {
    let mut seen = HashSet::new();
    let mut kept: Vec<Trade> = trades
        .into_iter()
        .filter(|t| (start_ms..=end_ms).contains(&t.time_ms))
        .filter(|t| seen.insert(t.id.clone()))
        .collect();
    kept.sort_by(|a, b| (a.time_ms, a.id.len(), &a.id).cmp(&(b.time_ms, b.id.len(), &b.id)));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixd_proto::value::Wad;

    fn trade(id: &str, time_ms: u64) -> Trade {
        Trade { venue: Venue::Gemini, id: id.into(), time_ms, price: Wad::ONE, size: Wad::ONE }
    }

    #[test]
    fn normalise_filters_dedups_and_sorts() {
        let trades =
            vec![trade("10", 5), trade("9", 5), trade("10", 5), trade("11", 4), trade("1", 3), trade("2", 7)];
        let ids: Vec<_> = normalise(trades, 4, 6).into_iter().map(|t| t.id).collect();
        assert_eq!(ids, ["11", "9", "10"]);
    }

    /// A body of `rows` minimal trades in each venue's shape.
    fn tiny_page(venue: Venue, rows: usize) -> Vec<u8> {
        let row = match venue {
            Venue::Coinbase => r#"{"time":"2025-06-12T15:59:59Z","trade_id":1,"price":"1","size":"1"}"#,
            Venue::Kraken => r#"["1","1",1,"b","l","",1]"#,
            Venue::Bitstamp => r#"{"date":1,"tid":1,"amount":"1","price":"1"}"#,
            Venue::Gemini => r#"{"timestampms":1,"tid":1,"price":"1","amount":"1"}"#,
        };
        let rows = vec![row; rows].join(",");
        match venue {
            Venue::Kraken => format!(r#"{{"error":[],"result":{{"XETHZUSD":[{rows}],"last":"1"}}}}"#),
            _ => format!("[{rows}]"),
        }
        .into_bytes()
    }

    fn parse_page(venue: Venue, body: &[u8]) -> Result<Page, VenueError> {
        match venue {
            Venue::Coinbase => parsers::coinbase::parse_trades(body),
            Venue::Kraken => parsers::kraken::parse_trades(body),
            Venue::Bitstamp => parsers::bitstamp::parse_trades(body),
            Venue::Gemini => parsers::gemini::parse_trades(body),
        }
    }

    #[test]
    fn a_page_past_the_row_cap_is_refused_while_it_is_read() {
        for venue in Venue::ALL {
            let full = parse_page(venue, &tiny_page(venue, MAX_PAGE_ROWS)).unwrap();
            assert_eq!(full.trades.len(), MAX_PAGE_ROWS, "{venue}");
            let err = parse_page(venue, &tiny_page(venue, MAX_PAGE_ROWS + 1)).unwrap_err();
            assert_eq!(err, parse::too_many_rows(venue), "{venue}");
            assert!(err.to_string().contains("more than 100000 trades"), "{err}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn a_row_longer_than_a_trade_is_refused_before_it_is_decoded() {
        let date = vec!["1"; 5_000].join(",");
        let huge = format!(r#"[{{"date":[{date}],"tid":1,"amount":"1","price":"1"}}]"#);
        for venue in [Venue::Coinbase, Venue::Bitstamp, Venue::Gemini] {
            let err = parse_page(venue, huge.as_bytes()).unwrap_err();
            let VenueError::Malformed { detail, .. } = err else { panic!("{err}") };
            assert!(detail.starts_with("trade 0: a row of 100"), "{venue}: {detail}");
        }
    }

    #[test]
    fn the_written_memory_bound_covers_its_parts() {
        // A trade's `Vec` slot, and its id's heap block (ids are at most 20 digits: one
        // 32-byte allocator chunk).
        let trade = std::mem::size_of::<Trade>() + 32;
        assert!(trade <= 112, "{trade}");
        // Vecs grow to the next power of two.
        let page = MAX_PAGE_ROWS.next_power_of_two() * std::mem::size_of::<Trade>() + MAX_PAGE_ROWS * 32;
        let window =
            MAX_FETCH_TRADES.next_power_of_two() * std::mem::size_of::<Trade>() + MAX_FETCH_TRADES * 32;
        let total = MAX_BODY_BYTES + page + window;
        assert!(total < FETCH_MEMORY_BOUND, "{total} bytes");
        assert!(FETCH_MEMORY_BOUND - total > 4 * 1024 * 1024, "leave the allocator some slack: {total}");
    }

    #[test]
    fn disabled_venues_get_no_adapter() {
        let mut config = VenuesConfig::default();
        config.kraken.enabled = false;
        let adapters = VenueAdapter::all(&config).unwrap();
        let names: Vec<_> = adapters.iter().map(VenueAdapter::venue).collect();
        assert_eq!(names, [Venue::Coinbase, Venue::Bitstamp, Venue::Gemini]);
        assert_eq!(adapters[0].health(), VenueHealth::new(Venue::Coinbase));
    }
}
