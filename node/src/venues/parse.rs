//! Pure parsing helpers shared by the venue parsers: exact times and decimals, and errors that
//! show what was wrong with a body.

use std::borrow::Cow;
use std::collections::BTreeMap;

use fixd_proto::types::venue::{Trade, Venue};
use fixd_proto::value::Wad;
use serde::Deserialize;
use serde_json::value::RawValue;

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

/// The most trades one page may hold. No venue's page comes near it: Coinbase and Kraken answer
/// at most 1,000 trades a page, Gemini 500, and a whole day of Bitstamp ETH-USD is tens of
/// thousands. A page with more is refused as malformed while it is read, at the first row past
/// the cap, so a page of millions of tiny trades never holds more than this many rows.
pub const MAX_PAGE_ROWS: usize = 100_000;

/// The longest row a trade may take, as JSON text: a real one takes 100 to 200 bytes.
pub const MAX_ROW_BYTES: usize = 4_096;

/// The most trades one fetch keeps (the trades inside the window, over all its pages). A fetch
/// whose window holds more fails with [`VenueError::TooManyTrades`].
pub const MAX_FETCH_TRADES: usize = 250_000;

/// Why a streamed parse stopped, kept beside the `serde_json` error that unwound it: the row it
/// was reading, and the venue error that the page's own rules raised (a bad decimal, too many
/// rows, an error body).
#[derive(Debug, Default)]
pub(crate) struct Failure {
    pub row: Option<usize>,
    pub error: Option<VenueError>,
}

impl Failure {
    /// Records `error` and returns the `serde` error that stops the parse.
    pub(crate) fn stop<E: serde::de::Error>(&mut self, error: VenueError) -> E {
        let text = error.to_string();
        self.error = Some(error);
        E::custom(text)
    }
}

/// The venue error of a streamed parse that failed with `err`: the error the page's rules
/// raised, else a row's decoding error ("trade 3: missing field `price`"), else `shape` for a
/// body of the wrong JSON type, else what the body looked like ([`json_error`]).
pub(crate) fn stream_error(
    venue: Venue,
    body: &[u8],
    err: &serde_json::Error,
    failure: Failure,
    shape: impl FnOnce() -> VenueError,
) -> VenueError {
    if let Some(error) = failure.error {
        return error;
    }
    if err.is_data() {
        return match failure.row {
            Some(row) => malformed(venue, format!("trade {row}: {}", without_position(err))),
            None => shape(),
        };
    }
    json_error(venue, body, err)
}

/// A `serde_json` error's message without its " at line L column C".
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    text.strip_suffix(&suffix).map_or_else(|| text.clone(), str::to_owned)
}

/// Parses all of `body` with `seed`: trailing bytes after the JSON value are an error.
pub(crate) fn stream<'de, S: serde::de::DeserializeSeed<'de>>(
    body: &'de [u8],
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Reads a JSON array of `R` rows one at a time, turning each into a [`Trade`] with `decode`
/// as soon as it is read: the page is never held as a JSON tree, and at most
/// [`MAX_PAGE_ROWS`] rows are decoded.
pub(crate) struct RowStream<'s, R, F> {
    pub venue: Venue,
    pub decode: F,
    pub trades: &'s mut Vec<Trade>,
    pub failure: &'s mut Failure,
    pub row: std::marker::PhantomData<fn() -> R>,
}

impl<'de, R, F> serde::de::DeserializeSeed<'de> for RowStream<'_, R, F>
where
    R: Deserialize<'de>,
    F: FnMut(usize, R) -> Result<Trade, VenueError>,
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, R, F> serde::de::Visitor<'de> for RowStream<'_, R, F>
where
    R: Deserialize<'de>,
    F: FnMut(usize, R) -> Result<Trade, VenueError>,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of trades")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        for i in 0.. {
            if i == MAX_PAGE_ROWS {
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    let error = too_many_rows(self.venue);
                    return Err(self.failure.stop(error));
                }
                break;
            }
            self.failure.row = Some(i);
            let Some(row) = seq.next_element::<R>()? else { break };
            match (self.decode)(i, row) {
                Ok(trade) => self.trades.push(trade),
                Err(error) => return Err(self.failure.stop(error)),
            }
        }
        self.failure.row = None;
        Ok(())
    }
}

