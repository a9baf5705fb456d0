//! Bitstamp, pair `ethusd`.
//!
//! `GET /api/v2/transactions/ethusd/?time=minute|hour|day` answers every trade of the last
//! minute, hour or day, newest first: `{"date":"1749743999","tid":"424159859","amount":
//! "0.50000000","type":"1","price":"2718.6"}` (`date` is unix seconds, `type` 0 = buy,
//! 1 = sell). There is no cursor and no sub-second time: `time_ms = date × 1000`. Errors:
//! `{"status":"error","reason":"...","code":"..."}`, with HTTP 200 or 4xx/5xx.
//!
//! The window rule ([`time_param`]): one request with the shortest span that reaches the
//! window start from now plus a one-minute margin for clock skew and latency (`hour`, else
//! `day`). A window that starts more than a day ago cannot be fetched from the public API and
//! fails with [`VenueError::WindowTooOld`].

use std::time::Duration;

use std::borrow::Cow;

use fixd_proto::types::venue::{Trade, Venue};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::client::RawResponse;
use super::parse::{self, Digits, ErrorFields, Field, Page, malformed, seconds_to_ms, snippet, wad};
use super::{PageWalk, Query, VenueError};

const VENUE: Venue = Venue::Bitstamp;

/// The trades path of `ethusd`.
pub const PATH: &str = "/api/v2/transactions/ethusd/";

/// Added to the window's age before choosing a span: clock skew and request latency.
pub const SPAN_MARGIN: Duration = Duration::from_secs(60);
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 86_400_000;

/// One trade as Bitstamp sends it; its decimals are borrowed from the body when they can be.
#[derive(Deserialize)]
struct Row<'a> {
    date: Digits,
    tid: Digits,
    #[serde(borrow)]
    amount: Cow<'a, str>,
    #[serde(borrow)]
    price: Cow<'a, str>,
}

/// Parses a 2xx trades body (newest first), streaming its rows ([`parse::parse_rows`]). There
/// is never a cursor.
pub fn parse_trades(body: &[u8]) -> Result<Page, VenueError> {
    let decode = |i: usize, raw: &RawValue| {
        let row: Row<'_> = parse::row(VENUE, i, raw)?;
        let time_ms =
            row.date.to_u64().and_then(seconds_to_ms).ok_or_else(|| {
                malformed(VENUE, format!("trade {i}: date {} is not unix seconds", row.date))
            })?;
        let id = row
            .tid
            .to_u64()
            .ok_or_else(|| malformed(VENUE, format!("trade {i}: tid {} is not an id", row.tid)))?;
        Ok(Trade {
            venue: VENUE,
            id: id.to_string(),
            time_ms,
            price: wad(VENUE, i, "price", &row.price)?,
            size: wad(VENUE, i, "amount", &row.amount)?,
        })
    };
    let trades = parse::parse_rows(VENUE, body, decode, |fields| match error_message(fields) {
        Some(message) => VenueError::Api { venue: VENUE, message },
        None => malformed(VENUE, format!("expected an array of trades: {}", snippet(body))),
    })?;
    Ok(Page { trades, cursor: None })
}

/// `reason` (a string, or an object of string lists) and `code` of an error body.
fn error_message(fields: &ErrorFields) -> Option<String> {
    if fields.str("status") != Some("error") {
        return None;
    }
    let reason = match fields.get("reason") {
        Some(Field::Text(s)) => s.clone(),
        Some(list @ Field::List(_)) => list.flatten().join("; "),
        _ => "no reason given".to_owned(),
    };
    Some(match fields.str("code") {
        Some(code) => format!("{reason} (code {code})"),
        None => reason,
    })
}

/// The error of a non-2xx answer: the venue's reason and code when the body has them.
pub fn parse_error(status: u16, body: &[u8]) -> VenueError {
    let message = ErrorFields::parse(body).and_then(|fields| error_message(&fields));
    VenueError::Http { venue: VENUE, status, message: message.unwrap_or_else(|| snippet(body)) }
}

pub(crate) fn parse_response(response: &RawResponse) -> Result<Page, VenueError> {
    if !response.is_success() {
        return Err(parse_error(response.status, &response.body));
    }
    parse_trades(&response.body)
}

/// The `time=` span that covers a window starting at `start_ms`, asked at `now_ms`.
pub fn time_param(now_ms: u64, start_ms: u64) -> Result<&'static str, VenueError> {
    let age_ms = now_ms.saturating_sub(start_ms);
    let reach_ms = age_ms.saturating_add(u64::try_from(SPAN_MARGIN.as_millis()).unwrap_or(u64::MAX));
    if reach_ms <= HOUR_MS {
        Ok("hour")
    } else if reach_ms <= DAY_MS {
        Ok("day")
    } else {
        Err(VenueError::WindowTooOld {
            venue: VENUE,
            age: Duration::from_secs(age_ms / 1_000),
            limit: Duration::from_millis(DAY_MS) - SPAN_MARGIN,
        })
    }
}

/// The plan of one Bitstamp fetch: a single request.
#[derive(Debug)]
pub(crate) struct Walk {
    span: Option<&'static str>,
}

