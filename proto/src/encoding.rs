//! Canonical encoding: BCS (Binary Canonical Serialization, as used by Diem, Aptos and Sui).
//!
//! BCS gives every value exactly one encoding: integers little-endian and fixed width, lengths
//! and enum variant indices as ULEB128, structs as their fields in declaration order, options as
//! `0x00` or `0x01 ‖ value`. Decoding refuses trailing bytes, so decode(encode(x)) = x and
//! encode(decode(b)) = b for every accepted `b`.
//!
//! Human-readable encodings (JSON, TOML) write hashes, keys and signatures as `0x`-hex and
//! [`crate::value::Wad`] values as decimal strings; BCS writes the raw bytes and integers.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest message fixd decodes, in bytes. Gossip enforces its own, smaller limit first.
pub const MAX_DECODE_BYTES: usize = 4 * 1024 * 1024;

/// Deepest nesting of containers fixd decodes; fixd's own types nest far less.
const MAX_CONTAINER_DEPTH: usize = 64;

/// Why bytes are not a valid encoding of the expected type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("not a canonical BCS encoding of {type_name}: {reason}")]
    Malformed { type_name: &'static str, reason: String },
}

/// BCS bytes of a fixd value.
///
/// # Panics
/// Never for fixd's own types: BCS fails only on maps with non-canonical keys or nesting deeper
/// than 500, and no fixd type has either.
pub fn to_bcs<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    bcs::to_bytes(value).expect("fixd types are always BCS-encodable")
}

/// Decodes BCS bytes, refusing oversized input, deep nesting and trailing bytes.
pub fn from_bcs<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_DECODE_BYTES {
        return Err(DecodeError::TooLarge { len: bytes.len(), max: MAX_DECODE_BYTES });
    }
    bcs::from_bytes_with_limit(bytes, MAX_CONTAINER_DEPTH)
        .map_err(|e| DecodeError::Malformed { type_name: std::any::type_name::<T>(), reason: e.to_string() })
}
