//! Gemini, symbol `ethusd`.
//!
//! `GET /v1/trades/ethusd?timestamp=<ms>&limit_trades=500` answers the (at most 500) earliest
//! trades at or after `timestamp`, newest first: `{"timestamp":1749743999,"timestampms":
//! 1749743999827,"tid":2843018210,"price":"2718.60","amount":"0.5","exchange":"gemini",
//! "type":"sell"}`. Errors: `{"result":"error","reason":"InvalidSymbol","message":"..."}`.
//!
//! A fetch walks forward: the next `timestamp` is the newest `timestampms` of the page (not one
//! past it, so that trades sharing that ms across a page boundary are not lost; duplicates are
//! dropped by id). A page whose trades all share the asked ms moves on by one ms.

use std::borrow::Cow;

use fixd_proto::types::venue::{Trade, Venue};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::client::RawResponse;
use super::parse::{self, ErrorFields, Page, malformed, snippet, wad};
use super::{PageWalk, Query, VenueError};

const VENUE: Venue = Venue::Gemini;

/// The trades path of `ethusd`.
pub const PATH: &str = "/v1/trades/ethusd";
/// Trades per page: the endpoint's maximum.
pub const PAGE_LIMIT: u64 = 500;

/// `reason`s that mean "busy, ask again later".
const BUSY_REASONS: [&str; 4] = ["RateLimited", "RateLimit", "Maintenance", "System"];

/// One trade as Gemini sends it; its strings are borrowed from the body when they can be.
#[derive(Deserialize)]
struct Row<'a> {
    timestampms: u64,
    tid: u64,
    #[serde(borrow)]
    price: Cow<'a, str>,
    #[serde(borrow)]
    amount: Cow<'a, str>,
}

/// Parses a 2xx trades body (newest first), streaming its rows ([`parse::parse_rows`]). There
/// is no cursor: the walk pages by time.
pub fn parse_trades(body: &[u8]) -> Result<Page, VenueError> {
    let decode = |i: usize, raw: &RawValue| {
        let row: Row<'_> = parse::row(VENUE, i, raw)?;
        Ok(Trade {
            venue: VENUE,
            id: row.tid.to_string(),
            time_ms: row.timestampms,
            price: wad(VENUE, i, "price", &row.price)?,
            size: wad(VENUE, i, "amount", &row.amount)?,
        })
    };
    let trades = parse::parse_rows(VENUE, body, decode, |fields| match error_parts(fields) {
        Some((reason, message)) if BUSY_REASONS.contains(&reason.as_str()) => {
            VenueError::Busy { venue: VENUE, message }
        }
        Some((_, message)) => VenueError::Api { venue: VENUE, message },
        None => malformed(VENUE, format!("expected an array of trades: {}", snippet(body))),
    })?;
    Ok(Page { trades, cursor: None })
}

/// `(reason, "reason: message")` of an error body.
fn error_parts(fields: &ErrorFields) -> Option<(String, String)> {
    if fields.str("result") != Some("error") {
        return None;
    }
    let reason = fields.str("reason").unwrap_or("Error").to_owned();
    let message = match fields.str("message") {
        Some(message) => format!("{reason}: {message}"),
        None => reason.clone(),
    };
    Some((reason, message))
}

/// The error of a non-2xx answer: the venue's reason and message when the body has them.
pub fn parse_error(status: u16, body: &[u8]) -> VenueError {
    let message = ErrorFields::parse(body).and_then(|fields| error_parts(&fields)).map(|(_, m)| m);
    VenueError::Http { venue: VENUE, status, message: message.unwrap_or_else(|| snippet(body)) }
}

pub(crate) fn parse_response(response: &RawResponse) -> Result<Page, VenueError> {
    if !response.is_success() {
        return Err(parse_error(response.status, &response.body));
    }
    parse_trades(&response.body)
}

/// The paging plan of one Gemini fetch: forward from the window start with `timestamp`.
#[derive(Debug)]
pub(crate) struct Walk {
    end_ms: u64,
    timestamp_ms: u64,
    done: bool,
}

impl Walk {
    pub(crate) fn new(start_ms: u64, end_ms: u64) -> Self {
        Walk { end_ms, timestamp_ms: start_ms, done: false }
    }
}

impl PageWalk for Walk {
    fn next_query(&mut self) -> Option<Query> {
        (!self.done).then(|| {
            vec![("timestamp", self.timestamp_ms.to_string()), ("limit_trades", PAGE_LIMIT.to_string())]
        })
    }

    fn on_page(&mut self, page: &Page) -> Result<(), VenueError> {
        match page.trades.iter().map(|t| t.time_ms).max() {
            None => self.done = true,
            Some(newest) if newest > self.end_ms => self.done = true,
            Some(newest) if newest > self.timestamp_ms => self.timestamp_ms = newest,
            Some(_) => {
                if page.trades.len() as u64 >= PAGE_LIMIT {
                    tracing::warn!(
                        venue = %VENUE, ms = self.timestamp_ms,
                        "a full page of trades in one ms; trades past the page in that ms are skipped"
                    );
                }
                self.timestamp_ms += 1;
            }
        }
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
        parse_trades(&fixture("gemini", name))
    }

