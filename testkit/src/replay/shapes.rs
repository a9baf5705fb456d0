//! The venues' real response bodies, rendered from served trades. Prices and sizes are exact
//! decimal strings, padded with zeros to the venue's usual number of decimals (never rounded).

use std::fmt::Write as _;

use fixd_proto::types::venue::Venue;
use fixd_proto::value::Wad;
use serde::Serialize;

use super::tape::Row;

/// The body of the `garbage` fault: neither JSON nor UTF-8.
pub(crate) const GARBAGE: &[u8] = b"\xff\xfe\x00\x1f garbage: not JSON \x80\x81 {[\"trade";

/// The venue's error body for an HTTP 500.
pub(crate) fn internal_error(venue: Venue) -> &'static str {
    match venue {
        Venue::Coinbase => r#"{"message":"Internal server error"}"#,
        Venue::Kraken => r#"{"error":["EGeneral:Internal error"]}"#,
        Venue::Bitstamp => r#"{"status":"error","reason":"Internal server error.","code":"API0000"}"#,
        Venue::Gemini => r#"{"result":"error","reason":"ServerError","message":"Internal server error"}"#,
    }
}

/// The body of the `flood` fault: a valid page of the venue's shape, at most `bytes` long (and
/// at least one trade), of minimal trades (price and size `"1"`, ids counting up from 1) all
/// 30 s before `now_ms`, so inside any window that ends now.
pub(crate) fn flood(venue: Venue, bytes: usize, now_ms: u64) -> Vec<u8> {
    let at_ms = now_ms.saturating_sub(30_000);
    let (head, tail) = match venue {
        Venue::Kraken => (
            r#"{"error":[],"result":{"XETHZUSD":["#.to_owned(),
            format!(r#"],"last":"{}"}}}}"#, u128::from(at_ms) * 1_000_000),
        ),
        _ => ("[".to_owned(), "]".to_owned()),
    };
    let time = match venue {
        Venue::Coinbase => rfc3339_micros(at_ms),
        Venue::Kraken => format!("{}.{:03}", at_ms / 1000, at_ms % 1000),
        Venue::Bitstamp => (at_ms / 1000).to_string(),
        Venue::Gemini => at_ms.to_string(),
    };
    let mut out = String::with_capacity(bytes);
    out.push_str(&head);
    let mut row = String::new();
    for id in 1u64.. {
        row.clear();
        if id > 1 {
            row.push(',');
        }
        let _ = match venue {
            Venue::Coinbase => write!(row, r#"{{"time":"{time}","trade_id":{id},"price":"1","size":"1"}}"#),
            Venue::Kraken => write!(row, r#"["1","1",{time},"b","l","",{id}]"#),
            Venue::Bitstamp => write!(row, r#"{{"date":"{time}","tid":"{id}","amount":"1","price":"1"}}"#),
            Venue::Gemini => write!(row, r#"{{"timestampms":{time},"tid":{id},"price":"1","amount":"1"}}"#),
        };
        if id > 1 && out.len() + row.len() + tail.len() > bytes {
            break;
        }
        out.push_str(&row);
    }
    out.push_str(&tail);
    out.into_bytes()
}

/// Buy or sell, derived from the trade id so that it is deterministic.
fn is_buy(id: u64) -> bool {
    id.is_multiple_of(2)
}

#[derive(Serialize)]
struct CoinbaseRow {
    time: String,
    trade_id: u64,
    price: String,
    size: String,
    side: &'static str,
}

/// Coinbase Exchange `GET /products/ETH-USD/trades`: an array, newest first.
pub(crate) fn coinbase(rows: &[Row]) -> String {
    let rows: Vec<CoinbaseRow> = rows
        .iter()
        .map(|r| CoinbaseRow {
            time: rfc3339_micros(r.time_ms),
            trade_id: r.id,
            price: padded(r.price, 2),
            size: padded(r.size, 8),
            side: if is_buy(r.id) { "buy" } else { "sell" },
        })
        .collect();
    serde_json::to_string(&rows).expect("trade rows serialise")
}

/// Kraken `GET /0/public/Trades`: rows `[price, volume, time, side, type, misc, id]`, oldest
/// first, the time a JSON number of seconds with three decimals, and `last` in ns.
pub(crate) fn kraken(rows: &[Row], last_ns: u128) -> String {
    let mut out = String::from(r#"{"error":[],"result":{"XETHZUSD":["#);
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let side = if is_buy(r.id) { "b" } else { "s" };
        let kind = if r.id.is_multiple_of(3) { "l" } else { "m" };
        let (secs, ms) = (r.time_ms / 1000, r.time_ms % 1000);
        let (price, volume) = (padded(r.price, 5), padded(r.size, 8));
        write!(out, r#"["{price}","{volume}",{secs}.{ms:03},"{side}","{kind}","",{}]"#, r.id)
            .expect("writing to a String");
    }
    write!(out, r#"],"last":"{last_ns}"}}}}"#).expect("writing to a String");
    out
}

#[derive(Serialize)]
struct BitstampRow {
    date: String,
    tid: String,
    amount: String,
    #[serde(rename = "type")]
    kind: &'static str,
    price: String,
}

/// Bitstamp `GET /api/v2/transactions/ethusd/`: an array, newest first, with `date` in whole
/// seconds and `type` `"0"` (buy) or `"1"` (sell), all strings.
pub(crate) fn bitstamp(rows: &[Row]) -> String {
    let rows: Vec<BitstampRow> = rows
        .iter()
        .map(|r| BitstampRow {
            date: (r.time_ms / 1000).to_string(),
            tid: r.id.to_string(),
            amount: padded(r.size, 8),
            kind: if is_buy(r.id) { "0" } else { "1" },
            price: r.price.to_string(),
        })
        .collect();
    serde_json::to_string(&rows).expect("trade rows serialise")
}

#[derive(Serialize)]
struct GeminiRow {
    timestamp: u64,
    timestampms: u64,
    tid: u64,
    price: String,
    amount: String,
    exchange: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Gemini `GET /v1/trades/ethusd`: an array, newest first.
pub(crate) fn gemini(rows: &[Row]) -> String {
    let rows: Vec<GeminiRow> = rows
        .iter()
        .map(|r| GeminiRow {
            timestamp: r.time_ms / 1000,
            timestampms: r.time_ms,
            tid: r.id,
            price: r.price.to_string(),
            amount: r.size.to_string(),
            exchange: "gemini",
            kind: if is_buy(r.id) { "buy" } else { "sell" },
        })
        .collect();
    serde_json::to_string(&rows).expect("trade rows serialise")
}

/// The exact decimal, with at least `decimals` fractional digits (zeros appended).
pub(crate) fn padded(value: Wad, decimals: usize) -> String {
    let mut text = value.to_string();
    let have = text.find('.').map_or(0, |dot| text.len() - dot - 1);
    if have < decimals {
        if have == 0 {
            text.push('.');
        }
        text.extend(std::iter::repeat_n('0', decimals - have));
    }
    text
}

/// Unix ms as RFC 3339 UTC with microseconds: `2025-06-12T15:59:59.827000Z`.
pub(crate) fn rfc3339_micros(ms: u64) -> String {
    fixd_proto::calendar::rfc3339_utc(ms, 6)
}

#[cfg(test)]
mod tests {
    use fixd_proto::replay::unix_seconds;

    use super::*;

    fn row(id: u64, time_ms: u64, price: &str, size: &str) -> Row {
        Row { id, time_ms, price: Wad::parse(price).unwrap(), size: Wad::parse(size).unwrap() }
    }

    #[test]
    fn decimals_are_padded_never_rounded() {
        let w = |s| Wad::parse(s).unwrap();
        assert_eq!(padded(w("2718.6"), 2), "2718.60");
        assert_eq!(padded(w("2718"), 5), "2718.00000");
        assert_eq!(padded(w("0.5"), 8), "0.50000000");
        assert_eq!(padded(w("2601.640224"), 5), "2601.640224");
        assert_eq!(padded(w("0.000000000000000001"), 8), "0.000000000000000001");
        assert_eq!(padded(w("0"), 0), "0");
    }

    #[test]
    fn times_are_rfc3339_utc_with_microseconds() {
        assert_eq!(rfc3339_micros(1_749_743_999_827), "2025-06-12T15:59:59.827000Z");
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(1_709_164_800_000), "2024-02-29T00:00:00.000000Z");
        for stamp in ["2025-06-12T15:00:00Z", "2000-03-01T00:00:00Z", "2100-12-31T23:59:59Z"] {
            let ms = unix_seconds(stamp).unwrap() * 1000 + 5;
            assert_eq!(rfc3339_micros(ms), stamp.replace('Z', ".005000Z"));
        }
    }

    #[test]
    fn flood_pages_are_valid_pages_of_tiny_trades() {
        for venue in Venue::ALL {
            let page = flood(venue, 4_096, 1_749_744_000_000);
            assert!(page.len() <= 4_096 && page.len() > 3_900, "{venue}: {}", page.len());
            let parsed = match venue {
                Venue::Coinbase => fixd_node::venues::parsers::coinbase::parse_trades(&page),
                Venue::Kraken => fixd_node::venues::parsers::kraken::parse_trades(&page),
                Venue::Bitstamp => fixd_node::venues::parsers::bitstamp::parse_trades(&page),
                Venue::Gemini => fixd_node::venues::parsers::gemini::parse_trades(&page),
            }
            .unwrap();
            assert!(parsed.trades.len() > 40, "{venue}");
            assert!(parsed.trades.iter().all(|t| t.time_ms / 1000 == 1_749_743_970), "{venue}");
        }
    }

    #[test]
    fn bodies_have_the_venue_shapes() {
        let rows = [
            row(2_916_228_107, 1_749_743_999_827, "2718.6", "0.5"),
            row(2_916_228_106, 1_749_743_820_000, "2720", "3"),
        ];
        assert_eq!(
            coinbase(&rows[..1]),
            r#"[{"time":"2025-06-12T15:59:59.827000Z","trade_id":2916228107,"price":"2718.60","size":"0.50000000","side":"sell"}]"#
        );
        assert_eq!(
            kraken(&rows, 1_749_743_820_000_000_000),
            concat!(
                r#"{"error":[],"result":{"XETHZUSD":[["2718.60000","0.50000000",1749743999.827,"s","m","",2916228107],"#,
                r#"["2720.00000","3.00000000",1749743820.000,"b","m","",2916228106]],"last":"1749743820000000000"}}"#
            )
        );
        assert_eq!(kraken(&[], 7), r#"{"error":[],"result":{"XETHZUSD":[],"last":"7"}}"#);
        assert_eq!(
            bitstamp(&rows[1..]),
            r#"[{"date":"1749743820","tid":"2916228106","amount":"3.00000000","type":"0","price":"2720"}]"#
        );
        assert_eq!(
            gemini(&rows[..1]),
            r#"[{"timestamp":1749743999,"timestampms":1749743999827,"tid":2916228107,"price":"2718.6","amount":"0.5","exchange":"gemini","type":"sell"}]"#
        );
        for venue in Venue::ALL {
            assert!(serde_json::from_str::<serde_json::Value>(internal_error(venue)).is_ok());
        }
        assert!(serde_json::from_slice::<serde_json::Value>(GARBAGE).is_err());
        assert!(GARBAGE.starts_with(b"\xff\xfe"), "a UTF-8 decoder rejects 0xff");
    }
}
