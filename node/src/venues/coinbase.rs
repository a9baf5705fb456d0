//! Coinbase Exchange, product `ETH-USD`.
//!
//! `GET /products/ETH-USD/trades?limit=1000[&after=<trade_id>]` answers a JSON array, newest
//! first: `{"time":"2025-06-12T15:59:59.827736Z","trade_id":652118410,"price":"2718.60",
//! "size":"0.50000000","side":"sell"}`. The `CB-AFTER` header holds the oldest trade id of the
//! page, and `after=<id>` returns the trades older than `id`. Errors are non-2xx answers with
//! `{"message":"..."}`.
//!
//! Trade ids grow with time, so a fetch walks back from the newest page with `after` until it
//! passes the window start. When even the newest page is after the window end (a dispute
//! review hours later), it first seeks the id at the window end with one-trade probes
//! (`limit=1&after=<id>`): galloping back from the newest id, then bisecting, ~2·log2(distance)
//! probes instead of walking every page in between.

use std::borrow::Cow;

use fixd_proto::types::venue::{Trade, Venue};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::client::RawResponse;
use super::parse::{self, ErrorFields, Page, malformed, rfc3339_to_ms, snippet, wad};
use super::{PageWalk, Query, VenueError};

const VENUE: Venue = Venue::Coinbase;

/// The trades path of `ETH-USD`.
pub const PATH: &str = "/products/ETH-USD/trades";
/// Trades per page: the endpoint's maximum.
pub const PAGE_LIMIT: u64 = 1_000;

/// One trade as Coinbase sends it; its strings are borrowed from the body when they can be.
#[derive(Deserialize)]
struct Row<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    trade_id: u64,
    #[serde(borrow)]
    price: Cow<'a, str>,
    #[serde(borrow)]
    size: Cow<'a, str>,
}

/// Parses a 2xx trades body, streaming its rows ([`parse::parse_rows`]). The cursor is the
/// oldest trade id of the page (what `CB-AFTER` holds), or `None` for an empty page.
pub fn parse_trades(body: &[u8]) -> Result<Page, VenueError> {
    let mut oldest_id: Option<u64> = None;
    let decode = |i: usize, raw: &RawValue| {
        let row: Row<'_> = parse::row(VENUE, i, raw)?;
        let time_ms = rfc3339_to_ms(&row.time).ok_or_else(|| {
            malformed(VENUE, format!("trade {i}: time {:?} is not an RFC 3339 UTC time", row.time))
        })?;
        let trade = Trade {
            venue: VENUE,
            id: row.trade_id.to_string(),
            time_ms,
            price: wad(VENUE, i, "price", &row.price)?,
            size: wad(VENUE, i, "size", &row.size)?,
        };
        oldest_id = Some(oldest_id.map_or(row.trade_id, |o| o.min(row.trade_id)));
        Ok(trade)
    };
    let trades = parse::parse_rows(VENUE, body, decode, |fields| {
        api_error(fields).unwrap_or_else(|| shape_error(body))
    })?;
    Ok(Page { trades, cursor: oldest_id })
}

/// The error of a non-2xx answer: the venue's `message` when the body has it.
pub fn parse_error(status: u16, body: &[u8]) -> VenueError {
    let message = ErrorFields::parse(body)
        .and_then(|fields| fields.str("message").map(str::to_owned))
        .unwrap_or_else(|| snippet(body));
    VenueError::Http { venue: VENUE, status, message }
}

/// A whole answer: the error for a non-2xx status, else the trades with the `CB-AFTER`
/// header as the cursor when it is present.
pub(crate) fn parse_response(response: &RawResponse) -> Result<Page, VenueError> {
    if !response.is_success() {
        return Err(parse_error(response.status, &response.body));
    }
    let mut page = parse_trades(&response.body)?;
    if let Some(after) = response.headers.get("cb-after") {
        let after = after.to_str().ok().and_then(|s| s.parse::<u64>().ok());
        match after {
            Some(after) if !page.trades.is_empty() => page.cursor = Some(after),
            Some(_) => {}
            None => return Err(malformed(VENUE, "CB-AFTER header is not a trade id")),
        }
    }
    Ok(page)
}

