//! Kraken, pair `XETHZUSD` (ETH/USD).
//!
//! `GET /0/public/Trades?pair=XETHZUSD&since=<ns>&count=1000` answers, oldest first,
//! `{"error":[],"result":{"XETHZUSD":[["2718.60000","0.50000000",1749743999.8277369,"s","l","",
//! 86412310], ...],"last":"1749743999827736900"}}`: price, volume, time, side, order type, misc,
//! trade id. `last` (ns) is the `since` of the next page. Errors come with HTTP 200 and a
//! non-empty `error` array: `{"error":["EQuery:Unknown asset pair"]}`.
//!
//! The time is a JSON float of seconds with up to 7 decimals (17 significant digits), more than
//! an `f64` holds, so it is read from the JSON text itself: [`mark_fractional_numbers`] wraps
//! every non-integer number token in a marker object before `serde_json` sees it, and the
//! decimal text is converted to ms with integer maths.

use fixd_proto::types::venue::{Trade, Venue};
use serde_json::Value;

use super::client::RawResponse;
use super::parse::{Page, decimal_seconds_to_ms, json_error, malformed, seconds_to_ms, snippet, wad};
use super::{PageWalk, Query, VenueError};

const VENUE: Venue = Venue::Kraken;

/// The trades path.
pub const PATH: &str = "/0/public/Trades";
/// The pair asked for; the answer is keyed by it.
pub const PAIR: &str = "XETHZUSD";
/// Trades per page: the endpoint's maximum.
pub const PAGE_LIMIT: u64 = 1_000;

/// The key of the marker object that carries a non-integer number's exact text.
const NUMBER_MARK: &str = "$fixd:number";

/// Error prefixes that mean "busy, ask again later" rather than "wrong request".
const BUSY_ERRORS: [&str; 4] =
    ["EService:", "EGeneral:Too many requests", "EAPI:Rate limit", "EGeneral:Temporary"];