    fn detail(err: VenueError) -> String {
        malformed_detail(Venue::Gemini, err)
    }

    #[test]
    fn normal_page_parses_exactly() {
        let page = read("normal.json").unwrap();
        assert_eq!(page.trades.len(), 10);
        let newest = &page.trades[0];
        assert_eq!((newest.venue, newest.id.as_str()), (Venue::Gemini, "2843018210"));
        assert_eq!(newest.time_ms, 1_749_743_999_827);
        assert_eq!(newest.price.raw(), 2_718_600_000_000_000_000_000);
        assert_eq!(newest.size, Wad::parse("0.5").unwrap());
        assert_eq!(page.trades[8].size.raw(), 1_040_000_000_000_000_000);
        assert_eq!(page.trades[9].time_ms, 1_749_743_702_084);
    }

    #[test]
    fn empty_page() {
        assert_eq!(read("empty.json").unwrap(), Page::default());
    }

    #[test]
    fn error_shapes_keep_reason_and_message() {
        let message = "InvalidSymbol: Supplied value 'ethusdx' is not a valid symbol".to_owned();
        assert_eq!(read("error.json"), Err(VenueError::Api { venue: VENUE, message: message.clone() }));
        assert_eq!(
            parse_error(400, &fixture("gemini", "error.json")),
            VenueError::Http { venue: VENUE, status: 400, message }
        );
        let limited = read("error_rate_limit.json").unwrap_err();
        assert!(matches!(&limited, VenueError::Busy { message, .. } if message.starts_with("RateLimited: ")));
        assert!(parse_error(429, &fixture("gemini", "error_rate_limit.json")).is_retryable());
        let html = parse_error(503, &fixture("gemini", "malformed_html.json"));
        assert!(html.to_string().starts_with("gemini: HTTP 503: <html><head><title>Gemini"), "{html}");
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert!(detail(read("malformed_truncated.json").unwrap_err()).starts_with("truncated JSON"));
        let types = detail(read("malformed_types.json").unwrap_err());
        assert!(
            types.starts_with("trade 0: invalid type: string \"1749743999827\", expected u64"),
            "{types}"
        );
        let decimal = detail(read("malformed_decimal.json").unwrap_err());
        assert!(decimal.starts_with("trade 0: amount: \"5E-1\" is not a plain decimal"), "{decimal}");
        assert_eq!(
            detail(read("malformed_missing.json").unwrap_err()),
            "trade 0: missing field `timestampms`"
        );
        assert!(detail(read("malformed_html.json").unwrap_err()).starts_with("an HTML page, not JSON"));
        assert!(detail(parse_trades(b"{\"result\":\"ok\"}").unwrap_err()).starts_with("expected an array"));
        assert!(detail(parse_trades(b"null").unwrap_err()).starts_with("expected an array"));
    }

    #[test]
    fn walk_goes_forward_by_the_newest_ms() {
        let mut walk = Walk::new(1_749_743_700_000, 1_749_743_999_999);
        assert_eq!(
            walk.next_query().unwrap(),
            vec![("timestamp", "1749743700000".to_owned()), ("limit_trades", "500".to_owned())]
        );
        walk.on_page(&read("page1.json").unwrap()).unwrap();
        assert_eq!(walk.next_query().unwrap()[0], ("timestamp", "1749743820000".to_owned()));
        walk.on_page(&read("page2.json").unwrap()).unwrap();
        assert_eq!(walk.next_query().unwrap()[0], ("timestamp", "1749743999827".to_owned()));
        // Only the trade at the asked ms again: move on by one ms.
        let last = Page { trades: read("page2.json").unwrap().trades[..1].to_vec(), cursor: None };
        walk.on_page(&last).unwrap();
        assert_eq!(walk.next_query().unwrap()[0], ("timestamp", "1749743999828".to_owned()));
        walk.on_page(&read("empty.json").unwrap()).unwrap();
        assert_eq!(walk.next_query(), None);
        // A page past the window end ends the walk.
        let mut walk = Walk::new(1_749_743_700_000, 1_749_743_900_000);
        walk.on_page(&read("normal.json").unwrap()).unwrap();
        assert_eq!(walk.next_query(), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_trades(&body);
            let _ = parse_error(500, &body);
        }

        #[test]
        fn mutated_pages_never_panic(at in 0usize..2000, byte in any::<u8>()) {
            let mut body = fixture("gemini", "normal.json");
            let at = at % body.len();
            body[at] = byte;
            let _ = parse_trades(&body);
            body.truncate(at);
            let _ = parse_trades(&body);
        }
    }
}