fn api_error(fields: &ErrorFields) -> Option<VenueError> {
    let message = fields.str("message")?;
    Some(VenueError::Api { venue: VENUE, message: message.to_owned() })
}

fn shape_error(body: &[u8]) -> VenueError {
    malformed(VENUE, format!("expected an array of trades: {}", snippet(body)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Asking for the newest page.
    First,
    /// Seeking the window end: every trade with id ≥ `hi - 1` is after it.
    Gallop {
        hi: u64,
        step: u64,
    },
    /// Seeking the window end: the trade just below `lo` is at or before it, and every trade
    /// with id ≥ `hi - 1` is after it.
    Bisect {
        lo: u64,
        hi: u64,
    },
    /// Walking back: the next page is the trades older than `after`.
    Back {
        after: u64,
    },
    Done,
}

/// The paging plan of one Coinbase fetch (pure: pages in, next query out).
#[derive(Debug)]
pub(crate) struct Walk {
    start_ms: u64,
    end_ms: u64,
    state: State,
    probe: u64,
}

impl Walk {
    pub(crate) fn new(start_ms: u64, end_ms: u64) -> Self {
        Walk { start_ms, end_ms, state: State::First, probe: 0 }
    }

    fn probe_query(&mut self, after: u64) -> Query {
        self.probe = after;
        vec![("limit", "1".to_owned()), ("after", after.to_string())]
    }
}

impl PageWalk for Walk {
    fn next_query(&mut self) -> Option<Query> {
        loop {
            match self.state {
                State::First => return Some(vec![("limit", PAGE_LIMIT.to_string())]),
                State::Gallop { hi, step } => {
                    if hi <= step {
                        self.state = State::Bisect { lo: 0, hi };
                        continue;
                    }
                    return Some(self.probe_query(hi - step));
                }
                State::Bisect { lo, hi } => {
                    if hi - lo <= PAGE_LIMIT {
                        self.state = State::Back { after: hi };
                        continue;
                    }
                    return Some(self.probe_query(lo + (hi - lo) / 2));
                }
                State::Back { after } => {
                    return Some(vec![("limit", PAGE_LIMIT.to_string()), ("after", after.to_string())]);
                }
                State::Done => return None,
            }
        }
    }

    fn on_page(&mut self, page: &Page) -> Result<(), VenueError> {
        let newest_ms = page.trades.iter().map(|t| t.time_ms).max();
        let oldest_ms = page.trades.iter().map(|t| t.time_ms).min();
        let after_end = newest_ms.is_some_and(|t| t > self.end_ms);
        self.state = match self.state {
            State::First | State::Back { .. } => {
                let (Some(oldest_ms), Some(cursor)) = (oldest_ms, page.cursor) else {
                    self.state = State::Done;
                    return Ok(());
                };
                if let State::Back { after } = self.state
                    && cursor >= after
                {
                    return Err(malformed(
                        VENUE,
                        format!("paging did not move back: after={after} answered cursor {cursor}"),
                    ));
                }
                if oldest_ms < self.start_ms {
                    State::Done
                } else if self.state == State::First && oldest_ms > self.end_ms {
                    // The whole newest page is after the window: seek back to its end.
                    State::Gallop { hi: cursor.saturating_add(1), step: PAGE_LIMIT }
                } else {
                    State::Back { after: cursor }
                }
            }
            State::Gallop { step, .. } if after_end => State::Gallop { hi: self.probe, step: step * 2 },
            State::Gallop { hi, .. } => State::Bisect { lo: self.probe, hi },
            State::Bisect { lo, .. } if after_end => State::Bisect { lo, hi: self.probe },
            State::Bisect { hi, .. } => State::Bisect { lo: self.probe, hi },
            State::Done => State::Done,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venues::testdata::{fixture, malformed_detail};
    use fixd_proto::value::Wad;
    use proptest::prelude::*;

    fn read(name: &str) -> Result<Page, VenueError> {
        parse_trades(&fixture("coinbase", name))
    }

    fn detail(err: VenueError) -> String {
        malformed_detail(Venue::Coinbase, err)
    }

    #[test]
    fn normal_page_parses_exactly() {
        let page = read("normal.json").unwrap();
        assert_eq!(page.trades.len(), 10);
        assert_eq!(page.cursor, Some(652_118_401));
        let newest = &page.trades[0];
        assert_eq!(newest.venue, Venue::Coinbase);
        assert_eq!(newest.id, "652118410");
        assert_eq!(newest.time_ms, 1_749_743_999_827);
        assert_eq!(newest.price.raw(), 2_718_600_000_000_000_000_000);
        assert_eq!(newest.size, Wad::parse("0.5").unwrap());
        let on_the_minute = &page.trades[5];
        assert_eq!((on_the_minute.id.as_str(), on_the_minute.time_ms), ("652118405", 1_749_743_820_000));
        assert_eq!(page.trades[9].price.raw(), 2_719_470_000_000_000_000_000);
        assert_eq!(page.trades[9].size.raw(), 125_000_000_000_000_000);
    }

    #[test]
    fn empty_page_has_no_cursor() {
        assert_eq!(read("empty.json").unwrap(), Page::default());
    }

    #[test]
    fn pages_chain_through_the_cursor() {
        let p1 = read("page1.json").unwrap();
        let p2 = read("page2.json").unwrap();
        assert_eq!(p1.cursor, Some(652_118_406));
        assert_eq!(p2.trades[0].id, "652118405");
        assert_eq!(p2.cursor, Some(652_118_401));
    }

    #[test]
    fn error_shapes_keep_the_venue_message() {
        let body = fixture("coinbase", "error.json");
        assert_eq!(
            parse_error(404, &body),
            VenueError::Http { venue: VENUE, status: 404, message: "NotFound".into() }
        );
        assert_eq!(parse_trades(&body), Err(VenueError::Api { venue: VENUE, message: "NotFound".into() }));
        let limited = parse_error(429, &fixture("coinbase", "error_rate_limit.json"));
        assert!(limited.is_retryable());
        assert_eq!(limited.to_string(), "coinbase: HTTP 429: Public rate limit exceeded");
        let html = parse_error(502, &fixture("coinbase", "malformed_html.json"));
        let VenueError::Http { status: 502, message, .. } = html else { panic!("{html:?}") };
        assert!(message.starts_with("<!DOCTYPE html> <html lang=\"en-US\"> <head><title>"), "{message}");
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert!(detail(read("malformed_truncated.json").unwrap_err()).starts_with("truncated JSON"));
        let types = detail(read("malformed_types.json").unwrap_err());
        assert_eq!(types, "trade 1: invalid type: floating point `2718.11`, expected a string");
        let decimal = detail(read("malformed_decimal.json").unwrap_err());
        assert!(decimal.starts_with("trade 1: price: \"2.71811e3\" is not a plain decimal"), "{decimal}");
        let negative = detail(read("malformed_negative.json").unwrap_err());
        assert!(negative.starts_with("trade 0: size: negative value"), "{negative}");
        assert_eq!(detail(read("malformed_missing.json").unwrap_err()), "trade 0: missing field `price`");
        let time = detail(read("malformed_time.json").unwrap_err());
        assert_eq!(time, "trade 0: time \"2025-06-12 15:59:59\" is not an RFC 3339 UTC time");
        assert!(
            detail(read("malformed_html.json").unwrap_err()).starts_with("an HTML page, not JSON: <!DOCTYPE")
        );
        assert!(detail(parse_trades(b"{\"trades\":[]}").unwrap_err()).starts_with("expected an array"));
        assert!(detail(parse_trades(b"").unwrap_err()).starts_with("empty body"));
    }

    #[test]
    fn cb_after_header_is_the_cursor() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("cb-after", "652118000".parse().unwrap());
        let response = RawResponse { status: 200, headers, body: fixture("coinbase", "page1.json") };
        assert_eq!(parse_response(&response).unwrap().cursor, Some(652_118_000));
        let mut bad = response.clone();
        bad.headers.insert("cb-after", "abc".parse().unwrap());
        assert!(matches!(parse_response(&bad), Err(VenueError::Malformed { .. })));
        let error = RawResponse {
            status: 404,
            headers: Default::default(),
            body: b"{\"message\":\"NotFound\"}".into(),
        };
        assert!(matches!(parse_response(&error), Err(VenueError::Http { status: 404, .. })));
    }

    fn q(query: &Query) -> Vec<(&str, &str)> {
        query.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    #[test]
    fn walk_goes_back_until_it_passes_the_start() {
        // Window 15:57:00.000 to 15:59:59.999: page1 ends at 15:58:01, page2 passes the start.
        let mut walk = Walk::new(1_749_743_820_000, 1_749_743_999_999);
        assert_eq!(q(&walk.next_query().unwrap()), [("limit", "1000")]);
        walk.on_page(&read("page1.json").unwrap()).unwrap();
        assert_eq!(q(&walk.next_query().unwrap()), [("limit", "1000"), ("after", "652118406")]);
        walk.on_page(&read("page2.json").unwrap()).unwrap();
        assert_eq!(walk.next_query(), None);
    }

    #[test]
    fn walk_stops_on_an_empty_page_and_rejects_a_stuck_cursor() {
        let mut walk = Walk::new(0, u64::MAX);
        walk.next_query();
        walk.on_page(&read("page1.json").unwrap()).unwrap();
        walk.next_query();
        let err = walk.on_page(&read("page1.json").unwrap()).unwrap_err();
        assert!(detail(err).contains("did not move back"));
        let mut walk = Walk::new(0, u64::MAX);
        walk.next_query();
        walk.on_page(&read("empty.json").unwrap()).unwrap();
        assert_eq!(walk.next_query(), None);
    }

    /// A synthetic tape: trade `id` (1-based) at `id × 100` ms.
    fn answer(query: &Query, last_id: u64) -> Page {
        let limit: u64 = query.iter().find(|(k, _)| *k == "limit").unwrap().1.parse().unwrap();
        let below =
            query.iter().find(|(k, _)| *k == "after").map_or(last_id + 1, |(_, v)| v.parse().unwrap());
        let top = below.min(last_id + 1);
        let ids: Vec<u64> = (top.saturating_sub(limit).max(1)..top).rev().collect();
        let trades: Vec<Trade> = ids
            .iter()
            .map(|&id| Trade {
                venue: VENUE,
                id: id.to_string(),
                time_ms: id * 100,
                price: Wad::ONE,
                size: Wad::ONE,
            })
            .collect();
        Page { cursor: ids.last().copied(), trades }
    }

    #[test]
    fn walk_seeks_an_old_window_in_few_requests() {
        let last_id = 5_000_000;
        // Trades 1_000_000..=1_002_000 are in the window.
        let (start, end) = (100_000_000, 100_200_000);
        let mut walk = Walk::new(start, end);
        let (mut requests, mut seen) = (0, std::collections::BTreeSet::new());
        while let Some(query) = walk.next_query() {
            requests += 1;
            assert!(requests < 80, "too many requests");
            let page = answer(&query, last_id);
            seen.extend(
                page.trades.iter().filter(|t| (start..=end).contains(&t.time_ms)).map(|t| t.time_ms / 100),
            );
            walk.on_page(&page).unwrap();
        }
        assert_eq!(seen.len(), 2_001);
        assert_eq!((seen.first(), seen.last()), (Some(&1_000_000), Some(&1_002_000)));
        assert!(requests <= 50, "{requests} requests");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_trades(&body);
            let _ = parse_error(500, &body);
        }

        #[test]
        fn mutated_pages_never_panic(cut in 0usize..1200, byte in any::<u8>()) {
            let mut body = fixture("coinbase", "normal.json");
            let at = cut % body.len();
            body[at] = byte;
            let _ = parse_trades(&body);
            body.truncate(at);
            prop_assert!(parse_trades(&body).is_err() || at == 0 || body.ends_with(b"]"));
        }

        #[test]
        fn seek_finds_any_window(start_id in 1u64..3_000_000, len in 0u64..3_000) {
            let last_id = 3_000_000;
            let (start, end) = (start_id * 100, (start_id + len).min(last_id) * 100);
            let mut walk = Walk::new(start, end);
            let (mut requests, mut seen) = (0, std::collections::BTreeSet::new());
            while let Some(query) = walk.next_query() {
                requests += 1;
                prop_assert!(requests < 120);
                let page = answer(&query, last_id);
                seen.extend(page.trades.iter().filter(|t| (start..=end).contains(&t.time_ms)).map(|t| t.time_ms));
                walk.on_page(&page).unwrap();
            }
            prop_assert_eq!(seen.len() as u64, (end - start) / 100 + 1);
        }
    }
}