impl Walk {
    pub(crate) fn new(now_ms: u64, start_ms: u64) -> Result<Self, VenueError> {
        Ok(Walk { span: Some(time_param(now_ms, start_ms)?) })
    }
}

impl PageWalk for Walk {
    fn next_query(&mut self) -> Option<Query> {
        self.span.map(|span| vec![("time", span.to_owned())])
    }

    fn on_page(&mut self, _page: &Page) -> Result<(), VenueError> {
        self.span = None;
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
        parse_trades(&fixture("bitstamp", name))
    }

    fn detail(err: VenueError) -> String {
        malformed_detail(Venue::Bitstamp, err)
    }

    #[test]
    fn normal_page_parses_exactly() {
        let page = read("normal.json").unwrap();
        assert_eq!(page.cursor, None);
        assert_eq!(page.trades.len(), 10);
        let newest = &page.trades[0];
        assert_eq!(
            (newest.venue, newest.id.as_str(), newest.time_ms),
            (Venue::Bitstamp, "424159859", 1_749_743_999_000)
        );
        assert_eq!(newest.price.raw(), 2_718_600_000_000_000_000_000);
        assert_eq!(newest.size, Wad::parse("0.5").unwrap());
        let oldest = &page.trades[9];
        assert_eq!((oldest.id.as_str(), oldest.time_ms), ("424159850", 1_749_743_702_000));
        assert_eq!(oldest.size.raw(), 125_000_000_000_000_000);
    }

    #[test]
    fn integer_ids_and_dates_are_accepted_too() {
        let page =
            parse_trades(br#"[{"date":1749743999,"tid":424159859,"amount":"1","type":0,"price":"2718.6"}]"#);
        assert_eq!(page.unwrap().trades[0].time_ms, 1_749_743_999_000);
    }

    #[test]
    fn empty_page() {
        assert_eq!(read("empty.json").unwrap(), Page::default());
    }

    #[test]
    fn error_shapes_keep_reason_and_code() {
        let message = "Invalid currency pair. (code API0005)".to_owned();
        assert_eq!(read("error.json"), Err(VenueError::Api { venue: VENUE, message: message.clone() }));
        assert_eq!(
            parse_error(404, &fixture("bitstamp", "error.json")),
            VenueError::Http { venue: VENUE, status: 404, message }
        );
        let nested = br#"{"status":"error","reason":{"__all__":["Rate limit exceeded"]}}"#;
        assert_eq!(
            parse_error(429, nested),
            VenueError::Http { venue: VENUE, status: 429, message: "Rate limit exceeded".into() }
        );
        let html = parse_error(404, &fixture("bitstamp", "malformed_html.json"));
        assert!(html.to_string().starts_with("bitstamp: HTTP 404: <!DOCTYPE html> <html><head>"), "{html}");
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert!(detail(read("malformed_truncated.json").unwrap_err()).starts_with("truncated JSON"));
        let types = detail(read("malformed_types.json").unwrap_err());
        assert!(
            types.starts_with("trade 1: invalid type: floating point `1.0`, expected a string"),
            "{types}"
        );
        let decimal = detail(read("malformed_decimal.json").unwrap_err());
        assert!(decimal.starts_with("trade 0: price: negative value \"-2718.6\""), "{decimal}");
        let time = detail(read("malformed_time.json").unwrap_err());
        assert_eq!(time, "trade 0: date \"2025-06-12 15:59:59\" is not unix seconds");
        assert_eq!(detail(read("malformed_missing.json").unwrap_err()), "trade 0: missing field `tid`");
        assert!(detail(read("malformed_html.json").unwrap_err()).starts_with("an HTML page, not JSON"));
        assert!(detail(parse_trades(br#"{"status":"ok"}"#).unwrap_err()).starts_with("expected an array"));
    }

    #[test]
    fn window_rule_picks_the_shortest_span_that_reaches_the_start() {
        let now = 1_749_744_120_000; // M + 2 min, M = 16:00:00
        assert_eq!(time_param(now, now - 10 * 60_000), Ok("hour"));
        assert_eq!(time_param(now, now - 59 * 60_000), Ok("hour"));
        assert_eq!(time_param(now, now - 59 * 60_000 - 1), Ok("day"));
        assert_eq!(time_param(now, now - 62 * 60_000), Ok("day"));
        assert_eq!(time_param(now, now + 60_000), Ok("hour"));
        assert_eq!(time_param(now, now - 23 * 3_600_000 - 59 * 60_000), Ok("day"));
        let err = time_param(now, now - 2 * DAY_MS).unwrap_err();
        assert_eq!(
            err,
            VenueError::WindowTooOld {
                venue: VENUE,
                age: Duration::from_secs(2 * 86_400),
                limit: Duration::from_secs(86_340)
            }
        );
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("the window starts 2days ago"), "{err}");
    }

    #[test]
    fn walk_is_one_request() {
        let now = 1_749_744_120_000;
        let mut walk = Walk::new(now, now - 62 * 60_000).unwrap();
        assert_eq!(walk.next_query(), Some(vec![("time", "day".to_owned())]));
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
            let mut body = fixture("bitstamp", "normal.json");
            let at = at % body.len();
            body[at] = byte;
            let _ = parse_trades(&body);
            body.truncate(at);
            let _ = parse_trades(&body);
        }
    }
}