/// Parses a 2xx trades body: the trades, oldest first, and `last` as the cursor. A non-empty
/// `error` array is [`VenueError::Busy`] for rate limits and outages, [`VenueError::Api`]
/// otherwise.
pub fn parse_trades(body: &[u8]) -> Result<Page, VenueError> {
    let marked = mark_fractional_numbers(body);
    let value: Value = serde_json::from_slice(&marked).map_err(|e| json_error(VENUE, body, &e))?;
    let Value::Object(top) = value else {
        return Err(malformed(VENUE, format!("expected an object with error and result: {}", snippet(body))));
    };
    if let Some(error) = api_error(&top)? {
        return Err(error);
    }
    let Some(Value::Object(result)) = top.get("result") else {
        return Err(malformed(VENUE, "no \"result\" object"));
    };
    let cursor = match result.get("last") {
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    let Some(cursor) = cursor else {
        return Err(malformed(VENUE, "result.last is missing or not a ns timestamp"));
    };
    let mut pairs = result.iter().filter(|(key, _)| *key != "last");
    let (Some((_, Value::Array(rows))), None) = (pairs.next(), pairs.next()) else {
        return Err(malformed(VENUE, "result must hold exactly one pair's array of trades besides \"last\""));
    };
    let trades = rows.iter().enumerate().map(|(i, row)| parse_row(i, row)).collect::<Result<_, _>>()?;
    Ok(Page { trades, cursor: Some(cursor) })
}

/// `[price, volume, time, side, type, misc, trade_id]`.
fn parse_row(i: usize, row: &Value) -> Result<Trade, VenueError> {
    let bad = |what: &str| malformed(VENUE, format!("trade {i}: {what}"));
    let Some(fields) = row.as_array() else {
        return Err(bad("expected an array [price, volume, time, side, type, misc, trade_id]"));
    };
    if fields.len() < 7 {
        return Err(bad(&format!(
            "{} elements, expected 7 [price, volume, time, side, type, misc, trade_id]",
            fields.len()
        )));
    }
    let text = |at: usize, name: &str| match &fields[at] {
        Value::String(s) => Ok(s.as_str()),
        other => Err(bad(&format!("{name} must be a decimal string, got {}", describe(other)))),
    };
    let time_ms = match &fields[2] {
        Value::Number(n) => n.as_u64().and_then(seconds_to_ms),
        Value::Object(o) if o.len() == 1 => {
            o.get(NUMBER_MARK).and_then(Value::as_str).and_then(decimal_seconds_to_ms)
        }
        _ => None,
    };
    let Some(time_ms) = time_ms else {
        return Err(bad(&format!(
            "time {} is not non-negative seconds like 1749743999.8277369",
            describe(&fields[2])
        )));
    };
    let Some(id) = fields[6].as_u64() else {
        return Err(bad(&format!("trade_id must be an integer, got {}", describe(&fields[6]))));
    };
    Ok(Trade {
        venue: VENUE,
        id: id.to_string(),
        time_ms,
        price: wad(VENUE, i, "price", text(0, "price")?)?,
        size: wad(VENUE, i, "volume", text(1, "volume")?)?,
    })
}

/// A JSON value for an error message, with marked numbers shown as the number they were.
fn describe(value: &Value) -> String {
    match value {
        Value::Object(o) if o.len() == 1 && o.contains_key(NUMBER_MARK) => {
            format!("number {}", o[NUMBER_MARK].as_str().unwrap_or_default())
        }
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        other => other.to_string(),
    }
}

/// The venue error of a body's `error` array, if it is non-empty.
fn api_error(top: &serde_json::Map<String, Value>) -> Result<Option<VenueError>, VenueError> {
    let Some(Value::Array(errors)) = top.get("error") else {
        return Err(malformed(VENUE, "no \"error\" array"));
    };
    if errors.is_empty() {
        return Ok(None);
    }
    let messages: Vec<String> =
        errors.iter().map(|e| e.as_str().map_or_else(|| describe(e), str::to_owned)).collect();
    let message = messages.join("; ");
    let busy = messages.iter().any(|m| BUSY_ERRORS.iter().any(|prefix| m.starts_with(prefix)));
    Ok(Some(if busy {
        VenueError::Busy { venue: VENUE, message }
    } else {
        VenueError::Api { venue: VENUE, message }
    }))
}

/// The error of a non-2xx answer: the `error` array when the body has one.
pub fn parse_error(status: u16, body: &[u8]) -> VenueError {
    let messages = serde_json::from_slice::<Value>(body).ok().and_then(|v| match v.get("error") {
        Some(Value::Array(errors)) if !errors.is_empty() => {
            Some(errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        }
        _ => None,
    });
    VenueError::Http { venue: VENUE, status, message: messages.unwrap_or_else(|| snippet(body)) }
}

pub(crate) fn parse_response(response: &RawResponse) -> Result<Page, VenueError> {
    if !response.is_success() {
        return Err(parse_error(response.status, &response.body));
    }
    parse_trades(&response.body)
}

/// Rewrites every JSON number token that has a fraction or an exponent, outside strings, as
/// `{"$fixd:number":"<token>"}`, so that its exact text survives decoding without
/// `serde_json`'s `arbitrary_precision` feature. Integers and everything else are copied as
/// they are; invalid JSON stays invalid (a token is only ever quoted, never repaired into a
/// different value).
pub fn mark_fractional_numbers(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 256);
    let mut i = 0;
    let mut in_string = false;
    while i < input.len() {
        let b = input[i];
        if in_string {
            out.push(b);
            if b == b'\\' {
                if let Some(&next) = input.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < input.len() && matches!(input[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let token = &input[start..i];
                if token.iter().any(|c| matches!(c, b'.' | b'e' | b'E')) {
                    out.extend_from_slice(b"{\"");
                    out.extend_from_slice(NUMBER_MARK.as_bytes());
                    out.extend_from_slice(b"\":\"");
                    out.extend_from_slice(token);
                    out.extend_from_slice(b"\"}");
                } else {
                    out.extend_from_slice(token);
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The paging plan of one Kraken fetch: forward from the window start with `since`.
#[derive(Debug)]
pub(crate) struct Walk {
    end_ms: u64,
    since_ns: u64,
    done: bool,
}

impl Walk {
    pub(crate) fn new(start_ms: u64, end_ms: u64) -> Self {
        // `since` is exclusive: start one ns before the first ms of the window.
        let since_ns = start_ms.saturating_mul(1_000_000).saturating_sub(1);
        Walk { end_ms, since_ns, done: false }
    }
}

impl PageWalk for Walk {
    fn next_query(&mut self) -> Option<Query> {
        (!self.done).then(|| {
            vec![
                ("pair", PAIR.to_owned()),
                ("since", self.since_ns.to_string()),
                ("count", PAGE_LIMIT.to_string()),
            ]
        })
    }

    fn on_page(&mut self, page: &Page) -> Result<(), VenueError> {
        let Some(newest_ms) = page.trades.iter().map(|t| t.time_ms).max() else {
            self.done = true;
            return Ok(());
        };
        if newest_ms > self.end_ms {
            self.done = true;
            return Ok(());
        }
        match page.cursor {
            Some(last) if last > self.since_ns => self.since_ns = last,
            other => {
                return Err(malformed(
                    VENUE,
                    format!("paging did not move forward: since={} answered last={other:?}", self.since_ns),
                ));
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
        parse_trades(&fixture("kraken", name))
    }

    fn detail(err: VenueError) -> String {
        malformed_detail(Venue::Kraken, err)
    }

    #[test]
    fn normal_page_parses_exactly() {
        let page = read("normal.json").unwrap();
        assert_eq!(page.cursor, Some(1_749_743_999_827_736_900));
        assert_eq!(page.trades.len(), 10);
        let oldest = &page.trades[0];
        assert_eq!((oldest.venue, oldest.id.as_str()), (Venue::Kraken, "86412301"));
        assert_eq!(oldest.time_ms, 1_749_743_702_084);
        assert_eq!(oldest.price.raw(), 2_719_470_000_000_000_000_000);
        assert_eq!(oldest.size, Wad::parse("0.125").unwrap());
        // 1749743819.9990001 and a whole-second integer time.
        assert_eq!(page.trades[3].time_ms, 1_749_743_819_999);
        assert_eq!(page.trades[4].time_ms, 1_749_743_820_000);
        assert_eq!(page.trades[9].time_ms, 1_749_743_999_827);
        assert_eq!(page.trades[9].id, "86412310");
    }

    #[test]
    fn times_are_exact_where_an_f64_is_not() {
        // As an f64, 1749743819.9999999 is 1749743820.0: the trade would move a whole ms and
        // across a partition edge.
        let body = br#"{"error":[],"result":{"XETHZUSD":[["2720.55","1",1749743819.9999999,"s","l","",7]],"last":"1"}}"#;
        assert_eq!(parse_trades(body).unwrap().trades[0].time_ms, 1_749_743_819_999);
    }

    #[test]
    fn empty_page_keeps_the_cursor() {
        assert_eq!(
            read("empty.json").unwrap(),
            Page { trades: vec![], cursor: Some(1_749_743_700_000_000_000) }
        );
    }

    #[test]
    fn pages_chain_through_last() {
        let p1 = read("page1.json").unwrap();
        let p2 = read("page2.json").unwrap();
        assert_eq!(p1.cursor, Some(1_749_743_820_000_000_000));
        assert_eq!(p1.trades.last().unwrap().id, "86412305");
        assert_eq!(p2.trades[0].id, "86412306");
    }

    #[test]
    fn errors_in_a_200_body_are_api_or_busy() {
        assert_eq!(
            read("error.json"),
            Err(VenueError::Api { venue: VENUE, message: "EQuery:Unknown asset pair".into() })
        );
        let busy = read("error_busy.json").unwrap_err();
        assert_eq!(busy, VenueError::Busy { venue: VENUE, message: "EGeneral:Too many requests".into() });
        assert!(busy.is_retryable());
        assert!(matches!(
            parse_trades(br#"{"error":["EService:Unavailable"]}"#),
            Err(VenueError::Busy { .. })
        ));
        assert_eq!(
            parse_error(520, br#"{"error":["EService:Unavailable"]}"#),
            VenueError::Http { venue: VENUE, status: 520, message: "EService:Unavailable".into() }
        );
        let html = parse_error(503, &fixture("kraken", "malformed_html.json"));
        assert!(html.to_string().starts_with("kraken: HTTP 503: <html> <head><title>503 Service"), "{html}");
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        assert!(detail(read("malformed_truncated.json").unwrap_err()).starts_with("truncated JSON"));
        assert_eq!(
            detail(read("malformed_types.json").unwrap_err()),
            "trade 1: time string \"1749743731.551293\" is not non-negative seconds like 1749743999.8277369"
        );
        let price_number =
            br#"{"error":[],"result":{"XETHZUSD":[[2719.12,"1",1749743731,1,1,"",1]],"last":"1"}}"#;
        let err = detail(parse_trades(price_number).unwrap_err());
        assert_eq!(err, "trade 0: price must be a decimal string, got number 2719.12");
        let decimal = detail(read("malformed_decimal.json").unwrap_err());
        assert!(decimal.starts_with("trade 1: price: \"2.71912e3\" is not a plain decimal"), "{decimal}");
        assert!(
            detail(read("malformed_short_row.json").unwrap_err())
                .starts_with("trade 0: 6 elements, expected 7")
        );
        assert!(
            detail(read("malformed_time.json").unwrap_err())
                .starts_with("trade 0: time number 1.7497437020841275e9")
        );
        assert!(detail(read("malformed_html.json").unwrap_err()).starts_with("an HTML page, not JSON"));
        assert_eq!(detail(parse_trades(br#"{"result":{}}"#).unwrap_err()), "no \"error\" array");
        assert_eq!(
            detail(parse_trades(br#"{"error":[],"result":{"XETHZUSD":[]}}"#).unwrap_err()),
            "result.last is missing or not a ns timestamp"
        );
        let two_pairs = br#"{"error":[],"result":{"XETHZUSD":[],"XXBTZUSD":[],"last":"1"}}"#;
        assert!(
            detail(parse_trades(two_pairs).unwrap_err()).starts_with("result must hold exactly one pair")
        );
        let negative_time = br#"{"error":[],"result":{"XETHZUSD":[["1","1",-1.5,"b","l","",1]],"last":"1"}}"#;
        assert!(detail(parse_trades(negative_time).unwrap_err()).starts_with("trade 0: time number -1.5"));
    }

    #[test]
    fn marking_keeps_strings_and_integers() {
        let body = br#"{"a":"1.5 \"2.5\"","b":[1.25,-3,4e2,0.0],"c":true}"#;
        let marked = String::from_utf8(mark_fractional_numbers(body)).unwrap();
        assert_eq!(
            marked,
            r#"{"a":"1.5 \"2.5\"","b":[{"$fixd:number":"1.25"},-3,{"$fixd:number":"4e2"},{"$fixd:number":"0.0"}],"c":true}"#
        );
    }

    #[test]
    fn walk_goes_forward_from_the_start() {
        let mut walk = Walk::new(1_749_743_700_000, 1_749_743_999_999);
        let query = walk.next_query().unwrap();
        assert_eq!(query[1], ("since", "1749743699999999999".to_owned()));
        walk.on_page(&read("page1.json").unwrap()).unwrap();
        assert_eq!(walk.next_query().unwrap()[1], ("since", "1749743820000000000".to_owned()));
        walk.on_page(&read("page2.json").unwrap()).unwrap();
        assert!(walk.next_query().is_some(), "all trades so far are within the window");
        walk.on_page(&read("empty.json").unwrap()).unwrap();
        assert_eq!(walk.next_query(), None);
        // A page reaching past the window end ends the walk; a stuck cursor is an error.
        let mut walk = Walk::new(1_749_743_700_000, 1_749_743_900_000);
        walk.on_page(&read("normal.json").unwrap()).unwrap();
        assert_eq!(walk.next_query(), None);
        let mut walk = Walk::new(1_749_743_900_000, 1_749_743_999_999);
        let err = walk.on_page(&read("page1.json").unwrap()).unwrap_err();
        assert!(detail(err).contains("did not move forward"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_trades(&body);
            let _ = parse_error(500, &body);
        }

        #[test]
        fn mutated_pages_never_panic(at in 0usize..2000, byte in any::<u8>()) {
            let mut body = fixture("kraken", "normal.json");
            let at = at % body.len();
            body[at] = byte;
            let _ = parse_trades(&body);
            body.truncate(at);
            let _ = parse_trades(&body);
        }

        #[test]
        fn any_decimal_time_is_exact(secs in 0u64..4_000_000_000, frac in "[0-9]{0,9}") {
            let text = if frac.is_empty() { secs.to_string() } else { format!("{secs}.{frac}") };
            let body = format!(r#"{{"error":[],"result":{{"XETHZUSD":[["1","1",{text},"b","l","",1]],"last":"1"}}}}"#);
            let ms: u64 = format!("{frac:0<3}")[..3].parse().unwrap();
            prop_assert_eq!(parse_trades(body.as_bytes()).unwrap().trades[0].time_ms, secs * 1000 + ms);
        }

        #[test]
        fn marking_never_changes_valid_json_without_fractions(v in proptest::collection::vec(any::<i64>(), 0..20), s in "\\PC{0,20}") {
            let body = serde_json::to_vec(&serde_json::json!({"ints": v, "text": s})).unwrap();
            prop_assert_eq!(mark_fractional_numbers(&body), body);
        }
    }
}
