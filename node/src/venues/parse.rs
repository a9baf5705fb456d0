//! Pure parsing helpers shared by the venue parsers: exact times and decimals, and errors that
//! show what was wrong with a body.

use fixd_proto::types::venue::{Trade, Venue};
use fixd_proto::value::Wad;
use serde::Deserialize;

use super::VenueError;

/// One parsed response: the trades it holds, in the venue's order, and the venue's paging
/// cursor when it has one (Coinbase: the oldest trade id; Kraken: `last`, in ns).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub trades: Vec<Trade>,
    pub cursor: Option<u64>,
}

/// A [`VenueError::Malformed`].
pub(crate) fn malformed(venue: Venue, detail: impl Into<String>) -> VenueError {
    VenueError::Malformed { venue, detail: detail.into() }
}

/// Turns a JSON decoding failure into a [`VenueError::Malformed`] that says what the body
/// looked like: an HTML page, truncated JSON, or the wrong shape.
pub(crate) fn json_error(venue: Venue, body: &[u8], err: &serde_json::Error) -> VenueError {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let detail = match first {
        None => "empty body, expected JSON".to_owned(),
        Some(b'<') => format!("an HTML page, not JSON: {}", snippet(body)),
        Some(_) if err.is_eof() => format!("truncated JSON ({err})"),
        Some(_) if err.is_syntax() => format!("invalid JSON ({err}): {}", snippet(body)),
        Some(_) => format!("unexpected JSON shape: {err}"),
    };
    malformed(venue, detail)
}

/// The first 160 characters of a body, on one line, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 160;
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !c.is_control()));
        if out.chars().count() > MAX {
            let cut: String = out.chars().take(MAX).collect();
            return format!("{cut}…");
        }
    }
    if out.is_empty() { "(empty body)".to_owned() } else { out }
}

/// Parses a venue's decimal string exactly, naming the field and row on failure.
pub(crate) fn wad(venue: Venue, row: usize, field: &str, text: &str) -> Result<Wad, VenueError> {
    Wad::parse(text).map_err(|e| malformed(venue, format!("trade {row}: {field}: {e}")))
}

/// A JSON field that venues send either as a string of digits or as an integer (trade ids,
/// second timestamps), as its digits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum Digits {
    Int(u64),
    Text(String),
}

impl std::fmt::Display for Digits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Digits::Int(n) => write!(f, "{n}"),
            Digits::Text(s) => write!(f, "{s:?}"),
        }
    }
}

