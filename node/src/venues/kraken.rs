//! Kraken, pair `XETHZUSD` (ETH/USD).
//!
//! `GET /0/public/Trades?pair=XETHZUSD&since=<ns>&count=1000` answers, oldest first,
//! `{"error":[],"result":{"XETHZUSD":[["2718.60000","0.50000000",1749743999.8277369,"s","l","",
//! 86412310], ...],"last":"1749743999827736900"}}`: price, volume, time, side, order type, misc,
//! trade id. `last` (ns) is the `since` of the next page. Errors come with HTTP 200 and a
//! non-empty `error` array: `{"error":["EQuery:Unknown asset pair"]}`.
//!
//! The time is a JSON float of seconds with up to 7 decimals (17 significant digits), more than
//! an `f64` holds, so it is read from the JSON text itself: each row is streamed as the raw text
//! of its elements (borrowed from the body, no copy and no JSON tree), and the time's decimal
//! text is converted to ms with integer maths.

use std::borrow::Cow;

use fixd_proto::types::venue::{Trade, Venue};
use serde::Deserialize;
use serde::de;
use serde_json::value::RawValue;

use super::client::RawResponse;
use super::parse::{
    ErrorFields, Failure, Field, Page, RowStream, decimal_seconds_to_ms, malformed, snippet, stream,
    stream_error, wad,
};
use super::{PageWalk, Query, VenueError};

const VENUE: Venue = Venue::Kraken;

/// The trades path.
pub const PATH: &str = "/0/public/Trades";
/// The pair asked for; the answer is keyed by it.
pub const PAIR: &str = "XETHZUSD";
/// Trades per page: the endpoint's maximum.
pub const PAGE_LIMIT: u64 = 1_000;

/// Error prefixes that mean "busy, ask again later" rather than "wrong request".
const BUSY_ERRORS: [&str; 4] =
    ["EService:", "EGeneral:Too many requests", "EAPI:Rate limit", "EGeneral:Temporary"];

/// Parses a 2xx trades body: the trades, oldest first, and `last` as the cursor. A non-empty
/// `error` array is [`VenueError::Busy`] for rate limits and outages, [`VenueError::Api`]
/// otherwise. The rows are streamed: each is decoded into a [`Trade`] as it is read, from the
/// raw text of its elements, so the time's exact decimal text is at hand.
pub fn parse_trades(body: &[u8]) -> Result<Page, VenueError> {
    let mut trades = Vec::new();
    let mut failure = Failure::default();
    let mut state =
        State { trades: Some(&mut trades), failure: Some(&mut failure), at: At::Top, ..State::default() };
    let read = stream(body, Top(&mut state));
    let (at, outcome) = (state.at, state.outcome());
    match read {
        Ok(()) => {}
        Err(err) => {
            return Err(stream_error(VENUE, body, &err, failure, || match at {
                At::Top => {
                    malformed(VENUE, format!("expected an object with error and result: {}", snippet(body)))
                }
                At::Result => malformed(VENUE, "no \"result\" object"),
                At::Pair => pair_error(),
            }));
        }
    }
    let cursor = outcome?;
    Ok(Page { trades, cursor: Some(cursor) })
}

fn pair_error() -> VenueError {
    malformed(VENUE, "result must hold exactly one pair's array of trades besides \"last\"")
}

/// Where in the body a JSON type error happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum At {
    #[default]
    Top,
    Result,
    Pair,
}

/// What has been read of a trades body so far.
#[derive(Debug, Default)]
struct State<'s> {
    trades: Option<&'s mut Vec<Trade>>,
    failure: Option<&'s mut Failure>,
    at: At,
    errors: Option<Field>,
    result: bool,
    /// `Some(None)`: `last` was there but is not a ns time.
    last: Option<Option<u64>>,
    pairs: usize,
}

