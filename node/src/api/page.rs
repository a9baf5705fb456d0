//! Cursor pagination, shared by every list: `?limit=` (1 to [`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]) and an opaque `?cursor=` taken from the previous page's `next_cursor`.
//!
//! A cursor names the last item of a page by its sort key, `(u64, hash)`: a settlement's
//! `(maturity, id)`, a dispute's `(accepted_at, dispute_id)`. The next page starts just after
//! it, so items added meanwhile never shift a page and none is served twice. On the wire it is
//! 80 lowercase hex digits; clients treat it as opaque.

use alloy_primitives::B256;
use serde::Deserialize;

use super::ApiError;

/// Items in a page when the query names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` accepted; more is refused with 400 `bad_limit`.
pub const MAX_LIMIT: usize = 1000;

/// The `limit` and `cursor` query parameters, as text: each is checked here so that a bad one
/// is named in a 400 that says what to send. Another parameter is refused (400).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Where a page starts and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// The sort key of the previous page's last item; `None`: the first page.
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(
                        "bad_limit",
                        format!(
                            "limit {text:?} is not a whole number from 1 to {MAX_LIMIT}; \
                             ask for at most {MAX_LIMIT} and follow next_cursor for more"
                        ),
                    ));
                }
            },
        };
        let after = self.cursor.as_deref().map(Cursor::parse).transpose()?;
        Ok(Page { after, limit })
    }
}

/// A sort key `(u64, hash)`, the last item a page served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(pub u64, pub B256);

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, ApiError> {
        let bad = || {
            ApiError::bad_request(
                "bad_cursor",
                format!(
                    "cursor {text:?} is not one this node gave: pass the next_cursor of the previous \
                     page unchanged, or leave it out for the first page"
                ),
            )
        };
        if text.len() != 80 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let bytes = hex::decode(text).map_err(|_| bad())?;
        let key = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        Ok(Cursor(key, B256::from_slice(&bytes[8..])))
    }

    pub fn encode(&self) -> String {
        let mut bytes = self.0.to_be_bytes().to_vec();
        bytes.extend_from_slice(self.1.as_slice());
        hex::encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_foreign_one_is_refused() {
        let cursor = Cursor(4_000_000_000, B256::repeat_byte(0xab));
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "xyz", &"A".repeat(80), &"0".repeat(79), &format!("0x{}", "0".repeat(78))] {
            assert_eq!(Cursor::parse(bad).unwrap_err().code, "bad_cursor", "{bad:?}");
        }
    }

    #[test]
    fn the_limit_defaults_and_is_bounded() {
        let query = |limit: Option<&str>| PageQuery { limit: limit.map(Into::into), ..Default::default() };
        assert_eq!(query(None).page().unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(query(Some("1000")).page().unwrap().limit, 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            let e = query(Some(bad)).page().unwrap_err();
            assert_eq!(e.code, "bad_limit", "{bad}");
            assert!(e.message.contains("1000"), "{}", e.message);
        }
    }
}