impl Digits {
    /// The value as a `u64`, if it is digits that fit.
    pub(crate) fn to_u64(&self) -> Option<u64> {
        match self {
            Digits::Int(n) => Some(*n),
            Digits::Text(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
            Digits::Text(_) => None,
        }
    }
}

/// Unix seconds to ms, or `None` past year 584 million.
pub(crate) fn seconds_to_ms(seconds: u64) -> Option<u64> {
    seconds.checked_mul(1_000)
}

/// A non-negative decimal number of seconds (`"1749743999.8277369"`, `"1749743999"`) to unix
/// ms, exactly: the digits past the third decimal are dropped (times are floored to the ms).
/// Signs, exponents and anything but digits and one `.` are rejected.
pub(crate) fn decimal_seconds_to_ms(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = whole.parse().ok()?;
    let ms_digits = frac.as_bytes().iter().chain(b"000").take(3);
    let ms = ms_digits.fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    seconds_to_ms(seconds)?.checked_add(ms)
}

/// An RFC 3339 UTC time (`2025-06-12T15:59:59.123456Z`, or with a `±HH:MM` offset) to unix ms,
/// exactly: fractional digits past the ms are dropped. Times before 1970 are rejected.
pub(crate) fn rfc3339_to_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > fixd_proto::calendar::days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let len = frac.iter().take_while(|d| d.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        ms = frac[..len].iter().chain(b"000").take(3).fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        rest = &frac[len..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let [h1, h2, m1, m2] = digits.map(|d| i64::from(d - b'0'));
            let (oh, om) = (h1 * 10 + h2, m1 * 10 + m2);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3_600 + om * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let seconds = fixd_proto::calendar::days_from_civil(year, month, day) * 86_400
        + hour * 3_600
        + minute * 60
        + second;
    let ms_total = (seconds - offset_seconds).checked_mul(1_000)?.checked_add(ms)?;
    u64::try_from(ms_total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3339_times_are_exact_to_the_ms() {
        assert_eq!(rfc3339_to_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_to_ms("2025-06-12T15:55:00Z"), Some(1_749_743_700_000));
        assert_eq!(rfc3339_to_ms("2025-06-12T15:59:59.123456Z"), Some(1_749_743_999_123));
        assert_eq!(rfc3339_to_ms("2025-06-12T15:59:59.9999999Z"), Some(1_749_743_999_999));
        assert_eq!(rfc3339_to_ms("2025-06-12T15:59:59.5Z"), Some(1_749_743_999_500));
        assert_eq!(rfc3339_to_ms("2025-06-12T17:59:59.5+02:00"), Some(1_749_743_999_500));
        assert_eq!(rfc3339_to_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        for bad in [
            "",
            "2025-06-12 15:59:59Z",
            "2025-06-12T15:59:59",
            "2025-06-12T15:59:59.Z",
            "2025-13-12T15:59:59Z",
            "2025-02-29T00:00:00Z",
            "2025-06-12T24:00:00Z",
            "2025-06-12T15:60:00Z",
            "1969-12-31T23:59:59Z",
            "2025-06-12T15:59:59Zjunk",
            "2025-06-12T15:59:59+2:00",
            "+025-06-12T15:59:59Z",
            "２025-06-12T15:59:59Z",
        ] {
            assert_eq!(rfc3339_to_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn decimal_seconds_are_exact_to_the_ms() {
        assert_eq!(decimal_seconds_to_ms("1749743999.8277369"), Some(1_749_743_999_827));
        assert_eq!(decimal_seconds_to_ms("1749743999.828"), Some(1_749_743_999_828));
        assert_eq!(decimal_seconds_to_ms("1749743999.9999999"), Some(1_749_743_999_999));
        assert_eq!(decimal_seconds_to_ms("1749743999.1"), Some(1_749_743_999_100));
        assert_eq!(decimal_seconds_to_ms("1749743999"), Some(1_749_743_999_000));
        assert_eq!(decimal_seconds_to_ms("1749743999."), Some(1_749_743_999_000));
        for bad in ["", ".5", "-1.5", "1.7e9", "1749743999.1.2", "+1", "18446744073709552.000"] {
            assert_eq!(decimal_seconds_to_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn digits_accept_strings_and_integers_only() {
        assert_eq!(serde_json::from_str::<Digits>("\"42\"").unwrap().to_u64(), Some(42));
        assert_eq!(serde_json::from_str::<Digits>("42").unwrap().to_u64(), Some(42));
        assert_eq!(serde_json::from_str::<Digits>("\"-42\"").unwrap().to_u64(), None);
        assert_eq!(serde_json::from_str::<Digits>("\"4 2\"").unwrap().to_u64(), None);
        assert!(serde_json::from_str::<Digits>("4.2").is_err());
    }

    #[test]
    fn errors_describe_the_body() {
        let v = Venue::Gemini;
        let html = b"<html>\n<head><title>502 Bad Gateway</title></head></html>";
        let err = serde_json::from_slice::<serde_json::Value>(html).unwrap_err();
        let VenueError::Malformed { detail, .. } = json_error(v, html, &err) else { panic!() };
        assert_eq!(
            detail,
            "an HTML page, not JSON: <html> <head><title>502 Bad Gateway</title></head></html>"
        );
        let truncated = b"[{\"tid\":1,";
        let err = serde_json::from_slice::<serde_json::Value>(truncated).unwrap_err();
        let VenueError::Malformed { detail, .. } = json_error(v, truncated, &err) else { panic!() };
        assert!(detail.starts_with("truncated JSON"), "{detail}");
        assert_eq!(snippet(b"  \n "), "(empty body)");
        assert_eq!(snippet(&[b'a'; 500]).chars().count(), 161);
    }

    proptest! {
        #[test]
        fn rfc3339_agrees_with_whole_second_arithmetic(secs in 0u64..253_402_300_799, ms in 0u64..1000) {
            // Build the string from days/seconds by hand and check the round trip.
            let days = i64::try_from(secs / 86_400).unwrap();
            let rem = secs % 86_400;
            let (y, m, d) = fixd_proto::calendar::civil_from_days(days);
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}999Z", rem / 3600, rem % 3600 / 60, rem % 60
            );
            prop_assert_eq!(rfc3339_to_ms(&text), Some(secs * 1000 + ms));
        }

        #[test]
        fn time_parsers_never_panic(s in "\\PC{0,40}") {
            let _ = rfc3339_to_ms(&s);
            let _ = decimal_seconds_to_ms(&s);
        }
    }
}