impl State<'_> {
    /// The cursor, or what is wrong with the body (checked in the order the venue's errors
    /// take precedence: its `error` array first).
    fn outcome(&self) -> Result<u64, VenueError> {
        let Some(Field::List(errors)) = &self.errors else {
            return Err(malformed(VENUE, "no \"error\" array"));
        };
        if !errors.is_empty() {
            let messages: Vec<String> = errors.iter().map(Field::describe).collect();
            let message = messages.join("; ");
            let busy = messages.iter().any(|m| BUSY_ERRORS.iter().any(|prefix| m.starts_with(prefix)));
            return Err(if busy {
                VenueError::Busy { venue: VENUE, message }
            } else {
                VenueError::Api { venue: VENUE, message }
            });
        }
        if !self.result {
            return Err(malformed(VENUE, "no \"result\" object"));
        }
        let Some(Some(cursor)) = self.last else {
            return Err(malformed(VENUE, "result.last is missing or not a ns timestamp"));
        };
        if self.pairs != 1 {
            return Err(pair_error());
        }
        Ok(cursor)
    }

    fn stop<E: de::Error>(&mut self, error: VenueError) -> E {
        self.failure.as_deref_mut().expect("set by parse_trades").stop(error)
    }
}

/// The whole body: `{"error":[...],"result":{...}}`.
struct Top<'a, 's>(&'a mut State<'s>);

impl<'de> de::DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with error and result")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "error" if self.0.errors.is_none() => self.0.errors = Some(map.next_value::<Field>()?),
                "result" if !self.0.result => {
                    self.0.at = At::Result;
                    map.next_value_seed(ResultObject(&mut *self.0))?;
                    self.0.result = true;
                    self.0.at = At::Top;
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `result`: `{"XETHZUSD":[rows...],"last":"<ns>"}`.
struct ResultObject<'a, 's>(&'a mut State<'s>);

impl<'de> de::DeserializeSeed<'de> for ResultObject<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for ResultObject<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the result object")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "last" {
                let raw = map.next_value::<&'de RawValue>()?;
                state.last = Some(ns_cursor(raw));
                continue;
            }
            state.pairs += 1;
            if state.pairs > 1 {
                return Err(state.stop(pair_error()));
            }
            state.at = At::Pair;
            let rows = RowStream {
                venue: VENUE,
                decode: parse_row,
                trades: state.trades.as_deref_mut().expect("set by parse_trades"),
                failure: state.failure.as_deref_mut().expect("set by parse_trades"),
                row: std::marker::PhantomData,
            };
            map.next_value_seed(rows)?;
            state.at = At::Result;
        }
        Ok(())
    }
}

/// `last`: a string of digits or an integer, in ns.
fn ns_cursor(raw: &RawValue) -> Option<u64> {
    let text = raw.get();
    let digits = match serde_json::from_str::<Cow<'_, str>>(text) {
        Ok(s) => s.into_owned(),
        Err(_) => text.to_owned(),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One row, `[price, volume, time, side, type, misc, trade_id]`: the first seven elements as
/// raw JSON text borrowed from the body, and how many elements it had.
struct RawRow<'a> {
    fields: [Option<&'a RawValue>; 7],
    len: usize,
}

impl<'de> Deserialize<'de> for RawRow<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(RawRowVisitor)
    }
}

struct RawRowVisitor;

impl<'de> de::Visitor<'de> for RawRowVisitor {
    type Value = RawRow<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array [price, volume, time, side, type, misc, trade_id]")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawRow<'de>, A::Error> {
        let mut row = RawRow { fields: [None; 7], len: 0 };
        while row.len < row.fields.len() {
            match seq.next_element::<&'de RawValue>()? {
                Some(raw) => row.fields[row.len] = Some(raw),
                None => return Ok(row),
            }
            row.len += 1;
        }
        while seq.next_element::<de::IgnoredAny>()?.is_some() {
            row.len = row.len.saturating_add(1);
        }
        Ok(row)
    }
}

/// Decodes one row into a trade.
fn parse_row(i: usize, row: RawRow<'_>) -> Result<Trade, VenueError> {
    let bad = |what: &str| malformed(VENUE, format!("trade {i}: {what}"));
    let [Some(price), Some(volume), Some(time), _, _, _, Some(trade_id)] = row.fields else {
        return Err(bad(&format!(
            "{} elements, expected 7 [price, volume, time, side, type, misc, trade_id]",
            row.len
        )));
    };
    let text = |raw: &RawValue, name: &str| match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
        Ok(s) => Ok(s),
        Err(_) => Err(bad(&format!("{name} must be a decimal string, got {}", describe(raw)))),
    };
    // A number's exact text: `1749743999.8277369` has more digits than an f64 holds.
    let time_ms = if time.get().starts_with('"') { None } else { decimal_seconds_to_ms(time.get()) };
    let Some(time_ms) = time_ms else {
        return Err(bad(&format!(
            "time {} is not non-negative seconds like 1749743999.8277369",
            describe(time)
        )));
    };
    let id = trade_id.get();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(&format!("trade_id must be an integer, got {}", describe(trade_id))));
    }
    let Ok(id) = id.parse::<u64>() else {
        return Err(bad(&format!("trade_id must be an integer, got {}", describe(trade_id))));
    };
    Ok(Trade {
        venue: VENUE,
        id: id.to_string(),
        time_ms,
        price: wad(VENUE, i, "price", &text(price, "price")?)?,
        size: wad(VENUE, i, "volume", &text(volume, "volume")?)?,
    })
}