/// Parses a page that is a JSON array of `R` rows, newest or oldest first, decoding each row
/// with `decode` as it is read ([`RowStream`]). A JSON object is the venue's error shape:
/// `on_object` says which error it is. Any other JSON is refused as "expected an array of
/// trades".
pub(crate) fn parse_rows<'de, R, F>(
    venue: Venue,
    body: &'de [u8],
    decode: F,
    on_object: impl FnOnce(&ErrorFields) -> VenueError,
) -> Result<Vec<Trade>, VenueError>
where
    R: Deserialize<'de>,
    F: FnMut(usize, R) -> Result<Trade, VenueError>,
{
    let mut trades = Vec::new();
    let mut failure = Failure::default();
    let seed = ArrayPage {
        rows: RowStream {
            venue,
            decode,
            trades: &mut trades,
            failure: &mut failure,
            row: std::marker::PhantomData,
        },
        on_object,
    };
    match stream(body, seed) {
        Ok(()) => Ok(trades),
        Err(err) => Err(stream_error(venue, body, &err, failure, || {
            malformed(venue, format!("expected an array of trades: {}", snippet(body)))
        })),
    }
}

struct ArrayPage<'s, R, F, O> {
    rows: RowStream<'s, R, F>,
    on_object: O,
}

impl<'de, R, F, O> serde::de::DeserializeSeed<'de> for ArrayPage<'_, R, F, O>
where
    R: Deserialize<'de>,
    F: FnMut(usize, R) -> Result<Trade, VenueError>,
    O: FnOnce(&ErrorFields) -> VenueError,
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, R, F, O> serde::de::Visitor<'de> for ArrayPage<'_, R, F, O>
where
    R: Deserialize<'de>,
    F: FnMut(usize, R) -> Result<Trade, VenueError>,
    O: FnOnce(&ErrorFields) -> VenueError,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of trades")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        serde::de::Visitor::visit_seq(self.rows, seq)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = read_error_fields(&mut map)?;
        let error = (self.on_object)(&fields);
        Err(self.rows.failure.stop(error))
    }
}

/// Decodes one row object, read as its raw text, into `R`. On failure the message names the
/// first bad field in key order (`"trade 3: missing field `price`"`), whatever order the venue
/// sent its fields in.
pub(crate) fn row<'a, R: Deserialize<'a>>(
    venue: Venue,
    i: usize,
    raw: &'a RawValue,
) -> Result<R, VenueError> {
    // Decoding a row may buffer its values (an untagged field, the key-order retry): only in a
    // row of a trade's size.
    let len = raw.get().len();
    if len > MAX_ROW_BYTES {
        return Err(malformed(
            venue,
            format!("trade {i}: a row of {len} bytes, longer than any trade ({MAX_ROW_BYTES} bytes at most)"),
        ));
    }
    let bad = |e: &serde_json::Error| malformed(venue, format!("trade {i}: {}", without_position(e)));
    serde_json::from_str(raw.get()).or_else(|first| {
        // Again, field by field in key order, for a message that does not depend on the order.
        let Ok(fields) = serde_json::from_str::<BTreeMap<Cow<'a, str>, &'a RawValue>>(raw.get()) else {
            return Err(bad(&first));
        };
        let fields = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(fields.into_iter());
        R::deserialize(fields).map_err(|e| bad(&e))
    })
}

/// The error of a page with more than [`MAX_PAGE_ROWS`] trades.
pub(crate) fn too_many_rows(venue: Venue) -> VenueError {
    malformed(
        venue,
        format!(
            "the page holds more than {MAX_PAGE_ROWS} trades, more than any {venue} page; refused while reading it"
        ),
    )
}

/// The fields of a venue's error object that the venues' error shapes use, read without
/// building a JSON tree: each named field's value as [`Field`], every other field skipped.
#[derive(Debug, Default)]
pub(crate) struct ErrorFields {
    fields: Vec<(&'static str, Field)>,
}

impl ErrorFields {
    /// The value of field `name`, if the object had it.
    pub(crate) fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The field's value if it is a string.
    pub(crate) fn str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Field::Text(s) => Some(s),
            Field::Other(_) | Field::List(_) => None,
        }
    }

    /// Reads the error object in `body`, or `None` when the body is not a JSON object.
    pub(crate) fn parse(body: &[u8]) -> Option<ErrorFields> {
        stream(body, ErrorFieldsSeed).ok()
    }
}

/// Field names the venues' error bodies use.
const ERROR_FIELD_NAMES: [&str; 6] = ["message", "result", "reason", "code", "status", "error"];

/// The most values (strings, numbers, lists) kept of one error field, however they nest; the
/// rest is skipped.
const MAX_ERROR_VALUES: usize = 64;
/// The most bytes kept of one error string.
const MAX_ERROR_TEXT: usize = 1_024;

/// One field of an error object: a string (its first 1 KiB), anything else as its JSON text
/// (numbers, `true`, `null`), or the values of an array or object (at most 64 values kept in
/// all, however they nest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Text(String),
    Other(String),
    List(Vec<Field>),
}