/// A raw JSON value for an error message: `number 2719.12`, `string "1.5"`, or its text.
fn describe(raw: &RawValue) -> String {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<Cow<'_, str>>(text) {
            Ok(s) => format!("string {s:?}"),
            Err(_) => text.to_owned(),
        },
        Some(b'-' | b'0'..=b'9') => format!("number {text}"),
        _ => snippet(text.as_bytes()),
    }
}

/// The error of a non-2xx answer: the `error` array when the body has one.
pub fn parse_error(status: u16, body: &[u8]) -> VenueError {
    let messages = ErrorFields::parse(body).and_then(|fields| match fields.get("error") {
        Some(Field::List(errors)) if !errors.is_empty() => Some(
            errors
                .iter()
                .filter_map(|e| match e {
                    Field::Text(s) => Some(s.as_str()),
                    Field::Other(_) | Field::List(_) => None,
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
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
    fn rows_are_read_from_their_raw_text() {
        // Escaped strings, unknown fields (with fractional numbers in them) and whitespace.
        let body = br#"{"x":[1.25,-3,4e2,{"y":0.5}],"error":[],"result":{"XETHZUSD":[ [ "2720\u002e55" , "0.5", 1749743819.9999999 ,"s","l","",7,"extra"]],"last":1749743820000000000}}"#;
        let page = parse_trades(body).unwrap();
        assert_eq!(page.cursor, Some(1_749_743_820_000_000_000));
        assert_eq!(page.trades[0].price, Wad::parse("2720.55").unwrap());
        assert_eq!((page.trades[0].time_ms, page.trades[0].id.as_str()), (1_749_743_819_999, "7"));
        let string_id = br#"{"error":[],"result":{"XETHZUSD":[["1","1",1,"b","l","","7"]],"last":"1"}}"#;
        assert_eq!(
            detail(parse_trades(string_id).unwrap_err()),
            "trade 0: trade_id must be an integer, got string \"7\""
        );
        let not_a_row = br#"{"error":[],"result":{"XETHZUSD":[{"price":"1"}],"last":"1"}}"#;
        assert!(detail(parse_trades(not_a_row).unwrap_err()).starts_with("trade 0: invalid type: map"));
        assert_eq!(
            detail(parse_trades(br#"[]"#).unwrap_err()),
            "expected an object with error and result: []"
        );
        assert_eq!(detail(parse_trades(br#"{"error":[],"result":[]}"#).unwrap_err()), "no \"result\" object");
        let pair_not_array = br#"{"error":[],"result":{"XETHZUSD":{},"last":"1"}}"#;
        assert!(
            detail(parse_trades(pair_not_array).unwrap_err())
                .starts_with("result must hold exactly one pair")
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
        fn unknown_fields_never_change_the_page(v in proptest::collection::vec(any::<i64>(), 0..20), s in "\\PC{0,20}") {
            let row = serde_json::json!(["2720.55", "1", 1_749_743_819u64, "s", "l", "", 7]);
            let plain = serde_json::json!({"error": [], "result": {"XETHZUSD": [row.clone()], "last": "1"}});
            let noisy = serde_json::json!({
                "ints": v, "text": s, "error": [], "result": {"XETHZUSD": [row], "last": "1"},
            });
            let (plain, noisy) = (serde_json::to_vec(&plain).unwrap(), serde_json::to_vec(&noisy).unwrap());
            prop_assert_eq!(parse_trades(&plain).unwrap(), parse_trades(&noisy).unwrap_or_default());
        }
    }
}