impl Field {
    /// Every string in it, and the text of every other value, in order.
    pub(crate) fn flatten(&self) -> Vec<String> {
        match self {
            Field::Text(s) | Field::Other(s) => vec![s.clone()],
            Field::List(items) => items.iter().flat_map(Field::flatten).collect(),
        }
    }

    /// As an error message shows it: a string as it is, anything else described.
    pub(crate) fn describe(&self) -> String {
        match self {
            Field::Text(s) => s.clone(),
            Field::Other(s) => s.clone(),
            Field::List(items) => {
                format!("[{}]", items.iter().map(Field::describe).collect::<Vec<_>>().join(","))
            }
        }
    }
}

fn clip(mut text: String, cut: bool) -> String {
    if cut {
        text.push('…');
    }
    text
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut budget = MAX_ERROR_VALUES;
        serde::de::DeserializeSeed::deserialize(FieldSeed(&mut budget), deserializer)
    }
}

/// Reads a [`Field`] keeping at most `budget` values (lists included) in all: however the
/// value nests, the rest is skipped without being kept.
struct FieldSeed<'b>(&'b mut usize);

impl<'de> serde::de::DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        *self.0 = self.0.saturating_sub(1);
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldSeed<'_> {
    type Value = Field;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        let mut end = v.len().min(MAX_ERROR_TEXT);
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        Ok(Field::Text(clip(v[..end].to_owned(), v.len() > end)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Field, E> {
        Ok(Field::Other(v.to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Other(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
        Ok(Field::Other(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Field, E> {
        Ok(Field::Other(serde_json::Number::from_f64(v).map_or_else(|| "null".to_owned(), |n| n.to_string())))
    }

    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Other("null".to_owned()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        let mut items = Vec::new();
        while *self.0 > 0 {
            match seq.next_element_seed(FieldSeed(&mut *self.0))? {
                Some(item) => items.push(item),
                None => return Ok(Field::List(items)),
            }
        }
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Field::List(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        let mut items = Vec::new();
        while *self.0 > 0 {
            if map.next_key::<serde::de::IgnoredAny>()?.is_none() {
                return Ok(Field::List(items));
            }
            items.push(map.next_value_seed(FieldSeed(&mut *self.0))?);
        }
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(Field::List(items))
    }
}

struct ErrorFieldsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for ErrorFieldsSeed {
    type Value = ErrorFields;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<ErrorFields, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ErrorFieldsSeed {
    type Value = ErrorFields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an error object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ErrorFields, A::Error> {
        read_error_fields(&mut map)
    }
}

/// Reads the rest of an object as [`ErrorFields`]: the named fields kept (the first of each),
/// every other value skipped.
pub(crate) fn read_error_fields<'de, A: serde::de::MapAccess<'de>>(
    map: &mut A,
) -> Result<ErrorFields, A::Error> {
    let mut out = ErrorFields::default();
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        match ERROR_FIELD_NAMES.iter().find(|n| **n == key) {
            Some(name) if out.get(name).is_none() => {
                let value = map.next_value::<Field>()?;
                out.fields.push((name, value));
            }
            _ => {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
    }
    Ok(out)
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

    #[test]
    fn error_objects_are_read_bounded_and_without_a_tree() {
        let many = format!(
            r#"{{"message":"m","reason":[{}],"other":[{}]}}"#,
            vec!["\"r\""; 1000].join(","),
            vec!["1"; 1000].join(",")
        );
        let fields = ErrorFields::parse(many.as_bytes()).unwrap();
        assert_eq!(fields.str("message"), Some("m"));
        let Some(Field::List(reasons)) = fields.get("reason") else { panic!("{fields:?}") };
        assert_eq!(reasons.len(), MAX_ERROR_VALUES - 1, "the list itself counts");
        // Nesting does not multiply the budget: 16 lists of 16 lists of 16 strings keep 64 values.
        let level = |inner: &str| format!("[{}]", vec![inner; 16].join(","));
        let nested = format!(r#"{{"reason":{}}}"#, level(&level(&level("\"r\""))));
        let fields = ErrorFields::parse(nested.as_bytes()).unwrap();
        fn count(f: &Field) -> usize {
            match f {
                Field::List(items) => 1 + items.iter().map(count).sum::<usize>(),
                Field::Text(_) | Field::Other(_) => 1,
            }
        }
        assert_eq!(count(fields.get("reason").unwrap()), MAX_ERROR_VALUES);
        assert_eq!(fields.get("other"), None, "unknown fields are skipped");
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(10_000));
        let fields = ErrorFields::parse(long.as_bytes()).unwrap();
        assert_eq!(fields.str("message").unwrap().len(), MAX_ERROR_TEXT + '…'.len_utf8());
        assert!(ErrorFields::parse(b"[1,2]").is_none());
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
